"""The CNN family (LeNet-5, ResNet, RCNN, the convolutional autoencoder): shapes,
parity with the same network written in PyTorch, and the issue's quality bar on
the real digits (>= 98% on the stratified 25% hold-out)."""
import numpy as np
import pytest

import nnforge as nf
from helpers import assert_close, torch_or_skip
from nnforge.train.recipes import cnn


def _copy_weights(ours, theirs, rename=lambda k: k):
    t = torch_or_skip()
    state = {rename(k): t.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()}
    theirs.load_state_dict(state)


def _forward_backward_parity(ours, theirs, x_np, atol=1e-4, rtol=1e-4):
    """Same outputs, same input gradient and same parameter gradients (by name)."""
    t = torch_or_skip()
    x = nf.tensor(x_np, requires_grad=True)
    tx = t.tensor(x_np, requires_grad=True)
    y, ty = ours(x), theirs(tx)
    assert_close(y, ty, atol=atol, rtol=rtol, msg="forward")
    g = np.random.default_rng(1).normal(size=tuple(y.shape)).astype(np.float32)
    y.backward(nf.tensor(g))
    ty.backward(t.tensor(g))
    assert_close(x.grad, tx.grad, atol=atol, rtol=rtol, msg="input gradient")
    theirs_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert_close(p.grad, theirs_params[name].grad, atol=atol, rtol=rtol, msg=name)


# ---------------------------------------------------------------- architectures
def test_lenet5_shapes_parameters_and_options():
    net = nf.models.LeNet5()
    assert tuple(net(nf.zeros(3, 1, 32, 32)).shape) == (3, 10)
    # C1 156, C3 2416, C5 48120, F6 10164, output 850: LeNet-5's 61,706.
    assert sum(p.numel() for p in net.parameters()) == 61706
    mnist = nf.models.LeNet5(input_size=28, activation="tanh", pooling="avg")
    assert mnist.features[0].padding == (2, 2)
    assert tuple(mnist(nf.zeros(2, 1, 28, 28)).shape) == (2, 10)
    with pytest.raises(ValueError, match="too small"):
        nf.models.LeNet5(input_size=8)
    with pytest.raises(ValueError, match="pooling"):
        nf.models.LeNet5(pooling="median")


def test_lenet5_matches_the_same_network_in_torch():
    t = torch_or_skip()
    tn = t.nn
    ours = nf.models.LeNet5(input_size=28)
    theirs = tn.Sequential()
    theirs.features = tn.Sequential(tn.Conv2d(1, 6, 5, padding=2), tn.ReLU(), tn.MaxPool2d(2),
                                    tn.Conv2d(6, 16, 5), tn.ReLU(), tn.MaxPool2d(2))
    theirs.classifier = tn.Sequential(tn.Flatten(), tn.Linear(400, 120), tn.ReLU(),
                                      tn.Linear(120, 84), tn.ReLU(), tn.Linear(84, 10))
    _copy_weights(ours, theirs)
    x = np.random.default_rng(0).normal(size=(4, 1, 28, 28)).astype(np.float32)
    _forward_backward_parity(ours, theirs, x)


def _torch_basic_block(tn, c_in, c_out, stride):
    class Block(tn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = tn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
            self.bn1 = tn.BatchNorm2d(c_out)
            self.conv2 = tn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
            self.bn2 = tn.BatchNorm2d(c_out)
            self.downsample = None
            if stride != 1 or c_in != c_out:
                self.downsample = tn.Sequential(tn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                                tn.BatchNorm2d(c_out))

        def forward(self, x):
            idt = x if self.downsample is None else self.downsample(x)
            out = self.bn2(self.conv2(self.bn1(self.conv1(x)).relu()))
            return (out + idt).relu()
    return Block()


def test_resnet_matches_the_same_network_in_torch_train_and_eval():
    t = torch_or_skip()
    tn = t.nn
    nf.manual_seed(0)
    ours = nf.models.ResNet(10, 1, widths=(8, 16), blocks=(1, 2))
    theirs = tn.Module()
    theirs.stem = tn.Sequential(tn.Conv2d(1, 8, 3, padding=1, bias=False), tn.BatchNorm2d(8),
                                tn.ReLU())
    theirs.stages = tn.Sequential(
        tn.Sequential(_torch_basic_block(tn, 8, 8, 1)),
        tn.Sequential(_torch_basic_block(tn, 8, 16, 2), _torch_basic_block(tn, 16, 16, 1)))
    theirs.fc = tn.Linear(16, 10)
    theirs.forward = lambda x: theirs.fc(theirs.stages(theirs.stem(x)).mean((2, 3)))
    _copy_weights(ours, theirs)
    x = np.random.default_rng(0).normal(size=(4, 1, 8, 8)).astype(np.float32)
    _forward_backward_parity(ours, theirs, x)  # training mode: batch statistics
    for name, buf in ours.named_buffers():    # running statistics updated alike
        assert_close(buf, dict(theirs.named_buffers())[name], atol=1e-5, msg=name)
    ours.eval()
    theirs.eval()
    with nf.no_grad(), t.no_grad():
        assert_close(ours(nf.tensor(x)), theirs(t.tensor(x)), atol=1e-4, msg="eval forward")


def test_rcnn_recurrent_layer_shares_weights_over_steps():
    nf.manual_seed(0)
    rcl = nf.models.RecurrentConv2d(4, steps=3)
    n_params = sum(p.numel() for p in rcl.parameters())
    deeper = nf.models.RecurrentConv2d(4, steps=6)
    # Only the per-step BatchNorms (8 numbers each) grow with the steps.
    assert sum(p.numel() for p in deeper.parameters()) - n_params == 3 * 8
    # steps=0 is the feed-forward layer: relu(BN(w_f * u + b)).
    plain = nf.models.RecurrentConv2d(4, steps=0)
    x = nf.randn(2, 4, 5, 5)
    expected = plain.relu(plain.norms[0](plain.feedforward(x)))
    assert_close(plain(x), expected, atol=1e-6)
    # One more step changes the output (the recurrent path is used).
    assert not np.allclose(rcl(x).detach().numpy(), plain(x).detach().numpy())
    net = nf.models.RCNN(10, 1, channels=8, layers=2, steps=2)
    assert tuple(net(nf.zeros(3, 1, 8, 8)).shape) == (3, 10)


def test_rcnn_step_equations_match_torch():
    t = torch_or_skip()
    tn = t.nn
    nf.manual_seed(0)
    ours = nf.models.RecurrentConv2d(3, kernel_size=3, steps=2)
    theirs = tn.Module()
    theirs.feedforward = tn.Conv2d(3, 3, 3, padding=1)
    theirs.recurrent = tn.Conv2d(3, 3, 3, padding=1, bias=False)
    theirs.norms = tn.ModuleList(tn.BatchNorm2d(3) for _ in range(3))

    def forward(u):  # Liang & Hu's recurrence, written out
        drive = theirs.feedforward(u)
        x = theirs.norms[0](drive).relu()
        for step in (1, 2):
            x = theirs.norms[step](drive + theirs.recurrent(x)).relu()
        return x
    theirs.forward = forward
    _copy_weights(ours, theirs)
    x = np.random.default_rng(0).normal(size=(2, 3, 6, 6)).astype(np.float32)
    _forward_backward_parity(ours, theirs, x)


@pytest.mark.parametrize("decoder", ["transpose", "upsample"])
def test_conv_autoencoder_shapes_and_gradients(decoder):
    nf.manual_seed(0)
    ae = nf.models.ConvAutoencoder(1, (4, 8), decoder=decoder)
    x = nf.rand(3, 1, 8, 8)
    assert tuple(ae.encode(x).shape) == (3, 8, 2, 2)
    y = ae(x)
    assert tuple(y.shape) == (3, 1, 8, 8) and float(y.min()) > 0 and float(y.max()) < 1
    loss, terms = ae.loss(x)
    loss.backward()
    assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in ae.parameters())
    assert terms["loss"] == pytest.approx(float(((y - x) ** 2).sum()) / 3, rel=1e-5)
    with pytest.raises(ValueError, match="divisible by 4"):
        ae(nf.rand(1, 1, 6, 6))


# ---------------------------------------------------------------- trained on digits
@pytest.mark.parametrize("recipe", [cnn.lenet_digits, cnn.resnet_digits, cnn.rcnn_digits])
def test_cnn_reaches_98_percent_on_digits(recipe):
    lines = []
    result = recipe(progress=False, log=lines.append)  # the recipe's defaults, seed 0
    assert result["test_acc"][-1] >= 0.98, lines[-1]
    assert result["train_loss"][-1] < result["train_loss"][0] / 5
    assert any("final test accuracy" in line for line in lines)


def test_conv_autoencoder_beats_the_mean_image():
    lines = []
    result = cnn.conv_autoencoder_digits(epochs=8, progress=False, log=lines.append)
    assert result["test_mse"][-1] < 0.35 * result["baseline_mse"], lines[-1]


def test_lenet_recipe_writes_what_it_learned(tmp_path):
    pytest.importorskip("matplotlib", reason="the plots need matplotlib")
    out = tmp_path / "run"
    cnn.lenet_digits(epochs=1, progress=False, log=None, out_dir=str(out))
    for name in ("filters.png", "feature_maps.png", "confusion_matrix.png",
                 "learning_curves.png", "history.json", "summary.txt", "last.safetensors"):
        assert (out / name).exists(), name
    scores = cnn._evaluator("lenet")(str(out / "last.safetensors"), log=None)
    assert 0.5 < scores["accuracy"] <= 1.0
