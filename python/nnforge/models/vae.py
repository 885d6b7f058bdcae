"""The variational autoencoder (Kingma and Welling 2014).

A latent-variable model p(x) = int p(x | z) p(z) dz with prior p(z) = N(0, I)
and a decoder p(x | z) = Bernoulli(sigmoid(g(z))) per pixel, fitted with an
encoder q(z | x) = N(mu(x), diag(exp(logvar(x)))) by maximising the evidence
lower bound

    ELBO(x) = E_q[log p(x | z)] - KL(q(z | x) || N(0, I)) <= log p(x).

Reparameterization: z = mu + exp(logvar / 2) * eps with eps ~ N(0, I) makes
the sample a differentiable function of (mu, logvar), so one draw gives an
unbiased gradient of the first term. The KL term is closed-form:

    KL = -1/2 sum_j (1 + logvar_j - mu_j^2 - exp(logvar_j)).

The loss is -ELBO averaged over the batch: the pixels' binary cross-entropy
(inputs scaled to [0, 1]) summed over pixels, plus the KL. New digits come
from decoding z ~ N(0, I).
"""
from __future__ import annotations

from typing import Sequence

from .. import nn
from ..autograd.grad_mode import no_grad
from ..nn import functional as F
from ..ops.creation import randn, randn_like
from ..tensor import Tensor
from .autoencoder import dense_stack


def vae_loss(logits: Tensor, x: Tensor, mu: Tensor, logvar: Tensor) -> tuple:
    """(-ELBO, reconstruction, KL), each averaged over the batch: the
    reconstruction is sum_pixels BCE(sigmoid(logits), x), the KL
    -1/2 sum_j (1 + logvar - mu^2 - exp(logvar))."""
    n = x.shape[0]
    recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / n
    kl = ((mu * mu + logvar.exp() - logvar - 1.0).sum() * 0.5) / n
    return recon + kl, recon, kl


class VAE(nn.Module):
    """``VAE(in_features=64, hidden_sizes=(128,), latent_dim=8)``: an MLP encoder
    to (mu, logvar) and an MLP decoder from z to pixel logits.

    ``forward(x)`` returns (logits, mu, logvar) with z sampled by the
    reparameterization; ``reconstruct(x)`` decodes the mean code to pixels in
    [0, 1]; ``sample(n)`` decodes draws from the prior.

    >>> import nnforge as nf
    >>> vae = nf.models.VAE(64, [32], latent_dim=4)
    >>> x = nf.rand(5, 64)
    >>> logits, mu, logvar = vae(x)
    >>> tuple(logits.shape), tuple(mu.shape)
    ((5, 64), (5, 4))
    >>> loss, terms = vae.loss(x)
    >>> sorted(terms)
    ['elbo', 'kl', 'loss', 'recon']
    >>> tuple(vae.sample(3).shape)
    (3, 64)
    """

    def __init__(self, in_features: int = 64, hidden_sizes: Sequence[int] = (128,),
                 latent_dim: int = 8, activation: str = "relu"):
        super().__init__()
        hidden = list(hidden_sizes)
        self.in_features, self.latent_dim = in_features, latent_dim
        if hidden:
            self.encoder = dense_stack([in_features, *hidden], activation, activation)
        else:
            self.encoder = nn.Identity()
        width = hidden[-1] if hidden else in_features
        self.fc_mu = nn.Linear(width, latent_dim)
        self.fc_logvar = nn.Linear(width, latent_dim)
        self.decoder = dense_stack([latent_dim, *hidden[::-1], in_features], activation)

    def encode(self, x: Tensor) -> tuple:
        """(mu, logvar) of q(z | x)."""
        h = self.encoder(x.flatten(1) if x.ndim > 2 else x)
        return self.fc_mu(h), self.fc_logvar(h)

    def reparameterize(self, mu: Tensor, logvar: Tensor, generator=None) -> Tensor:
        """z = mu + exp(logvar / 2) * eps, eps ~ N(0, I)."""
        eps = randn_like(mu, generator=generator)
        return mu + (logvar * 0.5).exp() * eps

    def decode(self, z: Tensor) -> Tensor:
        """Pixel logits of p(x | z)."""
        return self.decoder(z)

    def forward(self, x: Tensor) -> tuple:
        mu, logvar = self.encode(x)
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar

    def loss(self, x: Tensor) -> tuple:
        """(-ELBO, its terms as floats) for a batch with pixels in [0, 1]."""
        x = x.flatten(1) if x.ndim > 2 else x
        logits, mu, logvar = self(x)
        loss, recon, kl = vae_loss(logits, x, mu, logvar)
        return loss, {"loss": loss.item(), "recon": recon.item(), "kl": kl.item(),
                      "elbo": -loss.item()}

    @no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """sigmoid(g(mu(x))): the decoded mean code, pixels in [0, 1]."""
        mu, _ = self.encode(x)
        return self.decode(mu).sigmoid()

    @no_grad()
    def sample(self, n: int, generator=None) -> Tensor:
        """n images decoded from z ~ N(0, I), as probabilities in [0, 1]."""
        z = randn(n, self.latent_dim, generator=generator,
                  device=self.fc_mu.weight.device, dtype=self.fc_mu.weight.dtype)
        return self.decode(z).sigmoid()
