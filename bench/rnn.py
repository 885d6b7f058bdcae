"""Recurrent layers (nn.LSTM, nn.GRU) and one char-LSTM training step, nnforge
against PyTorch CPU with the same weights and inputs.

Each layer is timed twice: forward only (inference, under no_grad in both),
and forward plus backward of the sum of the output (every parameter and the
input gradient). The shapes are issue 6's: batch 32, 100 steps, 256 input and
512 hidden features, one and two layers. The training step is char-rnn's
(nf.models.CharRNN): vocabulary 65, embedding 64, a 2-layer LSTM of 256,
batch 32 of 100 characters; forward, cross-entropy, backward and an Adam step.
``NNFORGE_BENCH_QUICK=1`` keeps one small case (for smoke tests).
"""
from __future__ import annotations

import os

import numpy as np

from .harness import Case, layer_cases

STEPS, BATCH, INPUT, HIDDEN = 100, 32, 256, 512
# (name, module class, num_layers)
LAYERS = [
    ("LSTM 256->512, 1 layer", "LSTM", 1),
    ("LSTM 256->512, 2 layers", "LSTM", 2),
    ("GRU 256->512, 1 layer", "GRU", 1),
    ("GRU 256->512, 2 layers", "GRU", 2),
]


def _layer_cases(name, kind, num_layers, threads, steps=STEPS, batch=BATCH, input_size=INPUT,
                 hidden=HIDDEN):
    x_np = np.random.default_rng(0).standard_normal((steps, batch, input_size)).astype(np.float32)
    return layer_cases(f"{name} T{steps} b{batch}", kind, (input_size, hidden, num_layers), {},
                       x_np, threads, first_output=True)


def _char_lstm_case(threads, vocab=65, embed=64, hidden=256, layers=2, batch=32, seq=100):
    import nnforge as nf
    rng = np.random.default_rng(0)
    x_np = rng.integers(0, vocab, (batch, seq))
    y_np = rng.integers(0, vocab, (batch, seq))
    nf.manual_seed(0)
    model = nf.models.CharRNN(vocab, embedding_dim=embed, hidden_size=hidden, num_layers=layers)
    opt = nf.optim.Adam(model.parameters(), lr=2e-3)
    loss_fn = nf.nn.CrossEntropyLoss()
    x, y = nf.from_numpy(x_np), nf.from_numpy(y_np.reshape(-1))

    def ours():
        opt.zero_grad()
        logits, _ = model(x)
        loss_fn(logits.reshape(-1, vocab), y).backward()
        opt.step()

    peer = None
    try:
        import torch
        from torch import nn
        torch.set_num_threads(threads)

        class TorchCharRNN(nn.Module):  # CharRNN built from torch.nn, same parameter names
            def __init__(self):
                super().__init__()
                self.embed = nn.Embedding(vocab, embed)
                self.rnn = nn.LSTM(embed, hidden, layers, batch_first=True)
                self.head = nn.Linear(hidden, vocab)

            def forward(self, ids):
                out, _ = self.rnn(self.embed(ids))
                return self.head(out)

        tmodel = TorchCharRNN()
        tmodel.load_state_dict({k: torch.from_numpy(v.numpy().copy())
                                for k, v in model.state_dict().items()})
        topt = torch.optim.Adam(tmodel.parameters(), lr=2e-3)
        tloss = nn.CrossEntropyLoss()
        tx, ty = torch.from_numpy(x_np), torch.from_numpy(y_np.reshape(-1))

        def peer():
            topt.zero_grad()
            tloss(tmodel(tx).reshape(-1, vocab), ty).backward()
            topt.step()
    except ImportError:
        pass
    return Case(f"char-LSTM train step V{vocab} E{embed} H{hidden}x{layers} b{batch} T{seq}",
                ours, peer, note="forward + cross-entropy + backward + Adam step")


def cases(threads: int):
    if os.environ.get("NNFORGE_BENCH_QUICK") == "1":
        return _layer_cases("LSTM 16->32, 1 layer", "LSTM", 1, threads, steps=10, batch=4,
                            input_size=16, hidden=32)
    out = []
    for name, kind, num_layers in LAYERS:
        out += _layer_cases(name, kind, num_layers, threads)
    out.append(_char_lstm_case(threads))
    return out
