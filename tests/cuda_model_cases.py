"""Model-family training runs shared by tests/test_cuda_models.py (a real GPU) and
tests/test_cuda_models_emulated.py (the emulated device of tests/emulated_cuda.py).

Each case is a function ``run(device) -> (losses, model)``: it builds its model
on the CPU from a fixed seed (so both devices start from the same weights),
moves it with ``model.to(device)``, and trains STEPS optimizer steps on batches
drawn from a seeded numpy generator on the host, uploaded with
``nf.tensor(..., device=device)``. Randomness inside a step (dropout, noise,
sampling) would differ between devices, so dropout is 0 and noise is drawn on
the host and passed in. ``losses`` are Python floats (``loss.item()``).
"""
from __future__ import annotations

import numpy as np

import nnforge as nf
import nnforge.nn.functional as F

STEPS = 4


def T(a, device, dtype=None):
    """A host array as a tensor on ``device`` (floats as float32)."""
    a = np.asarray(a)
    if dtype is None and a.dtype.kind == "f":
        dtype = nf.float32
    return nf.tensor(a, dtype=dtype, device=device)


def _built(device, build, seed=0):
    nf.manual_seed(seed)
    model = build()
    return model.to(device)


def _step(opt, loss, params=None, clip=None, clip_value=None):
    opt.zero_grad()
    loss.backward()
    if clip is not None:
        nf.nn.utils.clip_grad_norm_(params, clip)
    if clip_value is not None:
        nf.nn.utils.clip_grad_value_(params, clip_value)
    opt.step()


# ------------------------------------------------------------------ dense
def mlp(device):
    model = _built(device, lambda: nf.models.MLP(12, [16, 16], 5, activation="tanh"))
    params = list(model.parameters())
    opt = nf.optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)
    sched = nf.optim.lr_scheduler.StepLR(opt, 2, 0.5)
    rng = np.random.default_rng(1)
    losses = []
    for _ in range(STEPS):
        x, y = T(rng.standard_normal((6, 12)), device), T(rng.integers(0, 5, 6), device)
        loss = F.cross_entropy(model(x), y, label_smoothing=0.1)
        _step(opt, loss, params, clip=1.0)
        sched.step()
        losses.append(loss.item())
    return losses, model


def perceptron(device):
    model = _built(device, lambda: nf.models.Perceptron(5))
    opt = nf.optim.SGD(model.parameters(), lr=0.5)
    rng = np.random.default_rng(2)
    losses = []
    for _ in range(STEPS):
        x = T(rng.standard_normal((8, 5)), device)
        y = T(rng.integers(0, 2, 8), device)
        loss = nf.models.surrogate_loss(model(x), y, kind="logistic")
        _step(opt, loss)
        losses.append(loss.item())
    return losses, model


OPTIMIZERS = {
    "sgd": lambda p: nf.optim.SGD(p, lr=0.05, momentum=0.5, dampening=0.1, weight_decay=1e-3),
    "adam": lambda p: nf.optim.Adam(p, lr=1e-2, amsgrad=True),
    "adamw": lambda p: nf.optim.AdamW(p, lr=1e-2, weight_decay=0.1),
    "rmsprop": lambda p: nf.optim.RMSprop(p, lr=1e-2, momentum=0.5, centered=True),
    "adagrad": lambda p: nf.optim.Adagrad(p, lr=0.1, lr_decay=0.01),
    "adadelta": lambda p: nf.optim.Adadelta(p, lr=1.0, weight_decay=1e-3),
}


def optimizer(name):
    def run(device):
        model = _built(device, lambda: nf.nn.Sequential(nf.nn.Linear(6, 8), nf.nn.Tanh(),
                                                        nf.nn.Linear(8, 3)))
        params = list(model.parameters())
        opt = OPTIMIZERS[name](params)
        sched = nf.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=STEPS)
        rng = np.random.default_rng(3)
        losses = []
        for _ in range(STEPS):
            x, y = T(rng.standard_normal((5, 6)), device), T(rng.standard_normal((5, 3)), device)
            loss = F.mse_loss(model(x), y)
            _step(opt, loss, params, clip_value=0.5)
            sched.step()
            losses.append(loss.item())
        return losses, model
    run.__name__ = f"optimizer_{name}"
    return run


# ------------------------------------------------------------------ convolutional
def _image_classifier(name, build, shape, classes, optim, seed):
    def run(device):
        model = _built(device, build)
        params = list(model.parameters())
        opt = optim(params)
        rng = np.random.default_rng(seed)
        losses = []
        for _ in range(STEPS):
            x = T(rng.standard_normal(shape), device)
            y = T(rng.integers(0, classes, shape[0]), device)
            loss = F.cross_entropy(model(x), y)
            _step(opt, loss, params, clip=5.0)
            losses.append(loss.item())
        model.eval()  # batch norm's running statistics, no dropout
        with nf.no_grad():
            losses.append(F.cross_entropy(model(x), y).item())
        return losses, model
    run.__name__ = name
    return run


lenet = _image_classifier("lenet", lambda: nf.models.LeNet5(4, input_size=14), (3, 1, 14, 14), 4,
                          lambda p: nf.optim.Adam(p, lr=1e-3), 4)
lenet_avg_tanh = _image_classifier(
    "lenet_avg_tanh", lambda: nf.models.LeNet5(4, input_size=14, activation="tanh", pooling="avg"),
    (3, 1, 14, 14), 4, lambda p: nf.optim.SGD(p, lr=0.05, momentum=0.9), 5)
resnet = _image_classifier("resnet", lambda: nf.models.ResNet(3, 1, widths=(4, 8), blocks=(1, 1)),
                           (3, 1, 8, 8), 3, lambda p: nf.optim.SGD(p, lr=0.05, momentum=0.9), 6)
rcnn = _image_classifier("rcnn", lambda: nf.models.RCNN(3, 1, channels=4, layers=2, steps=2,
                                                dropout=0.0), (3, 1, 8, 8), 3,
                         lambda p: nf.optim.AdamW(p, lr=1e-2), 7)
vit = _image_classifier("vit", lambda: nf.models.ViT(8, 4, 1, 3, d_model=16, depth=2, nhead=2,
                                              dim_feedforward=32, dropout=0.0),
                        (3, 1, 8, 8), 3, lambda p: nf.optim.AdamW(p, lr=1e-2), 8)


def conv_autoencoder(decoder):
    def run(device):
        model = _built(device, lambda: nf.models.ConvAutoencoder(1, (4, 8), decoder=decoder))
        opt = nf.optim.Adam(model.parameters(), lr=1e-2)
        rng = np.random.default_rng(9)
        losses = []
        for _ in range(STEPS):
            x = T(rng.random((2, 1, 8, 8)), device)
            loss, terms = model.loss(x)
            _step(opt, loss)
            losses.append(terms["loss"])
        return losses, model
    run.__name__ = f"conv_autoencoder_{decoder}"
    return run


# ------------------------------------------------------------------ recurrent
def many_to_one(cell, summary, lengths):
    def run(device):
        model = _built(device, lambda: nf.models.ManyToOne(3, 5, 2, cell=cell, num_layers=2,
                                                           bidirectional=True, summary=summary))
        params = list(model.parameters())
        opt = nf.optim.Adam(params, lr=1e-2)
        rng = np.random.default_rng(10)
        losses = []
        for _ in range(STEPS):
            x = T(rng.standard_normal((3, 4, 3)), device)
            y = T(rng.standard_normal((3, 2)), device)
            out = model(x, lengths=[4, 2, 3]) if lengths else model(x)
            loss = F.mse_loss(out, y)
            _step(opt, loss, params, clip=1.0)
            losses.append(loss.item())
        return losses, model
    run.__name__ = f"many_to_one_{cell}_{summary}{'_lengths' if lengths else ''}"
    return run


def char_rnn(cell):
    def run(device):
        model = _built(device, lambda: nf.models.CharRNN(7, 6, 8, num_layers=2, cell=cell))
        params = list(model.parameters())
        opt = nf.optim.Adam(params, lr=1e-2)
        rng = np.random.default_rng(11)
        losses, state = [], None
        for _ in range(STEPS):
            ids = rng.integers(0, 7, (2, 6))
            logits, state = model(T(ids[:, :-1], device), state)
            state = tuple(s.detach() for s in state) if isinstance(state, tuple) \
                else state.detach()  # truncated backpropagation through time
            loss = F.cross_entropy(logits.reshape(-1, 7), T(ids[:, 1:], device).reshape(-1))
            _step(opt, loss, params, clip=1.0)
            losses.append(loss.item())
        return losses, model
    run.__name__ = f"char_rnn_{cell}"
    return run


def _seq2seq_batch(rng, device, vocab=9):
    src = rng.integers(3, vocab, (3, 5))
    src[1, 3:] = 0  # padding (pad_id 0): lengths 5, 3, 4
    src[2, 4:] = 0
    tgt = np.concatenate([np.ones((3, 1), np.int64), rng.integers(3, vocab, (3, 4))], 1)
    tgt[2, 3:] = 0
    return T(src, device), [5, 3, 4], T(tgt[:, :-1], device), T(tgt[:, 1:], device)


def seq2seq(cell, attention):
    def run(device):
        model = _built(device, lambda: nf.models.Seq2Seq(9, 9, 6, 8, cell=cell,
                                                         attention=attention))
        params = list(model.parameters())
        opt = nf.optim.Adam(params, lr=1e-2)
        sched = nf.optim.lr_scheduler.LinearLR(opt, start_factor=0.5, total_iters=STEPS)
        rng = np.random.default_rng(12)
        losses = []
        for _ in range(STEPS):
            src, lengths, tgt_in, tgt_out = _seq2seq_batch(rng, device)
            logits = model(src, lengths, tgt_in)
            loss = F.cross_entropy(logits.reshape(-1, 9), tgt_out.reshape(-1), ignore_index=0)
            _step(opt, loss, params, clip=1.0)
            sched.step()
            losses.append(loss.item())
        model.eval()
        tokens, attn = model.greedy(src, lengths, 4)
        losses.append(float(np.asarray(tokens).sum()))
        return losses, model
    run.__name__ = f"seq2seq_{cell}_{attention}"
    return run


# ------------------------------------------------------------------ transformers
def gpt(positions, n_kv_head):
    def run(device):
        model = _built(device, lambda: nf.models.GPT(11, block_size=8, n_layer=2, n_head=2,
                                                     d_model=16, positions=positions,
                                                     n_kv_head=n_kv_head))
        params = list(model.parameters())
        opt = nf.optim.AdamW(params, lr=3e-3, weight_decay=0.1)
        sched = nf.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (1 + s))
        rng = np.random.default_rng(13)
        losses = []
        for _ in range(STEPS):
            ids = rng.integers(0, 11, (2, 8))
            logits = model(T(ids[:, :-1], device))
            loss = F.cross_entropy(logits.reshape(-1, 11), T(ids[:, 1:], device).reshape(-1))
            _step(opt, loss, params, clip=1.0)
            sched.step()
            losses.append(loss.item())
        model.eval()
        for use_cache in (True, False):  # the fast decode path and the module path
            losses.append(float(sum(model.generate([1, 2, 3], 5, temperature=0.0,
                                                   use_cache=use_cache))))
        return losses, model
    run.__name__ = f"gpt_{positions}_kv{n_kv_head}"
    return run


def _bert_model():
    return nf.models.BERT(12, d_model=16, n_layer=2, n_head=2, dim_feedforward=32, max_len=8,
                          dropout=0.0)


def bert_mlm(device):
    model = _built(device, _bert_model)
    params = list(model.parameters())
    opt = nf.optim.AdamW(params, lr=1e-2)
    rng = np.random.default_rng(14)
    losses = []
    for step in range(STEPS):
        ids = rng.integers(4, 12, (2, 6))
        ids[1, 4:] = 0
        gen = nf.Generator().manual_seed(step)
        inputs, labels = nf.models.mask_tokens(T(ids, device), 3, 12, special_ids=(0,),
                                               prob=0.3, generator=gen, first_regular_id=4)
        h = model(inputs.to(device))
        logits = model.mlm_logits(h)
        loss = F.cross_entropy(logits.reshape(-1, 12), labels.to(device).reshape(-1),
                               ignore_index=-100)
        _step(opt, loss, params, clip=1.0)
        losses.append(loss.item())
    return losses, model


def bert_classifier(pooling):
    def run(device):
        model = _built(device, lambda: nf.models.BertClassifier(_bert_model(), 3, dropout=0.0,
                                                                pooling=pooling))
        params = list(model.parameters())
        opt = nf.optim.Adam(params, lr=1e-2)
        rng = np.random.default_rng(15)
        losses = []
        for _ in range(STEPS):
            ids = rng.integers(4, 12, (3, 6))
            ids[0, 3:] = 0
            loss = F.cross_entropy(model(T(ids, device)), T(rng.integers(0, 3, 3), device))
            _step(opt, loss, params)
            losses.append(loss.item())
        return losses, model
    run.__name__ = f"bert_classifier_{pooling}"
    return run


def transformer_seq2seq(device):
    model = _built(device, lambda: nf.models.TransformerSeq2Seq(
        9, 9, d_model=16, nhead=2, num_encoder_layers=1, num_decoder_layers=1,
        dim_feedforward=32, dropout=0.0, max_len=8))
    params = list(model.parameters())
    opt = nf.optim.Adam(params, lr=1e-2)
    rng = np.random.default_rng(16)
    losses = []
    for _ in range(STEPS):
        src, lengths, tgt_in, tgt_out = _seq2seq_batch(rng, device)
        logits = model(src, lengths, tgt_in)
        loss = F.cross_entropy(logits.reshape(-1, 9), tgt_out.reshape(-1), ignore_index=0)
        _step(opt, loss, params, clip=1.0)
        losses.append(loss.item())
    model.eval()
    tokens, attn = model.greedy(src, lengths, 3)
    losses.append(float(np.asarray(tokens).sum()))
    return losses, model


# ------------------------------------------------------------------ autoencoders, GAN
def autoencoder(kind):
    def build():
        if kind == "plain":
            return nf.models.Autoencoder(16, [8], 4)
        if kind == "denoising":
            return nf.models.DenoisingAutoencoder(16, [8], 4, noise="gaussian", noise_level=0.3)
        return nf.models.SparseAutoencoder(16, [8], 6, sparsity=kind)

    def run(device):
        model = _built(device, build)
        opt = nf.optim.Adam(model.parameters(), lr=1e-2)
        rng = np.random.default_rng(17)
        losses = []
        for _ in range(STEPS):
            x = T(rng.random((4, 16)), device)
            if kind == "denoising":  # the model's own corrupt() draws noise on the device
                noisy = x + T(rng.standard_normal((4, 16)), device) * model.noise_level
                loss = nf.models.reconstruction_error(model(noisy), x)
            else:
                loss, terms = model.loss(x)
                assert abs(terms["loss"] - loss.item()) < 1e-6
            _step(opt, loss)
            losses.append(loss.item())
        return losses, model
    run.__name__ = f"autoencoder_{kind}"
    return run


def vae(device):
    model = _built(device, lambda: nf.models.VAE(16, [8], latent_dim=3))
    opt = nf.optim.Adam(model.parameters(), lr=1e-2)
    rng = np.random.default_rng(18)
    losses = []
    for _ in range(STEPS):
        x = T(rng.random((4, 16)), device)
        mu, logvar = model.encode(x)
        z = mu + (logvar * 0.5).exp() * T(rng.standard_normal((4, 3)), device)
        loss, recon, kl = nf.models.vae_loss(model.decode(z), x, mu, logvar)
        _step(opt, loss)
        losses += [loss.item(), kl.item()]
    losses.append(model.reconstruct(x).sum().item())
    return losses, model


def gan(device):
    model = _built(device, lambda: nf.models.GAN(10, latent_dim=4, g_hidden=(8,), d_hidden=(8,)))
    g_opt = nf.optim.Adam(model.generator.parameters(), lr=2e-3, betas=(0.5, 0.999))
    d_opt = nf.optim.Adam(model.discriminator.parameters(), lr=2e-3, betas=(0.5, 0.999))
    rng = np.random.default_rng(19)
    losses = []
    for _ in range(STEPS):
        real = T(rng.random((4, 10)), device)
        fake = model(T(rng.standard_normal((4, 4)), device))
        d_loss = nf.models.discriminator_loss(model.discriminator(real),
                                              model.discriminator(fake.detach()))
        _step(d_opt, d_loss)
        g_loss = nf.models.generator_loss(model.discriminator(fake))
        _step(g_opt, g_loss)
        losses += [d_loss.item(), g_loss.item()]
    return losses, model


CASES = [
    mlp, perceptron, *(optimizer(n) for n in OPTIMIZERS),
    lenet, lenet_avg_tanh, resnet, rcnn, vit, conv_autoencoder("transpose"),
    conv_autoencoder("upsample"),
    many_to_one("lstm", "last", False), many_to_one("gru", "mean", True),
    many_to_one("rnn", "max", False), char_rnn("lstm"), char_rnn("gru"),
    seq2seq("gru", "additive"), seq2seq("lstm", "dot"), seq2seq("gru", "general"),
    gpt("learned", None), gpt("rotary", 1), gpt("sinusoidal", None),
    bert_mlm, bert_classifier("cls"), bert_classifier("mean"), transformer_seq2seq,
    autoencoder("plain"), autoencoder("denoising"), autoencoder("kl"), autoencoder("l1"),
    vae, gan,
]


def host_state(model) -> dict:
    """The model's parameters and buffers as host numpy arrays."""
    return {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}


def compare(case, device, rtol, atol, param_tol=None):
    """Trains ``case`` on the CPU and on ``device``; asserts the loss curves agree
    within (rtol, atol), the final weights and buffers within ``param_tol`` (an
    (rtol, atol) pair, default the same), and that the run trained something."""
    want_losses, want_model = case("cpu")
    got_losses, got_model = case(device)
    assert len(got_losses) == len(want_losses)
    assert want_losses[0] != want_losses[STEPS - 1], "the CPU run did not train"
    np.testing.assert_allclose(got_losses, want_losses, rtol=rtol, atol=atol,
                               err_msg=f"{case.__name__}: loss curve on {device} vs cpu")
    for p in got_model.parameters():
        assert p.device.type == nf.device(device).type, (case.__name__, p.shape, p.device)
    got, want = host_state(got_model), host_state(want_model)
    assert got.keys() == want.keys()
    prtol, patol = param_tol or (rtol, atol)
    for k in want:
        assert got[k].dtype == want[k].dtype, (k, got[k].dtype, want[k].dtype)
        np.testing.assert_allclose(got[k], want[k], rtol=prtol, atol=patol,
                                   err_msg=f"{case.__name__}: {k} after training on {device}")


# ------------------------------------------------------------------ beyond the loss curves
# Each check runs the same thing on the CPU and on ``device`` and compares; ``tol`` is
# (rtol, atol) for float results (token ids and shapes compare exactly).
def _close(got, want, tol, what):
    np.testing.assert_allclose(got, want, rtol=tol[0], atol=tol[1], err_msg=what)


def check_tensor_conversions(device, tol):
    host = np.array([[1.5, -2.0, 0.25], [3.0, 4.0, -0.5]], np.float32)
    x = T(host, device)
    assert x.device.type == nf.device(device).type and x.is_cuda == (x.device.type == "cuda")
    assert x.tolist() == host.tolist()
    assert x[1, 2].item() == -0.5 and float(x[0, 0]) == 1.5 and int(x[1, 1]) == 4
    assert bool((x > -3).all()) and len(x) == 2 and [r.shape for r in x] == [(3,), (3,)]
    assert 4.0 in x and f"{x.sum():.3f}" == f"{host.sum():.3f}"
    assert f"device='{x.device}'" in repr(x)
    if x.device.type != "cpu":
        try:
            x.numpy()
        except TypeError as e:
            assert "cpu()" in str(e)
        else:
            raise AssertionError("numpy() of a device tensor must raise TypeError")
    np.testing.assert_array_equal(x.numpy(force=True), host)
    np.testing.assert_array_equal(x.cpu().numpy(), host)
    np.testing.assert_array_equal(np.asarray(x.cpu()), host)
    w = T(host, device).requires_grad_()
    (w.cpu() * w.cpu()).sum().backward()  # the gradient crosses back to the device
    assert w.grad.device == x.device
    _close(w.grad.cpu().numpy(), 2 * host, tol, "grad through .cpu()")


def check_indexing(device, tol):
    """Forward and backward of the indexing ops on ``device`` vs the CPU."""
    rng = np.random.default_rng(20)
    a = rng.standard_normal((4, 5)).astype(np.float32)
    idx = np.array([3, 0, 3, 1])
    gidx = rng.integers(0, 5, (4, 2))

    def run(dev):
        x = T(a, dev).requires_grad_()
        outs = [x[T(idx, dev)], x[:, [4, 0, 4]], x[..., T(idx[:2], dev)], x[x > 0.3],
                x.index_select(1, T(idx, dev)), x.gather(1, T(gidx, dev)),
                x.masked_select(x < 0), x[1:3, ::2], x[T(idx, dev), 2]]
        y = x.detach().clone()
        y[y > 0] = 0.0
        y[:, 1] = T(np.arange(4.0), dev)
        y[T(np.array([0, 2]), dev)] = 7.0
        nf.manual_seed(5)
        emb = nf.nn.Embedding(6, 3, max_norm=1.0, padding_idx=2).to(dev)
        e = emb(T(np.array([[1, 2, 5], [5, 5, 0]]), dev))
        total = sum((o * (k + 1)).sum() for k, o in enumerate(outs)) + e.sum()
        total.backward()
        hot = nf.nn.functional.one_hot(T(idx, dev), 5)
        extra = [y, e, x.grad, emb.weight.grad, emb.weight, hot]
        return [o.detach().cpu().numpy() for o in outs + extra]

    want, got = run("cpu"), run(device)
    for k, (g, w) in enumerate(zip(got, want)):
        assert g.shape == w.shape and g.dtype == w.dtype, (k, g.shape, w.shape)
        _close(g, w, tol, f"indexing result {k}")


def check_checkpoint_resume(device, tol, tmp_path):
    """Two Adam steps on ``device``, save (nf.io.save of model + optimizer state, and
    nf.io.save_file of the weights), load into a fresh model and optimizer on
    ``device``, two more steps: the same losses as four steps straight on the CPU."""
    def build():
        nf.manual_seed(3)
        return nf.models.MLP(6, [8], 3)

    rng = np.random.default_rng(22)
    batches = [(rng.standard_normal((5, 6)), rng.integers(0, 3, 5)) for _ in range(4)]

    def steps(model, opt, part, dev):
        out = []
        for x, y in part:
            loss = F.cross_entropy(model(T(x, dev)), T(y, dev))
            _step(opt, loss)
            out.append(loss.item())
        return out

    ref = build()
    want = steps(ref, nf.optim.Adam(ref.parameters(), lr=1e-2), batches, "cpu")
    model = build().to(device)
    opt = nf.optim.Adam(model.parameters(), lr=1e-2)
    got = steps(model, opt, batches[:2], device)
    nf.io.save({"model": model.state_dict(), "optim": opt.state_dict(), "step": 2},
               tmp_path / "ckpt.safetensors")
    nf.io.save_file(model.state_dict(), tmp_path / "weights.safetensors")
    ck = nf.io.load(tmp_path / "ckpt.safetensors")
    weights = nf.io.load_file(tmp_path / "weights.safetensors")
    for k, v in model.state_dict().items():  # loaded on the host, equal to the device values
        assert weights[k].device.type == "cpu"
        np.testing.assert_array_equal(weights[k].numpy(), v.cpu().numpy())
    model2 = build().to(device)
    model2.load_state_dict(ck["model"])
    assert all(p.device.type == nf.device(device).type for p in model2.parameters())
    opt2 = nf.optim.Adam(model2.parameters(), lr=1e-2)
    opt2.load_state_dict(ck["optim"])
    for st in opt2.state.values():
        assert st["exp_avg"].device.type == nf.device(device).type
    got += steps(model2, opt2, batches[2:], device)
    _close(got, want, tol, "losses across a save/load on the device")


def check_fit(device, tol):
    """nf.train.fit with device=... (the model moved there by the caller, batches by
    fit) vs the same fit on the CPU."""
    rng = np.random.default_rng(23)
    x, y = rng.standard_normal((24, 5)).astype(np.float32), rng.integers(0, 3, 24)

    def run(dev):
        nf.manual_seed(4)
        model = nf.models.MLP(5, [8], 3).to(dev)
        ds = nf.data.TensorDataset(nf.tensor(x), nf.tensor(y))
        loader = nf.data.DataLoader(ds, batch_size=8)
        opt = nf.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        sched = nf.optim.lr_scheduler.StepLR(opt, 1, 0.5)
        hist = nf.train.fit(model, nf.nn.CrossEntropyLoss(), opt, loader, loader, epochs=3,
                            metrics=["accuracy"], scheduler=sched, grad_clip=1.0, device=dev,
                            progress=False, log=lambda *a: None)
        scores = nf.train.evaluate(model, loader, nf.nn.CrossEntropyLoss(), device=dev)
        return hist, scores, model

    want, want_scores, _ = run("cpu")
    got, got_scores, model = run(device)
    assert next(model.parameters()).device.type == nf.device(device).type
    for key in ("loss", "val_loss"):
        _close(got[key], want[key], tol, f"fit history {key}")
    assert got["accuracy"] == want["accuracy"] and got["lr"] == want["lr"]
    _close(got_scores["loss"], want_scores["loss"], tol, "evaluate loss")


def check_decoding(device, tol):
    """Generation on the device: the same tokens as on the CPU (sampling draws from the
    same host generator; greedy and beam search are argmaxes)."""
    def run(dev):
        nf.manual_seed(6)
        gpt = nf.models.GPT(13, block_size=8, n_layer=2, n_head=2, d_model=16,
                            positions="rotary", n_kv_head=1).to(dev).eval()
        out = [gpt.generate([1, 2, 3], 7, temperature=0.0),                 # past block_size
               gpt.generate([4], 4, temperature=0.0, use_cache=False),
               gpt.generate([5, 6], 5, temperature=0.9, top_k=5, top_p=0.9,
                            generator=nf.Generator().manual_seed(1))]
        with nf.no_grad():
            ids = T(np.array([[1, 2, 3, 4]]), dev)
            cache = gpt.new_cache()
            step = [gpt(ids[:, :2], cache)[:, -1], gpt(ids[:, 2:], cache)[:, -1]]
        floats = [s.cpu().numpy() for s in step]
        floats.append(gpt.blocks[0].attn.attention_weights(gpt.tok_emb(ids)).cpu().numpy())
        nf.manual_seed(7)
        s2s = nf.models.Seq2Seq(9, 9, 6, 8, cell="lstm", attention="general").to(dev).eval()
        src = T(np.array([[3, 4, 5, 6], [5, 7, 0, 0]]), dev)
        toks, attn = s2s.beam_search_batch(src, [4, 2], beam=3, max_len=5)
        out += toks
        g_toks, g_attn = s2s.greedy(src, T(np.array([4, 2]), dev), 4)
        out.append(g_toks.tolist())
        floats += [g_attn] + list(attn)
        nf.manual_seed(8)
        rnn = nf.models.CharRNN(7, 6, 8, cell="gru").to(dev)
        out.append(rnn.generate([1, 2], 6, temperature=0.8,
                                generator=nf.Generator().manual_seed(2)))
        return out, floats

    want, want_f = run("cpu")
    got, got_f = run(device)
    assert got == want, (got, want)
    for k, (g, w) in enumerate(zip(got_f, want_f)):
        _close(g, w, tol, f"decoding float result {k}")


def check_packed_lstm(device, tol):
    rng = np.random.default_rng(24)
    x = rng.standard_normal((3, 5, 4)).astype(np.float32)

    def run(dev):
        nf.manual_seed(9)
        lstm = nf.nn.LSTM(4, 6, num_layers=2, batch_first=True, bidirectional=True).to(dev)
        xt = T(x, dev).requires_grad_()
        packed = nf.nn.utils.rnn.pack_padded_sequence(xt, [3, 5, 2], batch_first=True,
                                                      enforce_sorted=False)
        out, (h, c) = lstm(packed)
        y, lengths = nf.nn.utils.rnn.pad_packed_sequence(out, batch_first=True)
        (y.sum() + h.sum() * 2 + c.sum()).backward()
        assert y.device == xt.device and lengths.tolist() == [3, 5, 2]
        return [y.detach().cpu().numpy(), h.detach().cpu().numpy(), xt.grad.cpu().numpy(),
                lstm.weight_hh_l1_reverse.grad.cpu().numpy()]

    for k, (g, w) in enumerate(zip(run(device), run("cpu"))):
        _close(g, w, tol, f"packed LSTM result {k}")


def check_peft(device, tol):
    """LoRA, adapters and prefix tuning added on the CPU, then the model moved and
    trained; and added after the move (their parameters must land on the device)."""
    def gpt():
        nf.manual_seed(10)
        return nf.models.GPT(11, block_size=8, n_layer=1, n_head=2, d_model=16)

    methods = {"lora": lambda m: nf.peft.apply_lora(m, r=2),
               "adapter": lambda m: nf.peft.apply_adapters(m, 4),
               "prefix": lambda m: nf.peft.apply_prefix_tuning(m, 2)}
    rng = np.random.default_rng(25)
    ids = rng.integers(0, 11, (2, 6))

    def run(name, dev):
        model = methods[name](gpt()).to(dev)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = nf.optim.AdamW(params, lr=1e-2)
        losses = []
        for _ in range(3):
            logits = model(T(ids[:, :-1], dev))
            loss = F.cross_entropy(logits.reshape(-1, 11), T(ids[:, 1:], dev).reshape(-1))
            _step(opt, loss)
            losses.append(loss.item())
        if name == "lora":
            nf.peft.merge_lora(model)
            with nf.no_grad():
                losses.append(F.cross_entropy(model(T(ids[:, :-1], dev)).reshape(-1, 11),
                                              T(ids[:, 1:], dev).reshape(-1)).item())
        return losses

    for name, apply in methods.items():
        _close(run(name, device), run(name, "cpu"), tol, f"peft {name} losses")
        moved = apply(gpt().to(device))
        for n, p in moved.named_parameters():
            assert p.device.type == nf.device(device).type, (name, n, p.device)
        moved(T(ids, device)).sum().backward()


def check_recipe(device, tol, tmp_path):
    """The MLP digits recipe (fit, checkpoints, summary, plots) with device=... vs cpu,
    and the evaluator reading its checkpoint onto the device."""
    from nnforge.train.recipes.dense import evaluate_mlp_digits, mlp_digits

    def run(dev):
        out = tmp_path / str(dev)
        hist = mlp_digits(epochs=1, hidden=16, device=dev, out_dir=str(out), progress=False,
                          log=lambda *a: None)
        ev = evaluate_mlp_digits(str(out / "last.safetensors"), device=dev, progress=False,
                                 log=lambda *a: None)
        return hist, ev

    (got, got_ev), (want, want_ev) = run(device), run("cpu")
    _close(got["train_loss"], want["train_loss"], tol, "recipe train loss")
    _close(got_ev["loss"], want_ev["loss"], tol, "evaluator loss")


CHECKS = [check_tensor_conversions, check_indexing, check_checkpoint_resume, check_fit,
          check_decoding, check_packed_lstm, check_peft, check_recipe]
