"""LeNet-5 (LeCun et al. 1998): the convolutional network in its classic shape.

    input 1 x 32 x 32
    C1  conv 5x5, 6 maps        -> 6 x 28 x 28
    S2  pool 2x2                -> 6 x 14 x 14
    C3  conv 5x5, 16 maps       -> 16 x 10 x 10
    S4  pool 2x2                -> 16 x 5 x 5
    C5  full 400 -> 120, F6 120 -> 84, output 84 -> classes

Two ideas carry it: *local receptive fields with shared weights* (a 5x5 filter
slides over the whole image, so a stroke detector learned in one place works
everywhere, with 150 weights instead of 784 x 6), and *subsampling* (pooling
makes the maps smaller and the features a little translation invariant).
C5 is a 5x5 convolution over the 5x5 maps in the paper, i.e. a fully
connected layer, which is how it is written here.

"LeNet-5-style" as usually trained today: ReLU instead of the scaled tanh and
max instead of the trainable average pooling (both are options). Inputs of
28 x 28 (MNIST) are zero-padded by 2 in C1, which gives the same map sizes.
"""
from __future__ import annotations

from .. import nn
from ..tensor import Tensor

_ACTIVATIONS = {"relu": "ReLU", "tanh": "Tanh"}
_POOLS = {"max": "MaxPool2d", "avg": "AvgPool2d"}


class LeNet5(nn.Module):
    """``LeNet5(num_classes=10, in_channels=1, input_size=32, activation="relu",
    pooling="max")``: ``features`` (C1-S4) then ``classifier`` (C5-output).

    ``input_size``: the side of the square input; below 32 the first
    convolution pads by 2, so 28x28 (MNIST) inputs keep LeNet's map sizes.

    >>> import nnforge as nf
    >>> net = nf.models.LeNet5()
    >>> tuple(net(nf.zeros(2, 1, 32, 32)).shape)
    (2, 10)
    >>> sum(p.numel() for p in net.parameters())
    61706
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, input_size: int = 32,
                 activation: str = "relu", pooling: str = "max"):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"LeNet5: activation must be one of {sorted(_ACTIVATIONS)}, "
                             f"got {activation!r}")
        if pooling not in _POOLS:
            raise ValueError(f"LeNet5: pooling must be one of {sorted(_POOLS)}, got {pooling!r}")
        pad = 2 if input_size < 32 else 0  # MNIST's 28x28 padded to LeNet's 32x32
        side = ((input_size + 2 * pad - 4) // 2 - 4) // 2  # after C1, S2, C3, S4
        if side < 1:
            raise ValueError(f"LeNet5: input_size {input_size} is too small (at least 14 "
                             "with C1's padding of 2: LeNet-5 wants 28x28 or 32x32)")
        act, pool = getattr(nn, _ACTIVATIONS[activation]), getattr(nn, _POOLS[pooling])
        self.input_size = input_size
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=pad), act(), pool(2),   # C1, S2
            nn.Conv2d(6, 16, 5), act(), pool(2),                         # C3, S4
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * side * side, 120), act(),                    # C5
            nn.Linear(120, 84), act(),                                  # F6
            nn.Linear(84, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))
