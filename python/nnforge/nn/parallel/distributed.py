"""``DistributedDataParallel``: one model replica per rank, gradients averaged
over the ranks in buckets while backward runs (``torch.nn.parallel``).

Each rank runs the same model on its own share of the batch. At construction
rank 0's parameters and buffers are broadcast, so every replica starts equal;
after each backward every ``.grad`` holds the mean over the ranks of their
gradients, so the same optimizer step keeps the replicas equal. With per-rank
batch B on N ranks and a loss that is a mean over the batch, that mean
gradient is the gradient of the loss over the whole N*B batch: training
matches one process with batch N*B (BatchNorm aside: its batch statistics
are per rank, as in PyTorch without SyncBatchNorm).

>>> # dist.init_process_group()
>>> # model = nf.nn.parallel.DistributedDataParallel(MyNet(), bucket_cap_mb=25)
>>> # loss_fn(model(x), y).backward()     # .grad is now the mean over the ranks
>>> # with model.no_sync():                # accumulate locally, no communication
>>> #     loss_fn(model(x2), y2).backward()
"""
from __future__ import annotations

from contextlib import contextmanager

from ...autograd.grad_mode import is_grad_enabled, no_grad
from ..module import Module
from ._buckets import Reducer

__all__ = ["DistributedDataParallel"]


class DistributedDataParallel(Module):
    """Wraps ``module`` for data-parallel training over the default process group.

    - ``bucket_cap_mb`` (default 25, as PyTorch): the size of the gradient
      buckets; smaller buckets start communicating earlier in backward, larger
      ones send fewer, bigger messages.
    - ``broadcast_buffers``: copy rank 0's buffers (BatchNorm running
      statistics) to every rank at the start of each training forward.
    - ``find_unused_parameters``: with False, a parameter that gets no gradient
      in a backward is an error (raised on the ranks after backward, naming
      it). With True, such a parameter counts as a zero gradient in the mean;
      one that no rank used keeps its ``.grad`` untouched.
    - ``init_sync``: broadcast rank 0's parameters and buffers now.
    ``device_ids``, ``output_device``, ``dim``, ``gradient_as_bucket_view`` and
    ``static_graph`` are accepted for compatibility (one device per process;
    ``.grad`` is always a view of the averaged bucket).

    ``state_dict()`` keys carry the ``module.`` prefix as in PyTorch; save
    ``ddp.module.state_dict()`` for a checkpoint that loads without DDP.
    """

    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0,
                 broadcast_buffers: bool = True, init_sync: bool = True, process_group=None,
                 bucket_cap_mb: float | None = None, find_unused_parameters: bool = False,
                 check_reduction: bool = False, gradient_as_bucket_view: bool = False,
                 static_graph: bool = False):
        super().__init__()
        from ...distributed.process_group import _group
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: module must be an nnforge.nn.Module, "
                            f"got {type(module).__name__}")
        if bucket_cap_mb is None:
            bucket_cap_mb = 25
        if not bucket_cap_mb > 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be positive, "
                             f"got {bucket_cap_mb!r}")
        self.module = module
        self.process_group = _group(process_group)
        self.broadcast_buffers = broadcast_buffers
        self.find_unused_parameters = find_unused_parameters
        self.bucket_cap_mb = bucket_cap_mb
        self.require_backward_grad_sync = True
        named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        if not named:
            raise RuntimeError("DistributedDataParallel is not needed when a module doesn't "
                               "have any parameter that requires a gradient.")
        if init_sync:
            self._sync_module_states()
        self.reducer = Reducer([p for _, p in named], [n for n, _ in named], self.process_group,
                               int(bucket_cap_mb * 1024 * 1024), find_unused_parameters)

    def _sync_module_states(self) -> None:
        """Every rank takes rank 0's parameters and buffers."""
        from ...distributed.collectives import broadcast
        with no_grad():
            for t in list(self.module.parameters()) + list(self.module.buffers()):
                broadcast(t, 0, group=self.process_group)

    def _sync_buffers(self) -> None:
        from ...distributed.collectives import broadcast
        for b in self.module.buffers():
            broadcast(b, 0, group=self.process_group)

    def forward(self, *inputs, **kwargs):
        if self.broadcast_buffers and self.training and self.process_group.size > 1:
            self._sync_buffers()
        if is_grad_enabled() and self.require_backward_grad_sync:
            self.reducer.prepare()
        else:
            self.reducer.armed = False
        return self.module(*inputs, **kwargs)

    @contextmanager
    def no_sync(self):
        """Backwards of forwards run inside this block only accumulate ``.grad``
        locally; the first synchronized backward after it averages the sum."""
        old = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = old
