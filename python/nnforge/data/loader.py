"""``DataLoader``: batches from a data set, in the order a sampler gives, with
optional background threads that prepare the next batches while the model
computes on the current one.

How a batch is made (PyTorch's ``torch.utils.data.DataLoader`` semantics):

- a map-style data set is read through a sampler (``SequentialSampler``, or
  ``RandomSampler`` with ``shuffle=True``) grouped by a ``BatchSampler``; the
  samples of a batch go through ``collate_fn`` (``default_collate`` stacks
  them). A ``TensorDataset`` (also inside a ``Subset``) with the default
  collate function is gathered with one index per tensor instead;
- an ``IterableDataset`` is read front to back, ``batch_size`` items at a time;
- ``batch_size=None`` turns batching off: each sample is returned on its own,
  numpy arrays turned into tensors (``default_convert``).

Workers are threads, not processes: ``num_workers > 0`` starts that many
threads per pass, each fetching and collating whole batches. At most
``prefetch_factor * num_workers`` batches are in flight, and they are handed
out in the sampler's order. numpy, nnforge's kernels and I/O release the GIL,
so loading overlaps with compute; a ``__getitem__`` that spends its time in
pure Python code gains little. An exception in a worker is raised again in the
main thread (the same exception object, with its original traceback and a
note naming the worker), and leaving a loop early stops the threads.
"""
from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Mapping

import numpy as np

from ..random import Generator
from ..tensor import Tensor
from .dataset import IterableDataset, Subset, TensorDataset
from .sampler import BatchSampler, RandomSampler, SequentialSampler


# --------------------------------------------------------------------------- collate
def default_collate(batch):
    """Stacks a list of samples into a batch, field by field (PyTorch's rules):

    - tensors are stacked along a new first dim, numpy arrays too (as a tensor);
    - Python floats give a float64 tensor, ints an int64 tensor, bools a bool
      tensor, numpy scalars a tensor of their dtype;
    - strings and bytes are returned as the list they came in;
    - dicts give a dict, named tuples a named tuple, other tuples and lists a
      list of the collated fields (tuples become lists, as in PyTorch).

    >>> import nnforge as nf
    >>> x, y = default_collate([(nf.zeros(2), 0), (nf.ones(2), 1)])
    >>> tuple(x.shape), y.tolist()
    ((2, 2), [0, 1])
    """
    from ..ops.creation import from_numpy, tensor
    from ..ops.shape import stack
    if not isinstance(batch, (list, tuple)) or len(batch) == 0:
        raise ValueError("default_collate: expects a non-empty list of samples")
    first = batch[0]
    if isinstance(first, Tensor):
        return stack(list(batch))
    if isinstance(first, np.ndarray):
        if first.dtype.kind in "OSUV":
            raise TypeError(f"default_collate: cannot batch numpy arrays of dtype {first.dtype}")
        return from_numpy(np.stack(batch))
    if isinstance(first, np.generic) and not isinstance(first, (np.str_, np.bytes_)):
        return from_numpy(np.asarray(batch))
    if isinstance(first, float):
        from ..dtypes import float64
        return tensor(list(batch), dtype=float64)
    if isinstance(first, int):  # bool included: a list of bools gives a bool tensor
        return tensor(list(batch))
    if isinstance(first, (str, bytes)):
        return list(batch)
    if isinstance(first, Mapping):
        return {k: default_collate([s[k] for s in batch]) for k in first}
    if isinstance(first, (tuple, list)):
        if any(not isinstance(s, (tuple, list)) or len(s) != len(first) for s in batch):
            raise ValueError("default_collate: each element in the list of samples should be "
                             f"of equal size; got sizes {[len(s) for s in batch]}")
        fields = [default_collate(list(f)) for f in zip(*batch)]
        if isinstance(first, tuple) and hasattr(first, "_fields"):  # named tuple
            return type(first)(*fields)
        return fields
    raise TypeError("default_collate: a batch must contain tensors, numpy arrays, numbers, "
                    f"strings, dicts or lists; found {type(first).__name__}")


def default_convert(data):
    """What the loader does to a sample when batching is off (``batch_size=None``):
    numpy arrays and scalars become tensors, containers are converted field by
    field, everything else is returned unchanged."""
    from ..ops.creation import from_numpy
    if isinstance(data, np.ndarray) and data.dtype.kind not in "OSUV":
        return from_numpy(data)
    if isinstance(data, np.generic) and not isinstance(data, (np.str_, np.bytes_)):
        return from_numpy(np.asarray(data))
    if isinstance(data, Mapping):
        return {k: default_convert(v) for k, v in data.items()}
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(v) for v in data))
    if isinstance(data, tuple):
        return [default_convert(v) for v in data]
    if isinstance(data, list):
        return [default_convert(v) for v in data]
    return data


# --------------------------------------------------------------------------- workers
class WorkerInfo:
    """What ``get_worker_info()`` returns inside a loader's worker thread."""

    def __init__(self, id: int, num_workers: int, dataset):
        self.id = id
        self.num_workers = num_workers
        self.dataset = dataset

    def __repr__(self) -> str:
        return f"WorkerInfo(id={self.id}, num_workers={self.num_workers})"


_worker_local = threading.local()


def get_worker_info() -> WorkerInfo | None:
    """In a DataLoader worker thread: its ``WorkerInfo`` (id, num_workers,
    dataset); None in any other thread."""
    return getattr(_worker_local, "info", None)


def _tensor_fetcher(dataset):
    """A function gathering a whole batch of a TensorDataset (possibly inside
    Subsets) at once, or None where the data set's own __getitem__ must run."""
    if type(dataset).__getitem__ is TensorDataset.__getitem__ and isinstance(dataset, TensorDataset):
        return dataset._fetch_batch
    if isinstance(dataset, Subset) and type(dataset).__getitem__ is Subset.__getitem__:
        inner = _tensor_fetcher(dataset.dataset)
        if inner is not None:
            indices = dataset.indices
            return lambda idx: inner([int(indices[i]) for i in idx])
    return None


def _map_fetcher(dataset, auto_collation: bool, collate_fn):
    """index (a list of indices when batching) -> the batch."""
    fast = _tensor_fetcher(dataset) if auto_collation and collate_fn is default_collate else None
    getitems = getattr(dataset, "__getitems__", None)

    def fetch(index):
        if not auto_collation:
            return collate_fn(dataset[index])
        if fast is not None:
            return fast(index)
        samples = getitems(index) if callable(getitems) else [dataset[i] for i in index]
        return collate_fn(samples)
    return fetch


def _iterable_fetcher(batch_size, drop_last, auto_collation, collate_fn):
    """stream iterator -> the next batch (raises StopIteration at the end)."""
    def fetch(stream):
        if not auto_collation:
            return collate_fn(next(stream))
        items = []
        for item in stream:
            items.append(item)
            if len(items) == batch_size:
                break
        if not items or (drop_last and len(items) < batch_size):
            raise StopIteration
        return collate_fn(items)
    return fetch


_END = object()  # in a result queue: the stream is exhausted


class _WorkerFailure:
    """An exception raised in a worker, carried to the main thread."""

    def __init__(self, exc: BaseException, worker: int, what: str):
        self.exc, self.worker, self.what = exc, worker, what

    def reraise(self):
        note = (f"Raised in DataLoader worker thread {self.worker} while fetching "
                f"{self.what}; the traceback above continues in that thread.")
        if hasattr(self.exc, "add_note"):
            self.exc.add_note(note)
        raise self.exc  # keeps exc.__traceback__: the frames in the worker thread


def _start_worker(target, args, wid: int, name: str) -> threading.Thread:
    t = threading.Thread(target=target, args=args, name=f"nnforge-DataLoader-{name}-{wid}",
                         daemon=True)
    t.start()
    return t


def _init_worker(wid, num_workers, dataset, init_fn):
    _worker_local.info = WorkerInfo(wid, num_workers, dataset)
    if init_fn is not None:
        init_fn(wid)


def _map_worker(wid, num_workers, dataset, init_fn, fetch, tasks, results, stop):
    # Runs in a worker thread; it must not refer to the iterator object, so
    # that dropping the iterator (a `break` out of the loop) can close it.
    try:
        _init_worker(wid, num_workers, dataset, init_fn)
    except BaseException as e:  # noqa: BLE001 - every failure goes to the main thread
        results.put((-1, _WorkerFailure(e, wid, "nothing (in worker_init_fn)")))
        return
    while not stop.is_set():
        task = tasks.get()
        if task is None or stop.is_set():
            return
        seq, index = task
        try:
            results.put((seq, fetch(index)))
        except BaseException as e:  # noqa: BLE001
            results.put((seq, _WorkerFailure(e, wid, f"index {index}")))


def _stream_worker(num_workers, dataset, init_fn, fetch, results, stop, timeout_poll):
    # The one producer thread of an IterableDataset: reads the stream in order
    # and puts batches into a bounded queue (waiting while it is full).
    def put(item) -> bool:
        while not stop.is_set():
            try:
                results.put(item, timeout=timeout_poll)
                return True
            except queue.Full:
                continue
        return False

    try:
        _init_worker(0, num_workers, dataset, init_fn)
        stream = iter(dataset)
    except BaseException as e:  # noqa: BLE001
        put(_WorkerFailure(e, 0, "the start of the stream"))
        return
    n = 0
    while not stop.is_set():
        try:
            batch = fetch(stream)
        except StopIteration:
            put(_END)
            return
        except BaseException as e:  # noqa: BLE001
            put(_WorkerFailure(e, 0, f"batch {n} of the stream"))
            return
        if not put(batch):
            return
        n += 1


class _ThreadedIter:
    """Shared by both threaded iterators: waiting for results, shutting down."""

    _POLL = 0.1  # seconds between checks that the workers are still alive

    def __init__(self, loader):
        self._timeout = loader.timeout
        self._stop = threading.Event()
        self._threads: list = []
        self._closed = False

    def __iter__(self):
        return self

    def _get(self, results):
        """The next item of ``results``, honouring the loader's timeout."""
        waited = 0.0
        while True:
            try:
                return results.get(timeout=self._POLL)
            except queue.Empty:
                waited += self._POLL
                if self._timeout and waited >= self._timeout:
                    self.close()
                    raise RuntimeError(f"DataLoader timed out after {self._timeout} seconds") \
                        from None
                if not any(t.is_alive() for t in self._threads) and results.empty():
                    self.close()
                    raise RuntimeError("DataLoader worker threads exited unexpectedly") from None

    def _wake_workers(self):
        pass

    def close(self):
        """Stops the worker threads (each finishes the batch it is fetching)."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._wake_workers()
        # Wait briefly (one poll interval in all) for the threads to finish; one
        # stuck in a slow __getitem__ is a daemon and ends after that item.
        deadline = time.monotonic() + self._POLL
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=max(0.0, deadline - time.monotonic()))

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from a finalizer
            pass


class _MapThreadedIter(_ThreadedIter):
    """Batches of a map-style data set fetched by ``num_workers`` threads.

    The main thread draws batch indices from the sampler (so random sampling
    uses the loader's generator in one thread, in order) and hands them out
    as numbered tasks; results come back in any order and are released in
    the order of their numbers. At most ``prefetch_factor * num_workers``
    tasks are outstanding.
    """

    def __init__(self, loader):
        super().__init__(loader)
        self._indices = iter(loader._index_sampler)
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        self._results: queue.SimpleQueue = queue.SimpleQueue()
        self._buffer: dict = {}
        self._sent = self._received = 0
        self._exhausted = False
        fetch = _map_fetcher(loader.dataset, loader._auto_collation, loader.collate_fn)
        n = loader.num_workers
        for wid in range(n):
            args = (wid, n, loader.dataset, loader.worker_init_fn, fetch, self._tasks,
                    self._results, self._stop)
            self._threads.append(_start_worker(_map_worker, args, wid, "worker"))
        for _ in range(loader.prefetch_factor * n):
            self._dispatch()

    def _dispatch(self):
        if self._exhausted:
            return
        try:
            index = next(self._indices)
        except StopIteration:
            self._exhausted = True
            return
        self._tasks.put((self._sent, index))
        self._sent += 1

    def _wake_workers(self):
        for _ in self._threads:
            self._tasks.put(None)

    def __next__(self):
        if self._closed or (self._exhausted and self._received == self._sent):
            self.close()
            raise StopIteration
        while self._received not in self._buffer:
            seq, data = self._get(self._results)
            if seq < 0:  # worker_init_fn failed
                self.close()
                data.reraise()
            self._buffer[seq] = data
        data = self._buffer.pop(self._received)
        self._received += 1
        if isinstance(data, _WorkerFailure):
            self.close()
            data.reraise()
        self._dispatch()
        return data


class _StreamThreadedIter(_ThreadedIter):
    """Batches of an IterableDataset made by one background thread (a stream
    has one reader; the extra workers of ``num_workers`` only deepen the queue)."""

    def __init__(self, loader):
        super().__init__(loader)
        self._results: queue.Queue = queue.Queue(maxsize=loader.prefetch_factor * loader.num_workers)
        fetch = _iterable_fetcher(loader.batch_size, loader.drop_last, loader._auto_collation,
                                  loader.collate_fn)
        args = (loader.num_workers, loader.dataset, loader.worker_init_fn, fetch, self._results,
                self._stop, self._POLL)
        self._threads.append(_start_worker(_stream_worker, args, 0, "stream"))

    def _wake_workers(self):
        try:  # make room, so that a producer blocked on a full queue sees the stop
            while True:
                self._results.get_nowait()
        except queue.Empty:
            pass

    def __next__(self):
        if self._closed:
            raise StopIteration
        data = self._get(self._results)
        if data is _END:
            self.close()
            raise StopIteration
        if isinstance(data, _WorkerFailure):
            self.close()
            data.reraise()
        return data


# --------------------------------------------------------------------------- DataLoader
class DataLoader:
    """Iterates over ``dataset`` in batches, as ``torch.utils.data.DataLoader``.

    Arguments and their conflicts are PyTorch's: ``shuffle`` and ``sampler``
    exclude each other; ``batch_sampler`` excludes ``batch_size``, ``shuffle``,
    ``sampler`` and ``drop_last``; ``batch_size=None`` turns batching off; an
    ``IterableDataset`` takes no ``shuffle``, ``sampler`` or ``batch_sampler``.
    ``num_workers > 0`` prepares batches in that many threads (see the module
    docstring); ``prefetch_factor`` (default 2 there) is how many batches each
    worker may have in flight. ``pin_memory`` is accepted and does nothing.

    >>> import nnforge as nf
    >>> ds = nf.data.TensorDataset(nf.arange(10).float(), nf.arange(10))
    >>> [len(x) for x, _ in nf.data.DataLoader(ds, batch_size=4)]
    [4, 4, 2]
    >>> loader = nf.data.DataLoader(ds, batch_size=4, shuffle=True, num_workers=2,
    ...                             generator=nf.Generator().manual_seed(0))
    >>> sorted(int(v) for _, y in loader for v in y.tolist()) == list(range(10))
    True
    """

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool | None = None,
                 sampler=None, batch_sampler=None, num_workers: int = 0, collate_fn=None,
                 pin_memory: bool = False, drop_last: bool = False, timeout: float = 0,
                 worker_init_fn=None, generator: Generator | None = None, *,
                 prefetch_factor: int | None = None, persistent_workers: bool = False):
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError("num_workers option should be non-negative; use num_workers=0 to "
                             f"disable worker threads (got num_workers={num_workers!r})")
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("prefetch_factor option could only be specified with worker "
                             "threads: let num_workers > 0, otherwise set prefetch_factor to None")
        if prefetch_factor is None:
            prefetch_factor = 2
        if isinstance(prefetch_factor, bool) or not isinstance(prefetch_factor, int) \
                or prefetch_factor < 1:
            raise ValueError(f"prefetch_factor option should be a positive integer, got "
                             f"{prefetch_factor!r}")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")
        if batch_size is not None and (isinstance(batch_size, bool) or
                                       not isinstance(batch_size, int) or batch_size < 1):
            raise ValueError(f"DataLoader: batch_size should be a positive integer value or "
                             f"None, but got batch_size={batch_size!r}")

        if isinstance(dataset, IterableDataset):
            if shuffle not in (None, False):
                raise ValueError("DataLoader with IterableDataset: expected unspecified shuffle "
                                 f"option, but got shuffle={shuffle}")
            if sampler is not None:
                raise ValueError("DataLoader with IterableDataset: expected unspecified sampler "
                                 f"option, but got sampler={sampler}")
            if batch_sampler is not None:
                raise ValueError("DataLoader with IterableDataset: expected unspecified "
                                 f"batch_sampler option, but got batch_sampler={batch_sampler}")
        shuffle = bool(shuffle)
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, "
                                 "shuffle, sampler, and drop_last")
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually "
                             "exclusive with drop_last")

        if isinstance(dataset, IterableDataset):
            sampler = None
        elif sampler is None:
            sampler = RandomSampler(dataset, generator=generator) if shuffle \
                else SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None and sampler is not None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)

        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = num_workers
        self.collate_fn = collate_fn if collate_fn is not None else \
            (default_collate if self._auto_collation else default_convert)
        self.pin_memory = pin_memory
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.generator = generator
        self.prefetch_factor = prefetch_factor
        self.persistent_workers = persistent_workers

    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None or (
            isinstance(self.dataset, IterableDataset) and self.batch_size is not None)

    @property
    def _index_sampler(self):
        return self.batch_sampler if self.batch_sampler is not None else self.sampler

    def __len__(self) -> int:
        if isinstance(self.dataset, IterableDataset):
            n = len(self.dataset)
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)
        return len(self._index_sampler)

    def __iter__(self):
        if self.num_workers > 0:
            if isinstance(self.dataset, IterableDataset):
                return _StreamThreadedIter(self)
            return _MapThreadedIter(self)
        return self._iter_single()

    def _iter_single(self):
        if isinstance(self.dataset, IterableDataset):
            fetch = _iterable_fetcher(self.batch_size, self.drop_last, self._auto_collation,
                                      self.collate_fn)
            stream = iter(self.dataset)
            while True:
                try:
                    batch = fetch(stream)
                except StopIteration:
                    return
                yield batch
        fetch = _map_fetcher(self.dataset, self._auto_collation, self.collate_fn)
        for index in self._index_sampler:
            yield fetch(index)


__all__ = ["DataLoader", "default_collate", "default_convert", "get_worker_info", "WorkerInfo"]
