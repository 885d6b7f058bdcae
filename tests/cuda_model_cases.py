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
    "lenet_avg_tanh",     lambda: nf.models.LeNet5(4, input_size=14, activation="tanh", pooling="avg"),
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


def compare(case, device, rtol, atol):
    """Trains ``case`` on the CPU and on ``device``; asserts the loss curves and the
    final weights agree within (rtol, atol) and that the run trained something."""
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
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=rtol, atol=atol,
                                   err_msg=f"{case.__name__}: {k} after training on {device}")
