"""Ready architectures, built from ``nnforge.nn`` only."""
from .autoencoder import (Autoencoder, DenoisingAutoencoder, SparseAutoencoder, kl_sparsity,
                          l1_activity, reconstruction_error)
from .gan import GAN, Discriminator, Generator, discriminator_loss, generator_loss
from .mlp import MLP
from .perceptron import Perceptron, surrogate_loss
from .vae import VAE, vae_loss

__all__ = ["MLP", "Perceptron", "surrogate_loss",
           "Autoencoder", "SparseAutoencoder", "DenoisingAutoencoder", "reconstruction_error",
           "kl_sparsity", "l1_activity", "VAE", "vae_loss",
           "GAN", "Generator", "Discriminator", "generator_loss", "discriminator_loss"]
