"""Convolutional autoencoder: the autoencoder of autoencoder.py with convolutions.

The encoder halves the maps with stride-2 convolutions while widening them;
the decoder retraces the steps, doubling the maps either with transposed
convolutions (``decoder="transpose"``: a learned upsampling, the adjoint of a
stride-2 convolution) or with nearest-neighbour upsampling followed by a
convolution (``decoder="upsample"``: no checkerboard artefacts, Odena et al.
2016). On the 8x8 digits with the default widths:

    1x8x8 -> 16x4x4 -> 32x2x2 (the code, 128 numbers) -> 16x4x4 -> 1x8x8

The loss is the reconstruction error of autoencoder.py, so the same training
loop fits both kinds.
"""
from __future__ import annotations

from typing import Sequence

from .. import nn
from ..tensor import Tensor
from .autoencoder import reconstruction_error


class ConvAutoencoder(nn.Module):
    """``ConvAutoencoder(in_channels=1, widths=(16, 32), decoder="transpose")``:
    ``encoder`` (stride-2 3x3 convolutions with ReLU), ``decoder`` (the mirror
    image, sigmoid output for pixels in [0, 1]). Input sides must be divisible
    by 2 ** len(widths).

    >>> import nnforge as nf
    >>> ae = nf.models.ConvAutoencoder()
    >>> x = nf.rand(4, 1, 8, 8)
    >>> tuple(ae.encode(x).shape), tuple(ae(x).shape)
    ((4, 32, 2, 2), (4, 1, 8, 8))
    >>> loss, terms = ae.loss(x)
    >>> sorted(terms)
    ['loss', 'recon']
    """

    def __init__(self, in_channels: int = 1, widths: Sequence[int] = (16, 32),
                 decoder: str = "transpose"):
        super().__init__()
        if decoder not in ("transpose", "upsample"):
            raise ValueError(f"ConvAutoencoder: decoder must be 'transpose' or 'upsample', "
                             f"got {decoder!r}")
        widths = list(widths)
        if not widths:
            raise ValueError("ConvAutoencoder: widths must name at least one layer")
        chans = [in_channels, *widths]
        enc = []
        for c_in, c_out in zip(chans[:-1], chans[1:]):
            enc += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.ReLU()]
        self.encoder = nn.Sequential(*enc)
        dec = []
        back = chans[::-1]
        for i, (c_in, c_out) in enumerate(zip(back[:-1], back[1:])):
            if decoder == "transpose":
                # (s - 1) * 2 - 2 + 3 + 1 = 2 s: output_padding 1 restores the even size.
                dec.append(nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1,
                                              output_padding=1))
            else:
                dec += [nn.Upsample(scale_factor=2), nn.Conv2d(c_in, c_out, 3, padding=1)]
            dec.append(nn.Sigmoid() if i == len(back) - 2 else nn.ReLU())
        self.decoder = nn.Sequential(*dec)
        self.factor = 2 ** len(widths)

    def encode(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[-1] % self.factor or x.shape[-2] % self.factor:
            raise ValueError(f"ConvAutoencoder: expected (N, C, H, W) input with H and W "
                             f"divisible by {self.factor}, got shape {tuple(x.shape)}")
        return self.encoder(x)

    def decode(self, h: Tensor) -> Tensor:
        return self.decoder(h)

    def forward(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x))

    def loss(self, x: Tensor) -> tuple:
        """(reconstruction error summed over pixels, averaged over the batch; its terms)."""
        recon = reconstruction_error(self(x).flatten(1), x.flatten(1))
        return recon, {"loss": recon.item(), "recon": recon.item()}
