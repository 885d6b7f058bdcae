"""Character-level language model (char-rnn, Karpathy 2015): predict the next
character from the ones before it.

    e_t = E[x_t]                        embedding of character x_t
    h_t = cell(e_t, h_{t-1})            an RNN, LSTM or GRU, possibly stacked
    p(x_{t+1} | x_<=t) = softmax(W h_t + b)

Trained with cross-entropy on every position of windows cut from the text
(teacher forcing: the true previous character is fed, not the model's guess);
the loss in nats per character divided by ln 2 is bits per character, the
figure char-level models are compared by. Text is generated one character
at a time, carrying the hidden state, by sampling from the softmax at a
``temperature`` (below 1: more conservative, above 1: more surprising),
optionally only among the ``top_k`` most likely characters.
"""
from __future__ import annotations

from .. import nn
from ..autograd.grad_mode import no_grad
from ..ops.creation import tensor
from ..tensor import Tensor
from .sampling import check_sampling, sample_next

_CELLS = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}


class CharRNN(nn.Module):
    """``CharRNN(vocab_size, embedding_dim=64, hidden_size=256, num_layers=2,
    cell="lstm", dropout=0.0)``: embedding, recurrent stack (batch_first), linear
    head. ``forward(x, state=None)`` takes int64 ids (B, T) and returns (logits
    (B, T, vocab), state) so that generation and truncated BPTT can carry the state.
    """

    def __init__(self, vocab_size: int, embedding_dim: int = 64, hidden_size: int = 256,
                 num_layers: int = 2, cell: str = "lstm", dropout: float = 0.0):
        super().__init__()
        if cell not in _CELLS:
            raise ValueError(f"CharRNN: cell must be one of {sorted(_CELLS)}, got {cell!r}")
        self.cell = cell
        self.embed = nn.Embedding(vocab_size, embedding_dim)
        self.rnn = getattr(nn, _CELLS[cell])(embedding_dim, hidden_size, num_layers,
                                            batch_first=True, dropout=dropout)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, x: Tensor, state=None) -> tuple:
        out, state = self.rnn(self.embed(x), state)
        return self.head(out), state

    @no_grad()
    def generate(self, prompt_ids, length: int, temperature: float = 1.0,
                 top_k: int | None = None, generator=None, top_p: float | None = None) -> list:
        """``length`` new character ids after ``prompt_ids`` (a non-empty list of ints),
        sampled at ``temperature`` from the ``top_k`` most likely (all when None) or
        the ``top_p`` nucleus; temperature 0 picks the most likely character (greedy)."""
        if not prompt_ids:
            raise ValueError("CharRNN.generate: the prompt must hold at least one character")
        check_sampling("CharRNN.generate", temperature, top_k, top_p)
        was_training = self.training
        self.eval()
        device = self.head.weight.device
        logits, state = self(tensor([list(prompt_ids)], device=device))
        out = []
        for _ in range(length):
            nxt = sample_next(logits[0, -1].numpy(force=True), temperature, top_k, top_p,
                              generator)
            out.append(nxt)
            logits, state = self(tensor([[nxt]], device=device), state)
        self.train(was_training)
        return out
