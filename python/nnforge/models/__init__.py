"""Ready architectures, built from ``nnforge.nn`` only."""
from .bert import BERT, BertClassifier, mask_tokens
from .autoencoder import (Autoencoder, DenoisingAutoencoder, SparseAutoencoder, kl_sparsity,
                          l1_activity, reconstruction_error)
from .char_rnn import CharRNN
from .conv_autoencoder import ConvAutoencoder
from .gpt import GPT, KVCache
from .gan import GAN, Discriminator, Generator, discriminator_loss, generator_loss
from .lenet import LeNet5
from .mlp import MLP
from .perceptron import Perceptron, surrogate_loss
from .rcnn import RCNN, RecurrentConv2d
from .resnet import BasicBlock, ResNet
from .seq2seq import Attention, Seq2Seq
from .sequence import ManyToOne
from .transformer_seq2seq import TransformerSeq2Seq
from .vae import VAE, vae_loss
from .vit import ViT

__all__ = ["MLP", "Perceptron", "surrogate_loss",
           "Autoencoder", "SparseAutoencoder", "DenoisingAutoencoder", "reconstruction_error",
           "kl_sparsity", "l1_activity", "VAE", "vae_loss",
           "GAN", "Generator", "Discriminator", "generator_loss", "discriminator_loss",
           "LeNet5", "ResNet", "BasicBlock", "RCNN", "RecurrentConv2d", "ConvAutoencoder",
           "CharRNN", "Seq2Seq", "Attention", "ManyToOne", "GPT", "KVCache", "ViT",
           "BERT", "BertClassifier", "mask_tokens", "TransformerSeq2Seq"]
