"""Convolution and pooling layers, and one LeNet-5 training step, nnforge against
PyTorch CPU (oneDNN) with the same weights and inputs.

Each layer is timed twice: forward only (under no_grad in both), and forward
plus backward of the sum of the output (every parameter and input gradient).
The shapes are issue 5's: LeNet-5's two convolutions at batch 64, a 3->32
3x3 stem, a 64->64 3x3 ResNet layer, a 1x1 256->64 bottleneck, a depthwise
3x3, max and average pooling 2x2 and 3x3/2, batch norm.
``NNFORGE_BENCH_QUICK=1`` keeps one layer of each kind (for smoke tests).
"""
from __future__ import annotations

import os

import numpy as np

from .harness import Case, layer_cases

# (name, module constructor arguments, input shape)
CONVS = [
    ("lenet C1 conv 1->6 5x5 pad 2, 28x28 b64", ("Conv2d", (1, 6, 5), {"padding": 2}),
     (64, 1, 28, 28)),
    ("lenet C3 conv 6->16 5x5, 14x14 b64", ("Conv2d", (6, 16, 5), {}), (64, 6, 14, 14)),
    ("conv 3->32 3x3 pad 1, 32x32 b32", ("Conv2d", (3, 32, 3), {"padding": 1}), (32, 3, 32, 32)),
    ("conv 64->64 3x3 pad 1, 56x56 b8", ("Conv2d", (64, 64, 3), {"padding": 1}), (8, 64, 56, 56)),
    ("conv 1x1 256->64, 28x28 b8", ("Conv2d", (256, 64, 1), {}), (8, 256, 28, 28)),
    ("depthwise 3x3 128ch pad 1, 28x28 b8",
     ("Conv2d", (128, 128, 3), {"padding": 1, "groups": 128}), (8, 128, 28, 28)),
    ("maxpool 2x2, 64ch 56x56 b8", ("MaxPool2d", (2,), {}), (8, 64, 56, 56)),
    ("maxpool 3x3/2 pad 1, 64ch 56x56 b8", ("MaxPool2d", (3, 2, 1), {}), (8, 64, 56, 56)),
    ("avgpool 2x2, 64ch 56x56 b8", ("AvgPool2d", (2,), {}), (8, 64, 56, 56)),
    ("avgpool 3x3/2 pad 1, 64ch 56x56 b8", ("AvgPool2d", (3, 2, 1), {}), (8, 64, 56, 56)),
    ("maxpool 2x2, lenet 6ch 28x28 b64", ("MaxPool2d", (2,), {}), (64, 6, 28, 28)),
    ("batchnorm2d 64ch 56x56 b8 (train)", ("BatchNorm2d", (64,), {}), (8, 64, 56, 56)),
]
QUICK = {"lenet C3 conv 6->16 5x5, 14x14 b64", "maxpool 2x2, lenet 6ch 28x28 b64"}


def _layer_cases(name, spec, shape, threads):
    kind, args, kwargs = spec
    x_np = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    return layer_cases(name, kind, args, kwargs, x_np, threads)


def _lenet_step_case(threads, batch=64):
    import nnforge as nf
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((batch, 1, 28, 28)).astype(np.float32)
    y_np = rng.integers(0, 10, batch)
    nf.manual_seed(0)
    model = nf.models.LeNet5(input_size=28)
    opt = nf.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nf.nn.CrossEntropyLoss()
    x, y = nf.from_numpy(x_np), nf.from_numpy(y_np)

    def ours():
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()

    peer = None
    try:
        import torch
        from torch import nn
        torch.set_num_threads(threads)
        tmodel = nn.Sequential(
            nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2)),
            nn.Sequential(nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84),
                          nn.ReLU(), nn.Linear(84, 10)))
        # Same weights: LeNet5's features/classifier are tmodel[0]/tmodel[1].
        weights = {k.replace("features.", "0.").replace("classifier.", "1."):
                   torch.from_numpy(v.numpy().copy()) for k, v in model.state_dict().items()}
        tmodel.load_state_dict(weights)
        topt = torch.optim.SGD(tmodel.parameters(), lr=0.01, momentum=0.9)
        tloss = nn.CrossEntropyLoss()
        tx, ty = torch.from_numpy(x_np), torch.from_numpy(y_np)

        def peer():
            topt.zero_grad()
            tloss(tmodel(tx), ty).backward()
            topt.step()
    except ImportError:
        pass
    return Case(f"lenet-5 train step 1x28x28, batch {batch}", ours, peer,
                note="forward + cross-entropy + backward + SGD(momentum) step")


def cases(threads: int):
    quick = os.environ.get("NNFORGE_BENCH_QUICK") == "1"
    out = []
    for name, spec, shape in CONVS:
        if quick and name not in QUICK:
            continue
        out += _layer_cases(name, spec, shape, threads)
    out.append(_lenet_step_case(threads))
    return out
