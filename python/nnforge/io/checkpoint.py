"""``nf.save(obj, path)`` / ``nf.load(path)``: checkpoints as safetensors files.

Whatever ``obj`` is — a Tensor, a model's ``state_dict()``, an optimizer's, or
a training checkpoint such as ``{"model": sd, "optimizer": osd, "epoch": 3,
"rng": nf.get_rng_state()}`` — its tensors become the file's tensors, named
by their dotted path (``model.0.weight``, ``optimizer.state.0.momentum_buffer``),
so any safetensors reader sees a model's weights under their usual names.
Everything else (the nesting, dict keys of any scalar type, ints, floats,
bools, strings, None, lists, tuples) is described by one JSON document stored
in the header's ``__metadata__`` under ``"nnforge.structure"``:

    {"format": 1, "root": NODE}

where a NODE is one of

    a JSON string, integer, finite number, true, false or null  -> itself
    [NODE, ...]                           -> a list
    {"tuple": [NODE, ...]}                -> a tuple
    {"dict": [[KEY, NODE], ...]}          -> a dict, in order; KEY is a scalar NODE
    {"float": "nan" | "inf" | "-inf"}     -> a float JSON cannot write
    {"tensor": NAME}                      -> the file's tensor NAME as a Tensor
                                             (plus "requires_grad": true when set)
    {"ndarray": NAME}                     -> ... as a numpy array
    {"npscalar": NAME}                    -> ... as a numpy scalar (np.float64(1.5))

JSON keeps 1 and 1.0 apart, so ints stay ints and floats floats. An object
saved twice (a tied weight) is stored once and comes back as one object.
Nothing is pickled, so loading a file never runs code from it.

A safetensors file written by another program (no ``nnforge.structure``)
loads as a flat dict of name -> Tensor.
"""
from __future__ import annotations

import json
import math
import os

import numpy as np

from ..device import as_device
from ..tensor import Tensor
from .safetensors import METADATA_KEY, CheckpointError, read_numpy, save_numpy

__all__ = ["save", "load", "STRUCTURE_KEY"]

STRUCTURE_KEY = "nnforge.structure"
FORMAT_VERSION = 1

_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _check_path(f, op: str):
    if isinstance(f, (str, bytes, os.PathLike)):
        return f
    raise TypeError(f"{op}: expected a file path (str or os.PathLike), got {type(f).__name__}; "
                    "nnforge reads and writes checkpoints by path so that writes are atomic")


# ---------------------------------------------------------------------- saving
class _Encoder:
    def __init__(self):
        self.arrays: dict = {}   # file tensor name -> Tensor or ndarray
        self.names: dict = {}    # id(object) -> its tensor name, to store shared objects once
        self._stack: set = set()  # ids of the containers being encoded, to refuse cycles

    def _tensor_name(self, path: list) -> str:
        base = ".".join(path) if path else "tensor"
        name, i = base, 0
        while name in self.arrays or name == METADATA_KEY:
            i += 1
            name = f"{base}#{i}"
        return name

    def _store(self, kind: str, value, array, path: list) -> dict:
        name = self.names.get(id(value))
        if name is None:
            name = self._tensor_name(path)
            self.arrays[name] = array
            self.names[id(value)] = name
        return {kind: name}

    def encode(self, value, path: list):
        if isinstance(value, Tensor):
            node = self._store("tensor", value, value, path)
            if value.requires_grad:
                node["requires_grad"] = True
            return node
        if isinstance(value, np.ndarray):
            return self._store("ndarray", value, value, path)
        if isinstance(value, np.generic):  # before float: np.float64 is a float
            return self._store("npscalar", value, np.asarray(value), path)
        if value is None or isinstance(value, (str, bool, int)):
            return value
        if isinstance(value, float):
            if math.isfinite(value):
                return value
            return {"float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
        if isinstance(value, (dict, list, tuple)):
            if id(value) in self._stack:
                raise ValueError(f"save: the object at {_where(path)} contains itself")
            self._stack.add(id(value))
            try:
                return self._container(value, path)
            finally:
                self._stack.discard(id(value))
        raise TypeError(_unsupported(value, path))

    def _container(self, value, path: list):
        if isinstance(value, dict):
            items = []
            for k, v in value.items():
                if not (k is None or isinstance(k, (str, bool, int, float))) or isinstance(
                        k, np.generic):
                    raise TypeError(f"save: a dict key at {_where(path)} is a "
                                    f"{type(k).__name__} ({k!r}); checkpoint dict keys must be "
                                    "str, int, float, bool or None")
                items.append([self.encode(k, path), self.encode(v, path + [str(k)])])
            return {"dict": items}
        nodes = [self.encode(v, path + [str(i)]) for i, v in enumerate(value)]
        return nodes if isinstance(value, list) else {"tuple": nodes}


def _where(path: list) -> str:
    return repr(".".join(path)) if path else "the top level"


def _unsupported(value, path: list) -> str:
    hint = ""
    if callable(getattr(value, "state_dict", None)):
        hint = "; save its state_dict() instead (e.g. nf.save(model.state_dict(), path))"
    return (f"save: can't store a {type(value).__name__} (at {_where(path)}): a checkpoint "
            "holds Tensors, numpy arrays, numbers, strings, bools, None and dicts, lists and "
            f"tuples of them, never pickled objects{hint}")


def save(obj, f, *, metadata: dict | None = None) -> None:
    """Saves ``obj`` to the safetensors file ``f``, atomically, as ``torch.save``.

    ``obj`` is a Tensor, or dicts/lists/tuples of Tensors, numpy arrays, numbers,
    strings, bools and None (a ``state_dict()``, an optimizer's state_dict, a
    training checkpoint). ``metadata`` (str -> str) is added to the header.

    >>> import nnforge as nf, tempfile, os
    >>> from nnforge.io import save, load
    >>> p = os.path.join(tempfile.mkdtemp(), "ckpt.safetensors")
    >>> save({"w": nf.ones(2), "epoch": 3}, p)
    >>> load(p)["epoch"]
    3
    """
    path = _check_path(f, "save")
    meta = dict(metadata or {})
    if STRUCTURE_KEY in meta:
        raise ValueError(f"save: the metadata key {STRUCTURE_KEY!r} is reserved for nnforge")
    enc = _Encoder()
    root = enc.encode(obj, [])
    meta[STRUCTURE_KEY] = json.dumps({"format": FORMAT_VERSION, "root": root},
                                     ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    save_numpy(enc.arrays, path, meta)


# ---------------------------------------------------------------------- loading
class _Decoder:
    def __init__(self, path, arrays: dict, device=None):
        self.path = path
        self.arrays = arrays
        self.device = device  # None: tensors stay on the CPU
        self.made: dict = {}  # (kind, name) -> object, so a shared object comes back shared

    def fail(self, what: str) -> CheckpointError:
        return CheckpointError(f"{os.fspath(self.path)}: damaged nnforge checkpoint: {what}")

    def decode(self, node):
        if node is None or isinstance(node, (str, bool, int, float)):
            return node
        if isinstance(node, list):
            return [self.decode(n) for n in node]
        if not isinstance(node, dict) or not node:
            raise self.fail(f"unexpected structure node {node!r}")
        if "tensor" in node or "ndarray" in node or "npscalar" in node:
            return self._array(node)
        if len(node) != 1:
            raise self.fail(f"unexpected structure node {node!r}")
        kind, body = next(iter(node.items()))
        if kind == "tuple" and isinstance(body, list):
            return tuple(self.decode(n) for n in body)
        if kind == "float" and body in _NONFINITE:
            return _NONFINITE[body]
        if kind == "dict" and isinstance(body, list):
            out = {}
            for pair in body:
                if not isinstance(pair, list) or len(pair) != 2:
                    raise self.fail(f"a dict entry is {pair!r}, not a [key, value] pair")
                key = self.decode(pair[0])
                if not (key is None or isinstance(key, (str, bool, int, float))):
                    raise self.fail(f"a dict key is {pair[0]!r}, not a scalar")
                out[key] = self.decode(pair[1])
            return out
        raise self.fail(f"unexpected structure node {node!r}")

    def _array(self, node: dict):
        kinds = [k for k in ("tensor", "ndarray", "npscalar") if k in node]
        extra = set(node) - set(kinds[:1])
        if len(kinds) != 1 or (extra and (kinds[0] != "tensor" or extra != {"requires_grad"}
                                          or node["requires_grad"] is not True)):
            raise self.fail(f"unexpected structure node {node!r}")
        kind = kinds[0]
        name = node[kind]
        if not isinstance(name, str) or name not in self.arrays:
            raise self.fail(f"the structure refers to a tensor {name!r} that the file lacks")
        made = self.made.get((kind, name))
        if made is not None:
            return made
        arr = self.arrays[name]
        if kind == "ndarray":
            made = arr
        elif kind == "npscalar":
            if arr.ndim != 0:
                raise self.fail(f"numpy scalar {name!r} has shape {arr.shape}")
            made = arr[()]
        else:
            from ..ops.creation import from_numpy
            made = from_numpy(arr)
            if self.device is not None:
                made = made.to(self.device)
            if extra:
                if not made.is_floating_point():
                    raise self.fail(f"tensor {name!r} of dtype {made.dtype.name} is marked "
                                    "requires_grad")
                made.requires_grad_(True)
        self.made[(kind, name)] = made
        return made


def load(f, map_location=None, *, weights_only: bool | None = None):
    """Loads what ``save`` wrote (or any safetensors file), as ``torch.load``.

    Tensors come back on the CPU, or on ``map_location`` when it names a device
    ("cuda", "cuda:1", an ``nf.device``); PyTorch's dict and callable forms are
    not supported. Shared tensors stay shared on the new device. ``weights_only``
    is accepted and ignored: nnforge never unpickles, so every load is weights-only.
    A file without nnforge's structure loads as a flat dict name -> Tensor.

    Raises ``FileNotFoundError`` for a missing file and ``CheckpointError`` (a
    ``ValueError``) that names the file and the problem for a damaged one.
    """
    path = _check_path(f, "load")
    dev = None
    if map_location is not None:
        try:
            dev = as_device(map_location)
        except Exception:
            raise ValueError(f"load: map_location={map_location!r} is not a device; nnforge "
                             "takes None, a device string or an nf.device (not PyTorch's "
                             "dict or callable forms)") from None
        if dev.type == "cpu":
            dev = None
        else:
            from ..backend import get_backend
            get_backend(dev.type)  # RuntimeError now, naming why, when the device is unusable
    del weights_only
    arrays, metadata = read_numpy(path)
    text = metadata.get(STRUCTURE_KEY)
    if text is None:
        from ..ops.creation import from_numpy
        return {name: from_numpy(arr) if dev is None else from_numpy(arr).to(dev)
                for name, arr in arrays.items()}
    dec = _Decoder(path, arrays, dev)
    try:
        structure = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise dec.fail(f"{STRUCTURE_KEY} is not valid JSON ({e})") from None
    if not isinstance(structure, dict) or set(structure) != {"format", "root"}:
        raise dec.fail(f"{STRUCTURE_KEY} must be an object with 'format' and 'root'")
    if structure["format"] != FORMAT_VERSION:
        raise dec.fail(f"{STRUCTURE_KEY} has format {structure['format']!r}; this nnforge "
                       f"reads format {FORMAT_VERSION} (was it written by a newer nnforge?)")
    try:
        obj = dec.decode(structure["root"])
    except RecursionError:
        raise dec.fail(f"{STRUCTURE_KEY} is nested too deeply") from None
    unused = set(arrays) - {name for _, name in dec.made}
    if unused:
        raise dec.fail(f"tensors {sorted(unused)[:5]} are in the file but not in its structure "
                       "(use nnforge.io.load_file to read every tensor by name)")
    return obj
