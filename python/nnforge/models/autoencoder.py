"""Autoencoders: an encoder f and a decoder g trained so that g(f(x)) ~ x.

    h = f(x)        (the code)
    x_hat = g(h)    (the reconstruction)
    L = 1/N sum_n ||x_hat_n - x_n||^2

A plain autoencoder is *undercomplete*: the code is narrower than the input
(64-32-8-32-64 on the 8x8 digits), so it has to keep what matters; with linear
layers it finds the principal subspace, with nonlinear ones a curved manifold
(Hinton and Salakhutdinov 2006). Two regularized variants:

- sparse: most code units should be off for any one input. An L1 penalty
  lambda * sum_j |h_j| on the activity, or, with sigmoid code units, a KL
  penalty that pulls each unit's mean activation rho_hat_j (over the batch)
  towards a small target rho (Ng's CS294A notes):

      KL(rho || rho_hat) = sum_j rho log(rho / rho_hat_j)
                                 + (1 - rho) log((1 - rho) / (1 - rho_hat_j))

- denoising (Vincent et al. 2008): reconstruct the clean x from a corrupted
  x_tilde ~ q(x_tilde | x), Gaussian (x + sigma eps) or masking (each pixel
  zeroed with probability p): L = ||g(f(x_tilde)) - x||^2.

Every model here has ``loss(x)`` returning (the training loss, a dict of its
terms as floats), so one loop trains them all; the variational autoencoder is
in vae.py.
"""
from __future__ import annotations

from typing import Sequence

from .. import nn
from ..nn import functional as F
from ..ops.creation import randn_like, rand_like
from ..tensor import Tensor

_ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "gelu": nn.GELU,
    "identity": nn.Identity,
}


def dense_stack(sizes: Sequence[int], activation: str = "relu",
                last_activation: str = "identity") -> nn.Sequential:
    """Linear layers sizes[0] -> sizes[1] -> ... -> sizes[-1], ``activation``
    after each but the last, ``last_activation`` after the last.

    >>> dense_stack([64, 32, 8], "relu", "sigmoid")
    Sequential(
      (0): Linear(in_features=64, out_features=32, bias=True)
      (1): ReLU()
      (2): Linear(in_features=32, out_features=8, bias=True)
      (3): Sigmoid()
    )
    Total params: 2,344 (trainable: 2,344)
    """
    for name in (activation, last_activation):
        if name not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {name!r}")
    if len(sizes) < 2:
        raise ValueError(f"dense_stack: needs at least an input and an output size, got {sizes}")
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        last = i == len(sizes) - 2
        name = last_activation if last else activation
        if name != "identity":
            layers.append(_ACTIVATIONS[name]())
    return nn.Sequential(*layers)


def reconstruction_error(x_hat: Tensor, x: Tensor) -> Tensor:
    """1/N sum_n ||x_hat_n - x_n||^2: the squared error summed over features,
    averaged over the batch (divide by the feature count for the per-pixel MSE)."""
    return F.mse_loss(x_hat, x, reduction="sum") / x.shape[0]


class Autoencoder(nn.Module):
    """``Autoencoder(in_features=64, hidden_sizes=(32,), code_size=8)``: an
    undercomplete autoencoder; the decoder mirrors the encoder's hidden sizes.

    ``out_activation="sigmoid"`` suits inputs in [0, 1] (pixels);
    ``code_activation`` is the code units' nonlinearity ("identity": a linear code).

    >>> import nnforge as nf
    >>> ae = nf.models.Autoencoder(64, [32], 8)
    >>> x = nf.rand(5, 64)
    >>> tuple(ae.encode(x).shape), tuple(ae(x).shape)
    ((5, 8), (5, 64))
    >>> loss, terms = ae.loss(x)
    >>> sorted(terms)
    ['loss', 'recon']
    """

    def __init__(self, in_features: int = 64, hidden_sizes: Sequence[int] = (32,),
                 code_size: int = 8, activation: str = "relu",
                 code_activation: str = "identity", out_activation: str = "sigmoid"):
        super().__init__()
        hidden = list(hidden_sizes)
        self.in_features, self.code_size = in_features, code_size
        self.encoder = dense_stack([in_features, *hidden, code_size], activation, code_activation)
        self.decoder = dense_stack([code_size, *hidden[::-1], in_features], activation,
                                   out_activation)

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x.flatten(1) if x.ndim > 2 else x)

    def decode(self, h: Tensor) -> Tensor:
        return self.decoder(h)

    def forward(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x))

    def loss(self, x: Tensor) -> tuple:
        """(reconstruction error, its terms as floats)."""
        x = x.flatten(1) if x.ndim > 2 else x
        recon = reconstruction_error(self(x), x)
        return recon, {"loss": recon.item(), "recon": recon.item()}


def kl_sparsity(code: Tensor, rho: float, eps: float = 1e-6) -> Tensor:
    """sum_j KL(rho || rho_hat_j) for sigmoid code units ``code`` (N, K), with
    rho_hat_j the batch mean of unit j (clamped into (eps, 1 - eps))."""
    if not 0.0 < rho < 1.0:
        raise ValueError(f"kl_sparsity: rho must be in (0, 1), got {rho}")
    rho_hat = code.mean(0).clamp(eps, 1.0 - eps)
    return (rho * (rho / rho_hat).log()
            + (1.0 - rho) * ((1.0 - rho) / (1.0 - rho_hat)).log()).sum()


def l1_activity(code: Tensor) -> Tensor:
    """1/N sum_n sum_j |h_nj|: the L1 norm of the code, averaged over the batch."""
    return code.abs().sum() / code.shape[0]


class SparseAutoencoder(Autoencoder):
    """``SparseAutoencoder(64, (), code_size=32, sparsity="kl", rho=0.05, beta=None)``:
    loss = reconstruction + beta * penalty, the penalty being ``kl_sparsity`` of
    sigmoid code units (``sparsity="kl"``, beta 0.5 by default) or
    ``l1_activity`` of ReLU code units (``sparsity="l1"``, beta 0.1). The code
    can be as wide as the input: sparsity, not width, keeps it from copying.

    >>> import nnforge as nf
    >>> sae = nf.models.SparseAutoencoder(64, code_size=32)
    >>> loss, terms = sae.loss(nf.rand(5, 64))
    >>> sorted(terms)
    ['loss', 'mean_activation', 'penalty', 'recon']
    """

    def __init__(self, in_features: int = 64, hidden_sizes: Sequence[int] = (),
                 code_size: int = 32, sparsity: str = "kl", rho: float = 0.05,
                 beta: float | None = None, activation: str = "relu",
                 out_activation: str = "sigmoid"):
        if sparsity not in ("kl", "l1"):
            raise ValueError(f"SparseAutoencoder: sparsity must be 'kl' or 'l1', got {sparsity!r}")
        super().__init__(in_features, hidden_sizes, code_size, activation,
                         code_activation="sigmoid" if sparsity == "kl" else "relu",
                         out_activation=out_activation)
        if beta is None:
            beta = 0.5 if sparsity == "kl" else 0.1
        self.sparsity, self.rho, self.beta = sparsity, rho, beta

    def penalty(self, code: Tensor) -> Tensor:
        return kl_sparsity(code, self.rho) if self.sparsity == "kl" else l1_activity(code)

    def loss(self, x: Tensor) -> tuple:
        x = x.flatten(1) if x.ndim > 2 else x
        code = self.encode(x)
        recon = reconstruction_error(self.decode(code), x)
        penalty = self.penalty(code)
        loss = recon + self.beta * penalty
        return loss, {"loss": loss.item(), "recon": recon.item(), "penalty": penalty.item(),
                      "mean_activation": code.mean().item()}


class DenoisingAutoencoder(Autoencoder):
    """``DenoisingAutoencoder(64, (32,), 16, noise="gaussian", noise_level=0.3)``:
    trained to map a corrupted input back to the clean one. ``noise`` is
    "gaussian" (x + noise_level * eps) or "mask" (each feature zeroed with
    probability noise_level). ``forward`` reconstructs whatever it is given
    (pass it a noisy input to denoise it); ``loss(x)`` corrupts x itself.

    >>> import nnforge as nf
    >>> dae = nf.models.DenoisingAutoencoder(noise="mask", noise_level=0.5)
    >>> x = nf.ones(2, 64)
    >>> noisy = dae.corrupt(x)
    >>> bool(((noisy == 0) | (noisy == 1)).all())
    True
    """

    def __init__(self, in_features: int = 64, hidden_sizes: Sequence[int] = (32,),
                 code_size: int = 16, noise: str = "gaussian", noise_level: float = 0.3,
                 activation: str = "relu", code_activation: str = "identity",
                 out_activation: str = "sigmoid"):
        if noise not in ("gaussian", "mask"):
            raise ValueError(f"DenoisingAutoencoder: noise must be 'gaussian' or 'mask', "
                             f"got {noise!r}")
        if noise_level < 0 or (noise == "mask" and noise_level >= 1):
            raise ValueError(f"DenoisingAutoencoder: bad noise_level {noise_level} for {noise!r} "
                             "noise (gaussian: sigma >= 0; mask: probability in [0, 1))")
        super().__init__(in_features, hidden_sizes, code_size, activation, code_activation,
                         out_activation)
        self.noise, self.noise_level = noise, noise_level

    def corrupt(self, x: Tensor, generator=None) -> Tensor:
        """x_tilde ~ q(x_tilde | x): Gaussian x + sigma eps, or masking x * m with
        m_i ~ Bernoulli(1 - p)."""
        if self.noise == "gaussian":
            return x + randn_like(x, generator=generator) * self.noise_level
        keep = rand_like(x, generator=generator) >= self.noise_level
        return x * keep.to(x.dtype)

    def loss(self, x: Tensor) -> tuple:
        x = x.flatten(1) if x.ndim > 2 else x
        recon = reconstruction_error(self(self.corrupt(x)), x)  # clean target
        return recon, {"loss": recon.item(), "recon": recon.item()}
