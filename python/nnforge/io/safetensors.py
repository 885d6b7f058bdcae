"""Our own reader and writer of the safetensors format.

A safetensors file is three parts, back to back:

    [8 bytes]  N, the header length: an unsigned 64-bit little-endian integer
    [N bytes]  the header: a UTF-8 JSON object
                 {name: {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]},
                  ..., "__metadata__": {str: str}}       (metadata optional)
               padded with spaces to a multiple of 8 bytes
    [rest]     the byte buffer: every tensor C-contiguous and little-endian, at
               data_offsets relative to the start of the buffer

The buffer must be covered exactly: sorted by offsets, each tensor starts where
the previous one ended, the last one ends at the end of the file, and each
range holds prod(shape) * itemsize bytes. The reader checks all of it (and
more, see ``_parse_header``) before it touches the data, and names the file
and the problem in a ``CheckpointError``.

Writes are atomic (``atomic_write``): a crash mid-write leaves the old file as
it was. No pickle anywhere: a file holds numbers and JSON, nothing that runs.
"""
from __future__ import annotations

import json
import os
import secrets
import struct
from typing import Callable, Mapping

import numpy as np

from ..dtypes import BFLOAT16_NP

__all__ = ["CheckpointError", "save_file", "load_file", "save_numpy", "load_numpy",
           "read_numpy", "load_metadata", "atomic_write"]

METADATA_KEY = "__metadata__"

# safetensors dtype name -> little-endian numpy dtype. BF16 is read as its raw
# 16 bits, then viewed as ml_dtypes' bfloat16 (nf.bfloat16), or, without
# ml_dtypes, widened to float32 (exact).
_DTYPES = {
    "BOOL": np.dtype("|b1"),
    "U8": np.dtype("|u1"),
    "I8": np.dtype("|i1"),
    "I16": np.dtype("<i2"),
    "I32": np.dtype("<i4"),
    "I64": np.dtype("<i8"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
}
# Valid in the format, but with no nnforge dtype to load them into.
_KNOWN_UNSUPPORTED = {"U16", "U32", "U64", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F4", "F6_E2M3",
                      "F6_E3M2", "C64", "E8M0"}
_FROM_NUMPY = {
    np.dtype(np.bool_): "BOOL",
    np.dtype(np.uint8): "U8",
    np.dtype(np.int8): "I8",
    np.dtype(np.int16): "I16",
    np.dtype(np.int32): "I32",
    np.dtype(np.int64): "I64",
    np.dtype(np.float16): "F16",
    np.dtype(np.float32): "F32",
    np.dtype(np.float64): "F64",
}
if BFLOAT16_NP is not None:
    _FROM_NUMPY[BFLOAT16_NP] = "BF16"

_HEADER_ALIGN = 8
# The reference implementation refuses headers over 100 MB; so do we, before
# reading one, so that a corrupt length cannot make us allocate the whole file.
_MAX_HEADER = 100 * 1024 * 1024


class CheckpointError(ValueError):
    """A file that is not a valid safetensors file / nnforge checkpoint."""


def _fail(path, what: str) -> CheckpointError:
    return CheckpointError(f"{os.fspath(path)}: not a valid safetensors file: {what}")


# ---------------------------------------------------------------------- writing
def _as_array(name: str, value) -> np.ndarray:
    """A tensor's values as a host numpy array (Tensors are detached and copied
    to the host; numpy arrays are taken as they are)."""
    from ..tensor import Tensor
    if isinstance(value, Tensor):
        return value.numpy(force=True)  # detached; a host copy from a device
    if isinstance(value, np.ndarray):
        return value
    raise TypeError(f"save_file: the value of {name!r} is a {type(value).__name__}; expected an "
                    "nnforge Tensor or a numpy array")


def _safetensors_dtype(name: str, arr: np.ndarray) -> str:
    code = _FROM_NUMPY.get(arr.dtype.newbyteorder("="))
    if code is None:
        supported = ", ".join(str(d) for d in _FROM_NUMPY)
        raise TypeError(f"save_file: tensor {name!r} has dtype {arr.dtype}, which safetensors "
                        f"files written by nnforge do not hold (supported: {supported})")
    return code


def _check_metadata(metadata) -> dict:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise TypeError(f"save_file: metadata must be a dict of str to str, got "
                        f"{type(metadata).__name__}")
    for k, v in metadata.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError(f"save_file: metadata must map str to str, got {k!r}: {v!r} "
                            f"({type(k).__name__}: {type(v).__name__})")
    return dict(metadata)


def _plan(arrays: Mapping[str, np.ndarray], metadata: dict):
    """The header bytes (padded) and the arrays in the order their bytes follow.

    The data is laid out by decreasing item size, so every tensor starts at a
    multiple of its item size (the header is padded to 8 bytes), which lets a
    reader view the buffer without copying. The header lists the tensors in the
    caller's order, which is the order ``load_file`` gives back."""
    layout = sorted(arrays.items(), key=lambda kv: -kv[1].dtype.itemsize)  # stable
    offsets = {}
    pos = 0
    for name, arr in layout:
        offsets[name] = (pos, pos + arr.nbytes)
        pos += arr.nbytes
    header: dict = {}
    if metadata:
        header[METADATA_KEY] = metadata
    for name, arr in arrays.items():
        header[name] = {"dtype": _FROM_NUMPY[arr.dtype.newbyteorder("=")],
                        "shape": list(arr.shape),
                        "data_offsets": list(offsets[name])}
    text = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % _HEADER_ALIGN)
    return text, [arr for _, arr in layout]


def _write_array(f, arr: np.ndarray) -> None:
    """Writes one array's bytes: C order, little-endian."""
    if arr.size == 0:
        return
    if BFLOAT16_NP is not None and arr.dtype == BFLOAT16_NP:
        arr = arr.view(np.uint16)  # ml_dtypes' type has no byte orders: write its bits
    little = arr.dtype.newbyteorder("<")
    if arr.dtype != little:
        arr = arr.astype(little)
    if not arr.flags.c_contiguous:
        arr = np.array(arr, order="C")
    f.write(memoryview(arr.reshape(-1).view(np.uint8)))


def atomic_write(path, write: Callable) -> None:
    """Calls ``write(f)`` on a fresh temporary file next to ``path``, flushes and
    fsyncs it, then renames it onto ``path`` and fsyncs the directory.

    On any exception (KeyboardInterrupt included) the temporary file is removed
    and ``path`` keeps its old contents; the rename is atomic, so a reader or a
    crash sees either the old file or the new one, never a half-written one."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = os.path.join(directory, f".{base}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, flags, 0o666)  # the umask applies, as for open(path, "wb")
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    """Makes the rename durable. Not possible on every OS (Windows), hence best effort."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_numpy(arrays: Mapping[str, np.ndarray], path, metadata: Mapping[str, str] | None = None
               ) -> None:
    """Writes numpy arrays (by name) to a safetensors file, atomically.

    >>> import numpy as np, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "a.safetensors")
    >>> save_numpy({"w": np.ones((2, 3), np.float32)}, p)
    >>> load_numpy(p)["w"].shape
    (2, 3)
    """
    if not isinstance(arrays, Mapping):
        raise TypeError(f"save_file: expected a dict of name to tensor, got "
                        f"{type(arrays).__name__}")
    checked = {}
    for name, arr in arrays.items():
        if not isinstance(name, str):
            raise TypeError(f"save_file: tensor names must be str, got {name!r} "
                            f"({type(name).__name__})")
        if name == METADATA_KEY:
            raise ValueError(f"save_file: {METADATA_KEY!r} is reserved for the metadata and "
                             "cannot name a tensor")
        arr = _as_array(name, arr)
        _safetensors_dtype(name, arr)
        checked[name] = arr
    header, ordered = _plan(checked, _check_metadata(metadata))

    def write(f):
        f.write(struct.pack("<Q", len(header)))
        f.write(header)
        for arr in ordered:
            _write_array(f, arr)

    atomic_write(path, write)


def save_file(tensors: Mapping, path, metadata: Mapping[str, str] | None = None) -> None:
    """Writes a dict of name -> Tensor (or numpy array) to a safetensors file,
    atomically; ``metadata`` (str -> str) goes into the header's ``__metadata__``.

    >>> import nnforge as nf, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "w.safetensors")
    >>> save_file({"w": nf.ones(2, 3)}, p, metadata={"note": "hi"})
    >>> load_file(p)["w"].shape
    nnforge.Size([2, 3])
    """
    save_numpy(tensors, path, metadata)


# ---------------------------------------------------------------------- reading
def _no_duplicates(path):
    def hook(pairs):
        out = {}
        for k, v in pairs:
            if k in out:
                raise _fail(path, f"the header names {k!r} twice")
            out[k] = v
        return out
    return hook


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _parse_header(path, raw: bytes, buffer_size: int):
    """Checks a header and returns (entries, metadata), entries being
    [(name, dtype code, shape, begin, end)] in header order."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _fail(path, f"the header is not UTF-8 ({e})") from None
    if not text.startswith("{"):
        raise _fail(path, f"the header does not start with '{{' (it starts {text[:20]!r})")
    try:
        header = json.loads(text, object_pairs_hook=_no_duplicates(path))
    except CheckpointError:
        raise
    except ValueError as e:
        raise _fail(path, f"the header is not valid JSON ({e})") from None
    except RecursionError:
        raise _fail(path, "the header's JSON is nested too deeply") from None
    if not isinstance(header, dict):
        raise _fail(path, f"the header is a JSON {type(header).__name__}, not an object")

    metadata = header.pop(METADATA_KEY, None)
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise _fail(path, f"{METADATA_KEY} must be an object of strings to strings")

    entries = []
    for name, info in header.items():
        where = f"tensor {name!r}"
        if not isinstance(info, dict):
            raise _fail(path, f"{where}: expected an object with dtype, shape and data_offsets, "
                        f"got {info!r}")
        keys = set(info)
        if keys != {"dtype", "shape", "data_offsets"}:
            missing = {"dtype", "shape", "data_offsets"} - keys
            extra = keys - {"dtype", "shape", "data_offsets"}
            raise _fail(path, f"{where}: " + (f"missing {sorted(missing)}" if missing
                                               else f"unknown fields {sorted(extra)}"))
        code, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if code not in _DTYPES:
            if isinstance(code, str) and code in _KNOWN_UNSUPPORTED:
                raise _fail(path, f"{where}: dtype {code} is not supported by nnforge "
                            f"(supported: {', '.join(_DTYPES)})")
            raise _fail(path, f"{where}: unknown dtype {code!r}")
        if not isinstance(shape, list) or not all(_is_int(s) and s >= 0 for s in shape):
            raise _fail(path, f"{where}: shape must be a list of non-negative integers, "
                        f"got {shape!r}")
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(_is_int(o) and o >= 0 for o in offsets)):
            raise _fail(path, f"{where}: data_offsets must be two non-negative integers, "
                        f"got {offsets!r}")
        begin, end = offsets
        if begin > end:
            raise _fail(path, f"{where}: data_offsets [{begin}, {end}] are out of order")
        if end > buffer_size:
            raise _fail(path, f"{where}: data_offsets [{begin}, {end}] lie outside the "
                        f"{buffer_size}-byte data buffer")
        numel = 1
        for s in shape:
            numel *= s
        nbytes = numel * _DTYPES[code].itemsize
        if end - begin != nbytes:
            raise _fail(path, f"{where}: data_offsets [{begin}, {end}] span {end - begin} bytes "
                        f"but dtype {code} and shape {shape} need {nbytes}")
        entries.append((name, code, tuple(shape), begin, end))

    # The ranges must tile the buffer: no overlap, no hole, nothing after the last.
    pos = 0
    prev = None
    for name, _, _, begin, end in sorted(entries, key=lambda e: (e[3], e[4])):
        if begin < pos:
            raise _fail(path, f"tensor {name!r} (bytes {begin}..{end}) overlaps tensor "
                        f"{prev!r} (which ends at {pos})")
        if begin > pos:
            raise _fail(path, f"bytes {pos}..{begin} of the data buffer belong to no tensor "
                        f"(a hole before tensor {name!r})")
        pos, prev = end, name
    if pos != buffer_size:
        raise _fail(path, f"the data buffer is {buffer_size} bytes but the tensors cover only "
                    f"{pos}: {buffer_size - pos} trailing bytes (a wrong header, or garbage "
                    "appended to the file)")
    return entries, metadata


def _read_exactly(f, n: int, path, what: str) -> bytearray:
    buf = bytearray(n)
    got = f.readinto(buf) if n else 0
    if got != n:
        raise _fail(path, f"the file ended while reading {what} ({got} of {n} bytes; was it "
                    "changed while being read?)")
    return buf


def _read(path, *, with_data: bool = True):
    """(entries, metadata, buffer) of a file, all checked."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size < 8:
            raise _fail(path, f"the file is {size} bytes, too short to hold the 8-byte "
                        "header length")
        (n,) = struct.unpack("<Q", _read_exactly(f, 8, path, "the header length"))
        if n > size - 8:
            raise _fail(path, f"the header length {n} runs past the end of the file "
                        f"({size} bytes; truncated?)")
        if n > _MAX_HEADER:
            raise _fail(path, f"the header length {n} is over the {_MAX_HEADER}-byte limit")
        raw = bytes(_read_exactly(f, n, path, "the header"))
        entries, metadata = _parse_header(path, raw, size - 8 - n)
        buffer = _read_exactly(f, size - 8 - n, path, "the data") if with_data else None
    return entries, metadata, buffer


def _to_array(path, buffer: bytearray, name: str, code: str, shape, begin: int, end: int
              ) -> np.ndarray:
    """One tensor as a writable native-endian array. It shares the file's one
    buffer (no copy) unless it must be byte-swapped, widened (BF16) or aligned."""
    dt = _DTYPES[code]
    count = (end - begin) // dt.itemsize
    arr = np.frombuffer(buffer, dtype=dt, count=count, offset=begin).reshape(shape)
    if code == "BOOL":
        if np.any(arr.view(np.uint8) > 1):
            raise _fail(path, f"tensor {name!r}: BOOL bytes must be 0 or 1")
        return arr
    if code == "BF16" and BFLOAT16_NP is not None:
        if not (dt.isnative and arr.flags.aligned):
            arr = arr.astype(np.uint16)
        return arr.view(BFLOAT16_NP)  # the bits, as nf.bfloat16
    if code == "BF16":
        wide = arr.astype(np.uint32)  # bfloat16 is the top half of a float32
        wide <<= 16  # in place: an operator would turn a 0-d array into a scalar
        return wide.view(np.float32)
    if not dt.isnative:
        return arr.astype(dt.newbyteorder("="))
    if not arr.flags.aligned:
        return arr.copy()
    return arr


def read_numpy(path):
    """``(arrays, metadata)`` of a safetensors file: name -> numpy array in
    header order, and the ``__metadata__`` dict (empty when there is none)."""
    entries, metadata, buffer = _read(path)
    arrays = {name: _to_array(path, buffer, name, code, shape, begin, end)
              for name, code, shape, begin, end in entries}
    return arrays, dict(metadata)


def load_numpy(path) -> dict:
    """Reads a safetensors file into a dict of name -> numpy array (header order).

    BF16 tensors come back as ml_dtypes' bfloat16 (as float32, exactly, without
    ml_dtypes). The arrays are writable and do not refer to the file, which may
    be replaced or deleted afterwards."""
    return read_numpy(path)[0]


def load_file(path) -> dict:
    """Reads a safetensors file into a dict of name -> nnforge Tensor (on the CPU).

    Raises ``FileNotFoundError`` for a missing file and ``CheckpointError`` (a
    ``ValueError``) naming the file and the problem for anything malformed."""
    from ..ops.creation import from_numpy
    return {name: from_numpy(arr) for name, arr in load_numpy(path).items()}


def load_metadata(path) -> dict:
    """The ``__metadata__`` (str -> str) of a safetensors file; the header is
    checked as by ``load_file``, the data is not read."""
    _, metadata, _ = _read(path, with_data=False)
    return dict(metadata)
