"""A small residual network (He et al. 2016, "Deep Residual Learning").

A residual block learns a correction F(x) to its input instead of a whole new
mapping:

    y = relu(F(x) + shortcut(x)),   F(x) = BN(conv3x3(relu(BN(conv3x3(x)))))

When the block keeps the shape, shortcut(x) = x: the identity path lets the
gradient reach early layers undiminished (dL/dx = dL/dy (dF/dx + I)), which
is what makes very deep stacks trainable. When a block halves the map
(stride 2) or changes the width, the shortcut is a 1x1 convolution with the
same stride, followed by BatchNorm ("option B" of the paper).

The network: a 3x3 stem, stages of ``BasicBlock``s (each stage after the
first starts with a stride-2 block and doubles the width), global average
pooling and one linear layer, as in the paper's CIFAR models.
"""
from __future__ import annotations

from typing import Sequence

from .. import nn
from ..tensor import Tensor


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with a shortcut around them; the names
    (conv1, bn1, conv2, bn2, downsample) are torchvision's.

    >>> import nnforge as nf
    >>> block = nf.models.resnet.BasicBlock(16, 32, stride=2)
    >>> tuple(block(nf.zeros(1, 16, 8, 8)).shape)
    (1, 32, 4, 4)
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels))

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """``ResNet(num_classes=10, in_channels=1, widths=(16, 32, 64), blocks=(1, 1, 1))``:
    stem (conv3x3-BN-ReLU), one stage of ``blocks[i]`` BasicBlocks per width
    (stride 2 at the start of every stage but the first), global average
    pooling, linear classifier. With the defaults an 8x8 input ends as 2x2 maps.

    >>> import nnforge as nf
    >>> net = nf.models.ResNet()
    >>> tuple(net(nf.zeros(2, 1, 8, 8)).shape)
    (2, 10)
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1,
                 widths: Sequence[int] = (16, 32, 64), blocks: Sequence[int] = (1, 1, 1)):
        super().__init__()
        widths, blocks = list(widths), list(blocks)
        if not widths or len(widths) != len(blocks) or min(blocks) < 1:
            raise ValueError(f"ResNet: widths {widths} and blocks {blocks} must be non-empty "
                             "lists of equal length with at least one block per stage")
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]), nn.ReLU())
        stages = []
        width = widths[0]
        for i, (w, n) in enumerate(zip(widths, blocks)):
            layers = []
            for j in range(n):
                layers.append(BasicBlock(width, w, stride=2 if (i > 0 and j == 0) else 1))
                width = w
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, num_classes)
        for m in self.modules():  # He initialization for the ReLU convolutions
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        x = self.stages(self.stem(x))
        return self.fc(self.pool(x).flatten(1))
