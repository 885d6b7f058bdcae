"""One training step of a 784-256-10 MLP (forward, cross-entropy, backward,
SGD update) at batch 64 and 512, nnforge against PyTorch CPU with the same
weights and data."""
from __future__ import annotations

import numpy as np

from .harness import Case

BATCHES = (64, 512)


def _step_case(batch: int, threads: int) -> Case:
    import nnforge as nf
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((batch, 784)).astype(np.float32)
    y_np = rng.integers(0, 10, batch)

    nf.manual_seed(0)
    model = nf.nn.Sequential(nf.nn.Linear(784, 256), nf.nn.ReLU(), nf.nn.Linear(256, 10))
    opt = nf.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nf.nn.CrossEntropyLoss()
    x, y = nf.from_numpy(x_np), nf.from_numpy(y_np)

    def ours():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    peer = None
    try:
        import torch
        torch.set_num_threads(threads)
        tmodel = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(),
                                     torch.nn.Linear(256, 10))
        tmodel.load_state_dict({k: torch.from_numpy(v.numpy().copy())
                                for k, v in model.state_dict().items()})
        topt = torch.optim.SGD(tmodel.parameters(), lr=0.01, momentum=0.9)
        tloss = torch.nn.CrossEntropyLoss()
        tx, ty = torch.from_numpy(x_np), torch.from_numpy(y_np)

        def peer():
            topt.zero_grad()
            loss = tloss(tmodel(tx), ty)
            loss.backward()
            topt.step()
    except ImportError:
        pass
    return Case(f"mlp 784-256-10 train step, batch {batch}", ours, peer,
                note="forward + cross-entropy + backward + SGD(momentum) step")


def cases(threads: int):
    return [_step_case(batch, threads) for batch in BATCHES]
