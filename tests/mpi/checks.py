"""Checks that run inside an MPI job: ``mpirun -n 2 python tests/mpi/checks.py OUT NAME...``.

Each check runs on every rank and raises on failure; rank 0 writes
{name: "ok" | error text} as JSON to OUT (a check that fails on any rank
fails). tests/test_distributed.py launches one job for all of them.
"""
import json
import sys
import traceback

import numpy as np

import nnforge as nf
import nnforge.distributed as dist
from nnforge.nn.parallel import DistributedDataParallel as DDP

CHECKS = {}


def check(fn):
    CHECKS[fn.__name__] = fn
    return fn


def close(a, b, tol=1e-5, what=""):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol, err_msg=what)


# --------------------------------------------------------------------------- collectives
@check
def collectives():
    r, n = dist.get_rank(), dist.get_world_size()
    assert n == 2 and dist.get_node_local_rank() == r and dist.get_backend() == "mpi"
    base = np.array([[1.0, -2.0, 3.5], [0.25, 7.0, -1.0]], dtype=np.float32)
    vals = [base * (k + 1) for k in range(n)]
    for op, ref in ((dist.ReduceOp.SUM, sum(vals)), (dist.ReduceOp.AVG, sum(vals) / n),
                    (dist.ReduceOp.MAX, np.maximum(*vals)), (dist.ReduceOp.MIN, np.minimum(*vals))):
        t = nf.tensor(vals[r])
        v0 = t._version
        assert dist.all_reduce(t, op) is None
        close(t.numpy(), ref, 1e-6, str(op))
        assert t._version > v0
    # in place on the tensor's own array: no copy
    t = nf.tensor(vals[r].astype(np.float64))
    arr = t.data
    dist.all_reduce(t)
    assert t.data is arr and np.allclose(arr, sum(vals))
    # non-contiguous (a transposed view) and integer, async
    t = nf.tensor(vals[r]).t()
    work = dist.all_reduce(t, async_op=True)
    work.wait()
    assert work.is_completed()
    close(t.numpy(), sum(vals).T, 1e-6)
    ti = nf.tensor([r, 10 * r, -r], dtype=nf.int64)
    dist.all_reduce(ti, dist.ReduceOp.MAX)
    assert ti.tolist() == [1, 10, 0]
    try:
        dist.all_reduce(nf.tensor([1, 2]), dist.ReduceOp.AVG)
        raise AssertionError("AVG on int64 should raise")
    except TypeError as e:
        assert "floating point" in str(e)
    # broadcast from each source
    for src in range(n):
        t = nf.full((3, 2), float(r))
        dist.broadcast(t, src=src)
        assert np.all(t.numpy() == src)
    # all_gather
    outs = [nf.zeros(2, 2) for _ in range(n)]
    dist.all_gather(outs, nf.full((2, 2), float(r + 1)))
    for k in range(n):
        assert np.all(outs[k].numpy() == k + 1)
    try:
        dist.all_gather([nf.zeros(2, 2)], nf.zeros(2, 2))
        raise AssertionError("all_gather with a short list should raise")
    except ValueError as e:
        assert "world_size=2" in str(e)
    # barrier: rank 1 cannot pass before rank 0 wrote its marker
    dist.barrier()
    dist.barrier(async_op=True).wait()


# --------------------------------------------------------------------------- DDP
def mlp(seed, dtype=nf.float32):
    nf.manual_seed(seed)
    return nf.nn.Sequential(nf.nn.Linear(6, 16), nf.nn.Tanh(), nf.nn.Linear(16, 8), nf.nn.ReLU(),
                            nf.nn.Linear(8, 3)).to(dtype)


def batches(steps, size, seed=123):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((size, 6)).astype(np.float32), rng.integers(0, 3, size))
            for _ in range(steps)]


def train(model, opt_fn, data, shard=None, no_sync_chunks=1):
    """SGD/Adam steps over ``data``; ``shard`` (rank, n) takes this rank's rows;
    ``no_sync_chunks`` > 1 splits each step into micro-batches accumulated locally."""
    opt = opt_fn(model.parameters())
    loss_fn = nf.nn.CrossEntropyLoss()
    for x, y in data:
        if shard is not None:
            r, n = shard
            b = len(x) // n
            x, y = x[r * b:(r + 1) * b], y[r * b:(r + 1) * b]
        opt.zero_grad()
        chunks = np.array_split(np.arange(len(x)), no_sync_chunks)
        for i, idx in enumerate(chunks):
            last = i == len(chunks) - 1
            ctx = model.no_sync() if (not last and isinstance(model, DDP)) else _Null()
            with ctx:
                loss = loss_fn(model(nf.tensor(x[idx])), nf.tensor(y[idx])) / no_sync_chunks
                loss.backward()
        opt.step()
    return model


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


OPTIMIZERS = {"sgd": lambda ps: nf.optim.SGD(ps, lr=0.1, momentum=0.9),
              "adam": lambda ps: nf.optim.Adam(ps, lr=0.01)}


def _equivalence(opt_name, no_sync_chunks=1, bucket_cap_mb=None):
    r, n = dist.get_rank(), dist.get_world_size()
    data = batches(steps=5, size=8)
    ref = train(mlp(0), OPTIMIZERS[opt_name], data)  # one process, batch 8
    # every rank starts from different weights: DDP must broadcast rank 0's (seed 0)
    ddp = DDP(mlp(r), bucket_cap_mb=bucket_cap_mb)
    train(ddp, OPTIMIZERS[opt_name], data, shard=(r, n), no_sync_chunks=no_sync_chunks)
    for (name, p), q in zip(ddp.module.named_parameters(), ref.parameters()):
        close(p.detach().numpy(), q.detach().numpy(), 2e-5, f"{opt_name} {name}")
    # replicas identical across ranks
    for p in ddp.module.parameters():
        got = [nf.zeros_like(p) for _ in range(n)]
        dist.all_gather(got, p.detach())
        assert np.array_equal(got[0].numpy(), got[1].numpy())


@check
def ddp_equivalence_sgd():
    _equivalence("sgd")


@check
def ddp_equivalence_adam_small_buckets():
    _equivalence("adam", bucket_cap_mb=0.0005)  # ~500 bytes: several buckets


@check
def ddp_no_sync_accumulation():
    _equivalence("sgd", no_sync_chunks=2)


@check
def ddp_buffers_and_state_dict():
    r = dist.get_rank()
    nf.manual_seed(r)
    net = nf.nn.Sequential(nf.nn.Linear(4, 5), nf.nn.BatchNorm1d(5))
    with nf.no_grad():
        net[1].running_mean.add_(float(r) + 1)
    ddp = DDP(net)
    got = [nf.zeros(5) for _ in range(2)]
    dist.all_gather(got, net[1].running_mean)
    assert np.array_equal(got[0].numpy(), got[1].numpy())  # rank 0's buffers everywhere
    keys = list(ddp.state_dict())
    assert keys[0] == "module.0.weight" and "module.1.running_mean" in keys
    assert set(net.state_dict()) == {k[len("module."):] for k in keys}
    # a training forward broadcasts rank 0's buffers again (BN stats differ per rank after it)
    x = nf.randn(6, 4) + r
    ddp(x).sum().backward()
    ddp(x).sum().backward()
    dist.all_gather(got, net[1].running_mean)
    assert not np.array_equal(got[0].numpy(), got[1].numpy())
    ddp.eval()
    ddp._sync_buffers()
    dist.all_gather(got, net[1].running_mean)
    assert np.array_equal(got[0].numpy(), got[1].numpy())


@check
def ddp_overlap():
    """With small buckets the first Iallreduce is posted while backward is still
    producing gradients (before the first layer's weight gradient is ready)."""
    nf.manual_seed(0)
    net = nf.nn.Sequential(*[nf.nn.Linear(64, 64) for _ in range(4)])
    ddp = DDP(net, bucket_cap_mb=64 * 64 * 4 / 2**20)  # one weight per bucket
    ddp.reducer.events = events = []
    ddp(nf.randn(8, 64)).sum().backward()
    kinds = [e[0] for e in events]
    first_launch = kinds.index("launch")
    last_ready = len(kinds) - 1 - kinds[::-1].index("ready")
    assert first_launch < last_ready, events
    assert events[last_ready] == ("ready", "0.weight") or events[last_ready][1].startswith("0."), \
        events
    assert kinds[-1] == "done" and kinds.count("launch") == len(ddp.reducer.buckets) >= 4
    launched = [e[1] for e in events if e[0] == "launch"]
    assert launched == sorted(launched)


@check
def ddp_unused_parameters():
    r = dist.get_rank()

    class Branchy(nf.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nf.nn.Linear(3, 2)
            self.b = nf.nn.Linear(3, 2)       # used on rank 0 only
            self.never = nf.nn.Linear(3, 2)   # used nowhere

        def forward(self, x):
            y = self.a(x)
            return y + self.b(x) if r == 0 else y

    nf.manual_seed(0)
    net = Branchy()
    ddp = DDP(net, find_unused_parameters=True)
    x = nf.ones(2, 3)
    ddp(x).sum().backward()
    close(net.a.weight.grad.numpy(), np.full((2, 3), 2.0))  # d/dW of sum over 2 rows, same
    close(net.b.weight.grad.numpy(), np.full((2, 3), 1.0))  # (2 + 0) / 2
    assert net.never.weight.grad is None
    # without find_unused_parameters: a clear error, on the ranks that miss a gradient
    net2 = Branchy()
    ddp2 = DDP(net2)
    try:
        ddp2(x).sum().backward()
        raised = None
    except RuntimeError as e:
        raised = str(e)
    assert raised is not None and "never.weight" in raised and "find_unused_parameters" in raised


@check
def ddp_fit_matches_single_process():
    """nf.train.fit under a 2-rank group: DDP + DistributedSampler + means over all ranks."""
    r = dist.get_rank()
    rng = np.random.default_rng(0)
    x = nf.tensor(rng.standard_normal((32, 6)).astype(np.float32))
    y = nf.tensor(rng.integers(0, 3, 32))
    ds = nf.data.TensorDataset(x, y)

    def run(distributed):
        model = mlp(0 if distributed is False else r)
        opt = nf.optim.SGD(model.parameters(), lr=0.1)
        bs = 8 if distributed is False else 4
        loader = nf.data.DataLoader(ds, batch_size=bs)
        h = nf.train.fit(model, nf.nn.CrossEntropyLoss(), opt, loader, epochs=2,
                         metrics=["accuracy"], progress=False, log=None,
                         distributed=distributed)
        return model, h
    ref, h_ref = run(False)
    model, h = run(None)  # auto: the group has 2 ranks
    # unshuffled: rank 0 reads rows 0,2,4,6 and rank 1 rows 1,3,5,7 of each 8-row batch
    for p, q in zip(model.parameters(), ref.parameters()):
        close(p.detach().numpy(), q.detach().numpy(), 2e-5)
    close(h["loss"], h_ref["loss"], 1e-5)
    close(h["accuracy"], h_ref["accuracy"], 1e-6)


def main():
    out, names = sys.argv[1], sys.argv[2:] or list(CHECKS)
    dist.init_process_group()
    results = {}
    for name in names:
        try:
            CHECKS[name]()
            status = "ok"
        except Exception:  # noqa: BLE001 - reported per check
            status = f"rank {dist.get_rank()}: " + traceback.format_exc()
        flag = nf.tensor([0 if status == "ok" else 1])
        dist.all_reduce(flag, dist.ReduceOp.MAX)
        results[name] = status
        if flag.item() and status == "ok":
            results[name] = "failed on another rank"
    # rank 0 writes; the other ranks' failures reach it through stderr and the flag
    if dist.get_rank() == 0:
        with open(out, "w") as f:
            json.dump(results, f)
    else:
        for name, status in results.items():
            if status != "ok" and not status.startswith("failed on another"):
                print(f"[{name}] {status}", file=sys.stderr)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
