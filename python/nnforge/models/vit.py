"""Vision Transformer (Dosovitskiy et al. 2021): an image read as a sequence
of patches.

    patches:   the (C, H, W) image cut into N = (H/p)(W/p) squares of p x p pixels,
               each flattened and projected to d_model (a p-strided p x p Conv2d)
    sequence:  [cls; patch_1; ...; patch_N] + learned position embeddings
    encoder:   pre-norm Transformer encoder layers (nn.TransformerEncoderLayer)
    head:      LayerNorm, then Linear on the cls token's final state

No convolutional prior beyond the patch cut: where things are comes only from
the position embeddings, which is why ViTs need more data (or augmentation)
than CNNs of their size.
"""
from __future__ import annotations

from .. import nn
from ..ops.creation import zeros
from ..ops.shape import cat
from ..tensor import Tensor

__all__ = ["ViT"]


class ViT(nn.Module):
    """``ViT(image_size=8, patch_size=2, in_channels=1, num_classes=10, d_model=64,
    depth=4, nhead=4, dim_feedforward=128, dropout=0.1)``:
    ``forward(x (B, C, H, W))`` -> logits (B, num_classes)."""

    def __init__(self, image_size: int = 8, patch_size: int = 2, in_channels: int = 1,
                 num_classes: int = 10, d_model: int = 64, depth: int = 4, nhead: int = 4,
                 dim_feedforward: int = 128, dropout: float = 0.1):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"ViT: image_size {image_size} is not a multiple of patch_size "
                             f"{patch_size}")
        self.image_size, self.patch_size, self.in_channels = image_size, patch_size, in_channels
        self.num_patches = (image_size // patch_size) ** 2
        self.patch_embed = nn.Conv2d(in_channels, d_model, patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(zeros(1, 1, d_model))
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.pos = nn.LearnedPositionalEmbedding(self.num_patches + 1, d_model)
        self.drop = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth, norm=nn.LayerNorm(d_model))
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.encoder(self.tokens(x))[:, 0])

    def tokens(self, x: Tensor) -> Tensor:
        """The encoder's input for images x (B, C, H, W): [cls; patches] + positions,
        (B, 1 + num_patches, d_model)."""
        if x.ndim != 4 or tuple(x.shape[1:]) != (self.in_channels, self.image_size,
                                                  self.image_size):
            raise ValueError(f"ViT: expected images (B, {self.in_channels}, {self.image_size}, "
                             f"{self.image_size}), got shape {tuple(x.shape)}")
        b = x.shape[0]
        patches = self.patch_embed(x).flatten(2).transpose(1, 2)     # (B, N, d_model)
        cls = self.cls_token.expand(b, 1, patches.shape[-1])
        return self.drop(self.pos(cat([cls, patches], 1)))
