"""The generative adversarial network (Goodfellow et al. 2014), with MLPs.

A generator G maps noise z ~ N(0, I) to a sample G(z); a discriminator D
outputs the logit of "x is real". They play

    min_G max_D  E_x[log D(x)] + E_z[log(1 - D(G(z)))].

D's step is a binary classification, real -> 1 and fake -> 0:

    L_D = BCE(D(x), 1) + BCE(D(G(z)), 0).

G's step uses the non-saturating loss L_G = -E_z[log D(G(z))] = BCE(D(G(z)), 1)
instead of minimising log(1 - D(G(z))): both have the same fixed point, but
early on, when D rejects every fake, log(1 - D) is flat and its gradient
vanishes, while -log D is steep there.

Following DCGAN's advice (Radford et al. 2016): LeakyReLU(0.2), Adam with
beta1 = 0.5. The generator ends in a sigmoid (pixels in [0, 1]) or a tanh
(pixels in [-1, 1]).

Mode collapse, G mapping every z to one or a few images that fool D, is what
an MLP GAN on a small data set does first. The minibatch standard deviation
feature (Karras et al. 2018) lets D see a batch's variety: the standard
deviation of each hidden feature over the batch, averaged to one number

    s = mean_k sqrt(Var_n[h_nk] + 1e-8),

is appended to every sample's features before the last layer, so a batch
of near-copies is easy to call fake.
"""
from __future__ import annotations

from typing import Sequence

from .. import nn
from ..autograd.grad_mode import no_grad
from ..nn import functional as F
from ..ops.creation import ones_like, randn, zeros_like
from ..ops.shape import cat
from ..tensor import Tensor
from .autoencoder import dense_stack


class Generator(nn.Module):
    """``Generator(latent_dim=32, hidden_sizes=(256,), out_features=64)``:
    z (N, latent_dim) -> samples (N, out_features) in [0, 1] (sigmoid) or [-1, 1] (tanh)."""

    def __init__(self, latent_dim: int = 32, hidden_sizes: Sequence[int] = (256,),
                 out_features: int = 64, activation: str = "leaky_relu",
                 out_activation: str = "sigmoid"):
        super().__init__()
        if out_activation not in ("sigmoid", "tanh"):
            raise ValueError(f"Generator: out_activation must be 'sigmoid' or 'tanh', "
                             f"got {out_activation!r}")
        self.latent_dim = latent_dim
        self.net = dense_stack([latent_dim, *hidden_sizes, out_features], activation,
                               out_activation)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class Discriminator(nn.Module):
    """``Discriminator(in_features=64, hidden_sizes=(128,), minibatch_std=True)``:
    x -> the logit of "real" (N,), LeakyReLU(0.2) between the layers, with the
    minibatch standard deviation feature before the last layer."""

    def __init__(self, in_features: int = 64, hidden_sizes: Sequence[int] = (128,),
                 minibatch_std: bool = True):
        super().__init__()
        hidden = list(hidden_sizes)
        if hidden:
            self.features = dense_stack([in_features, *hidden], "leaky_relu", "leaky_relu")
        else:
            self.features = nn.Identity()
        self.minibatch_std = minibatch_std
        width = hidden[-1] if hidden else in_features
        self.head = nn.Linear(width + (1 if minibatch_std else 0), 1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.features(x.flatten(1) if x.ndim > 2 else x)
        if self.minibatch_std:
            # s = mean_k sqrt(Var_n h_nk + 1e-8): one number per batch, given to every sample
            s = (h.var(0, correction=0) + 1e-8).sqrt().mean()
            h = cat([h, s.expand(h.shape[0], 1)], 1)
        return self.head(h).squeeze(-1)


def discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """L_D = BCE(D(x), 1) + BCE(D(G(z)), 0), each a batch mean."""
    return (F.binary_cross_entropy_with_logits(real_logits, ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, zeros_like(fake_logits)))


def generator_loss(fake_logits: Tensor) -> Tensor:
    """The non-saturating L_G = -mean log D(G(z)) = BCE(D(G(z)), 1)."""
    return F.binary_cross_entropy_with_logits(fake_logits, ones_like(fake_logits))


class GAN(nn.Module):
    """``GAN(data_features=64, latent_dim=32, g_hidden=(256,), d_hidden=(128,))``:
    a ``Generator`` and a ``Discriminator`` side by side. Train them with two optimizers, one over
    ``gan.generator.parameters()``, one over ``gan.discriminator.parameters()``,
    alternating ``discriminator_loss`` and ``generator_loss`` steps.

    >>> import nnforge as nf
    >>> gan = nf.models.GAN(64, latent_dim=16)
    >>> fake = gan.sample(8)
    >>> tuple(fake.shape), tuple(gan.discriminator(fake).shape)
    ((8, 64), (8,))
    """

    def __init__(self, data_features: int = 64, latent_dim: int = 32,
                 g_hidden: Sequence[int] = (256,), d_hidden: Sequence[int] = (128,),
                 out_activation: str = "sigmoid", minibatch_std: bool = True):
        super().__init__()
        self.latent_dim = latent_dim
        self.generator = Generator(latent_dim, g_hidden, data_features,
                                   out_activation=out_activation)
        self.discriminator = Discriminator(data_features, d_hidden, minibatch_std)

    def noise(self, n: int, generator=None) -> Tensor:
        """z ~ N(0, I), (n, latent_dim)."""
        w = self.generator.net[0].weight
        return randn(n, self.latent_dim, generator=generator, dtype=w.dtype, device=w.device)

    def forward(self, z: Tensor) -> Tensor:
        return self.generator(z)

    @no_grad()
    def sample(self, n: int, generator=None) -> Tensor:
        """n samples G(z), z ~ N(0, I)."""
        return self.generator(self.noise(n, generator))
