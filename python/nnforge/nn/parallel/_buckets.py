"""The gradient reducer of DistributedDataParallel: buckets, and all-reduces
that run while backward is still going.

Parameters are grouped, in *reverse* registration order (roughly the order
backward produces their gradients), into buckets of at most ``bucket_cap``
bytes of one dtype; the first bucket is capped at 1 MiB so communication
starts early. Each bucket owns one flat buffer. During backward:

1. a parameter's post-accumulate-grad hook copies its ``.grad`` into its
   slot of the bucket buffer;
2. when every parameter of a bucket is in, the bucket is *launched*: a
   non-blocking ``Iallreduce`` (sum) on its buffer. Buckets launch in index
   order only (bucket k waits for buckets < k), so every rank posts the same
   collectives in the same order, whatever order its hooks fire in;
3. after the engine finishes (a callback queued with
   ``autograd.queue_callback``), the reducer launches what is left, waits
   for all buckets, divides by the world size and makes each ``.grad`` a view
   of its slot of the averaged buffer (a new buffer is taken for the next
   step, so no array the engine or optimizer holds is written behind its back).

MPI moves a posted message forward only inside MPI calls (Open MPI and MPICH
run no progress thread by default): every hook therefore also tests the
posted requests, which drives the transfers along while backward computes.
"""
from __future__ import annotations

import numpy as np

from ...autograd.engine import queue_callback
from ...tensor import Tensor

FIRST_BUCKET_BYTES = 1024 * 1024  # PyTorch's dist._DEFAULT_FIRST_BUCKET_BYTES


class _Bucket:
    def __init__(self, params, dtype):
        self.params = params
        self.dtype = dtype
        self.offsets = []
        n = 0
        for p in params:
            self.offsets.append(n)
            n += p.data.size
        self.numel = n
        self.buffer = None
        self.pending = len(params)
        self.request = None


def assign_buckets(params, bucket_cap_bytes: int) -> list:
    """Lists of parameters, reverse order, each list one dtype and at most the cap
    (a parameter larger than the cap is a bucket of its own)."""
    buckets, current, size, cap = [], [], 0, min(FIRST_BUCKET_BYTES, bucket_cap_bytes)
    for p in reversed(params):
        nbytes = p.data.nbytes
        if current and (size + nbytes > cap or p.data.dtype != current[0].data.dtype):
            buckets.append(current)
            current, size, cap = [], 0, bucket_cap_bytes
        current.append(p)
        size += nbytes
    if current:
        buckets.append(current)
    return buckets


class Reducer:
    """Averages the gradients of ``params`` over ``group`` bucket by bucket
    (see the module docstring); ``names`` label parameters in error messages."""

    def __init__(self, params, names, group, bucket_cap_bytes: int,
                 find_unused_parameters: bool = False):
        from ...distributed._mpi import mpi
        self.MPI = mpi()
        self.group = group
        self.find_unused = find_unused_parameters
        self.names = {id(p): n for p, n in zip(params, names)}
        self.buckets = [_Bucket(ps, ps[0].data.dtype)
                        for ps in assign_buckets(params, bucket_cap_bytes)]
        self.slot = {}
        for b_idx, b in enumerate(self.buckets):
            for j, p in enumerate(b.params):
                self.slot[id(p)] = (b_idx, j)
        self.armed = False
        self.handles = [p.register_post_accumulate_grad_hook(self._on_grad) for p in params]
        # For tests and the benchmark: ("ready", name) / ("launch", bucket) / ("done",) events
        # are appended here when it is a list.
        self.events = None

    # ---- per step
    def prepare(self) -> None:
        """Arms the reducer for the next backward (called by DDP's forward)."""
        for b in self.buckets:
            b.pending = len(b.params)
            b.ready = [False] * len(b.params)
            b.request = None
            b.buffer = np.empty(b.numel, dtype=b.dtype)
        self.next_bucket = 0
        self.callback_queued = False
        self.armed = True

    def _on_grad(self, param) -> None:
        if not self.armed:
            return
        b_idx, j = self.slot[id(param)]
        b = self.buckets[b_idx]
        if b.ready[j]:
            return
        if not self.callback_queued:
            queue_callback(self._finish)
            self.callback_queued = True
        off = b.offsets[j]
        b.buffer[off:off + param.data.size] = param.grad.data.reshape(-1)
        b.ready[j] = True
        b.pending -= 1
        if self.events is not None:
            self.events.append(("ready", self.names[id(param)]))
        self._launch_ready()
        self._progress()

    def _launch(self, b_idx: int) -> None:
        b = self.buckets[b_idx]
        b.request = self.group.comm.Iallreduce(self.MPI.IN_PLACE, b.buffer, op=self.MPI.SUM)
        if self.events is not None:
            self.events.append(("launch", b_idx))

    def _launch_ready(self) -> None:
        while self.next_bucket < len(self.buckets) and self.buckets[self.next_bucket].pending == 0:
            self._launch(self.next_bucket)
            self.next_bucket += 1

    def _progress(self) -> None:
        posted = [b.request for b in self.buckets[:self.next_bucket] if b.request is not None]
        if posted:
            self.MPI.Request.Testall(posted)

    # ---- after backward
    def _finish(self) -> None:
        self.armed = False
        missing = [p for b in self.buckets for p, r in zip(b.params, b.ready) if not r]
        if missing and not self.find_unused:
            self.MPI.Request.Waitall([b.request for b in self.buckets if b.request is not None])
            names = ", ".join(self.names[id(p)] for p in missing[:8])
            more = f" and {len(missing) - 8} more" if len(missing) > 8 else ""
            raise RuntimeError(
                f"DistributedDataParallel: parameters {names}{more} received no gradient in "
                "this backward, so their all-reduce would never start on this rank (and the "
                "other ranks would wait for it). Pass find_unused_parameters=True to the "
                "constructor when some parameters may take no part in the loss")
        used = None
        if self.find_unused:
            for b in self.buckets:
                for j, p in enumerate(b.params):
                    if not b.ready[j]:  # no gradient here: it adds zero to the sum
                        b.buffer[b.offsets[j]:b.offsets[j] + p.data.size] = 0
                b.pending = 0
            self._launch_ready()
            # After every bucket is posted, so all ranks post the same collectives in one order.
            used = self._globally_used(missing)
        requests = [b.request for b in self.buckets]
        self.MPI.Request.Waitall(requests)
        size = self.group.size
        for b in self.buckets:
            if size > 1:
                np.divide(b.buffer, b.dtype.type(size), out=b.buffer)
            for j, p in enumerate(b.params):
                if used is not None and not used[id(p)]:
                    continue  # no rank used it: its .grad stays as it was (PyTorch does the same)
                off = b.offsets[j]
                view = b.buffer[off:off + p.data.size].reshape(p.data.shape)
                p.grad = Tensor._make(view, p.device, False)
            b.buffer = None  # the next step takes a fresh buffer: the .grad views keep this one
        if self.events is not None:
            self.events.append(("done",))

    def _globally_used(self, missing) -> dict:
        """{id(param): whether some rank produced its gradient} (one small all-reduce)."""
        params = [p for b in self.buckets for p in b.params]
        missing_ids = {id(p) for p in missing}
        flags = np.array([id(p) not in missing_ids for p in params], dtype=np.int32)
        self.group.comm.Allreduce(self.MPI.IN_PLACE, flags, op=self.MPI.MAX)
        return {id(p): bool(f) for p, f in zip(params, flags)}

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []
