"""Truncated backpropagation through time (Williams & Peng 1990; the k1 = k2 = k
form used for language models since Mikolov 2012 and Zaremba et al. 2014).

A sequence too long to backpropagate through at once is cut into chunks of k
steps. Each chunk runs forward from the state the previous chunk ended in,
so the model *sees* the whole history; the state is detached at every chunk
boundary, so gradients flow back at most k steps and memory stays O(k):

    state_0 = initial
    for chunk j (steps jk .. jk+k-1):
        out_j, state_{j+1} = model(x_chunk_j, detach(state_j))
        loss_j.backward(); optimizer step

With k >= T this is ordinary BPTT.

    >>> import nnforge as nf
    >>> rnn = nf.nn.GRU(2, 3, batch_first=True)
    >>> x, y = nf.randn(4, 10, 2), nf.randn(4, 10, 3)
    >>> out = truncated_bptt(rnn, x, y, lambda o, t: ((o - t) ** 2).mean(), k=4)
    >>> out.chunks, tuple(out.state.shape)
    (3, (1, 4, 3))
"""
from __future__ import annotations

from typing import Callable, NamedTuple

from ..nn.utils import clip_grad_norm_
from ..tensor import Tensor

__all__ = ["detach_state", "truncated_bptt", "TBPTTResult"]


def detach_state(state):
    """``state`` with every tensor detached from the graph: a Tensor, or nested
    tuples/lists of them (an LSTM's ``(h, c)``), or None."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state.detach()
    if isinstance(state, (tuple, list)):
        return type(state)(detach_state(s) for s in state)
    raise TypeError(f"detach_state: expected a Tensor or a tuple/list of them, got "
                    f"{type(state).__name__}")


class TBPTTResult(NamedTuple):
    loss: float        # mean of the chunk losses, each weighted by its number of steps
    state: object      # the state after the last step, detached (pass it to the next call)
    chunks: int


def truncated_bptt(model: Callable, inputs: Tensor, targets: Tensor, loss_fn: Callable, k: int,
                   optimizer=None, state=None, time_dim: int = 1,
                   clip_norm: float | None = None) -> TBPTTResult:
    """Runs ``model(x_chunk, state) -> (output, state)`` over ``inputs`` in chunks of
    ``k`` steps along ``time_dim`` (1 for batch-first (B, T, ...), 0 for time-major),
    calling ``loss_fn(output, target_chunk).backward()`` per chunk.

    With an ``optimizer``, each chunk is one update (zero_grad, backward, optional
    gradient-norm clipping at ``clip_norm``, step). Without one, gradients of all
    chunks accumulate in ``.grad`` (the gradient of the truncated objective, as the
    sum of the chunk losses). The state is detached between chunks and at the end;
    carry the returned ``state`` into the next call to continue a stream.
    """
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"truncated_bptt: k must be a positive int, got {k!r}")
    for name, t in (("inputs", inputs), ("targets", targets)):
        if not isinstance(t, Tensor):
            raise TypeError(f"truncated_bptt: {name} must be a Tensor, got {type(t).__name__}")
        if t.ndim <= time_dim:
            raise ValueError(f"truncated_bptt: {name} of shape {tuple(t.shape)} has no time "
                             f"dim {time_dim}")
    steps = inputs.shape[time_dim]
    if targets.shape[time_dim] != steps:
        raise ValueError(f"truncated_bptt: inputs of shape {tuple(inputs.shape)} and targets "
                         f"of shape {tuple(targets.shape)} differ in length along time dim "
                         f"{time_dim}")
    params = None
    if optimizer is not None and clip_norm is not None:
        params = [p for group in optimizer.param_groups for p in group["params"]]
    total, chunks = 0.0, 0
    for start in range(0, steps, k):
        n = min(k, steps - start)
        x = inputs.narrow(time_dim, start, n)
        y = targets.narrow(time_dim, start, n)
        if optimizer is not None:
            optimizer.zero_grad()
        output, state = model(x, detach_state(state))
        loss = loss_fn(output, y)
        loss.backward()
        if optimizer is not None:
            if params is not None:
                clip_grad_norm_(params, clip_norm)
            optimizer.step()
        total += float(loss) * n
        chunks += 1
    return TBPTTResult(total / steps if steps else 0.0, detach_state(state), chunks)
