"""Loading the user's own data files: numpy arrays, CSV tables and text.

Importable as ``nnforge.data.files`` (the package folder that also holds the
bundled data files). Every loader:

- raises ``FileNotFoundError`` for a path that does not exist;
- raises ``ValueError`` naming the file (and, for text formats, the line and
  the problem) for a file it cannot read as asked;
- never unpickles: ``.npy``/``.npz`` files holding Python objects are refused.
"""
from __future__ import annotations

import csv
import errno
import io
import os
import zipfile

import numpy as np

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"


def _open_checked(path, op: str):
    """The path as a str, with a clear FileNotFoundError when it is missing."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(errno.ENOENT, f"{op}: no such file", path)
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, f"{op}: expected a file, got a directory", path)
    return path


# --------------------------------------------------------------------------- arrays
def load_array(path, key=None):
    """Arrays from a ``.npy`` or ``.npz`` file (told apart by their contents).

    - ``.npy``: the array (``key`` must be None);
    - ``.npz``: with ``key=None`` a dict of all arrays by name; with a name,
      that array; with a list/tuple of names, a tuple of those arrays. An
      unknown name raises ``KeyError`` listing the names in the file.

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "a.npz")
    >>> np.savez(p, x=np.arange(3), y=np.ones(2))
    >>> load_array(p, "x").tolist(), sorted(load_array(p))
    ([0, 1, 2], ['x', 'y'])
    """
    op = "load_array"
    path = _open_checked(path, op)
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic.startswith(_ZIP_MAGIC):
        return _load_npz(path, key, op)
    if magic == _NPY_MAGIC:
        if key is not None:
            raise ValueError(f"{op}: {path} is a .npy file holding one array; key={key!r} "
                             "applies only to .npz files")
        return _np_load(path, op, lambda: np.load(path, allow_pickle=False))
    raise ValueError(f"{op}: {path} is not a .npy or .npz file (it does not start with the "
                     "numpy or zip signature)")


def _np_load(path, op, load):
    try:
        return load()
    except ValueError as e:
        if "allow_pickle" in str(e) or "Object arrays" in str(e):
            raise ValueError(f"{op}: {path} holds Python objects (an object array), which "
                             "would need unpickling; nnforge never unpickles data files") from None
        raise ValueError(f"{op}: {path} is not a valid numpy file: {e}") from None
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise ValueError(f"{op}: {path} is not a valid numpy file (truncated or corrupt?): "
                         f"{e}") from None


def _load_npz(path, key, op):
    def load():
        with np.load(path, allow_pickle=False) as archive:
            names = list(archive.files)
            wanted = names if key is None else [key] if isinstance(key, str) else list(key)
            for k in wanted:
                if k not in names:
                    raise KeyError(f"{op}: {path} has no array {k!r}; the arrays in it are "
                                   f"{names}")
            arrays = {k: archive[k] for k in wanted}
        if key is None:
            return arrays
        if isinstance(key, str):
            return arrays[key]
        return tuple(arrays[k] for k in wanted)
    return _np_load(path, op, load)


# --------------------------------------------------------------------------- text
def _decode(data: bytes, path: str, encoding: str, op: str) -> str:
    try:
        return data.decode(encoding)
    except LookupError:
        raise ValueError(f"{op}: unknown encoding {encoding!r}") from None
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        bad = data[e.start:e.end]
        raise ValueError(f"{op}: {path} is not valid {encoding} text: byte(s) {bad!r} at line "
                         f"{line}, column {column} (byte offset {e.start}): {e.reason}; pass the "
                         "file's encoding as encoding=...") from None


def load_text(path, encoding: str = "utf-8") -> str:
    """The contents of a text file as one string (newlines kept as they are).

    Bytes that are not valid in ``encoding`` raise ``ValueError`` with the
    line, column and byte offset of the first one.
    """
    op = "load_text"
    path = _open_checked(path, op)
    with open(path, "rb") as f:
        data = f.read()
    return _decode(data, path, encoding, op)


# --------------------------------------------------------------------------- CSV
def _is_number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


def load_csv(path, header="auto", delimiter: str = ",", dtype=np.float32, *,
             missing: float | None = None, comments: str | None = None,
             encoding: str = "utf-8", return_names: bool = False):
    """A numeric table as a 2-D numpy array ``(rows, columns)``.

    - ``header``: True (the first row names the columns), False (all rows are
      data) or ``"auto"`` (a first row with no number in it is a header);
    - ``dtype``: a numpy float or integer dtype (float32 by default); integer
      columns must hold integers;
    - ``missing``: the value for empty cells (by default they are an error);
    - ``comments``: lines starting with this string are skipped; blank lines
      always are;
    - ``return_names``: also return the column names (None without a header),
      as ``(names, array)``.

    A row with a different number of cells than the first, an empty cell or
    a cell that is not a number raises ``ValueError`` naming the file, the
    line, the column and the cell.

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "t.csv")
    >>> _ = open(p, "w").write("a,b\\n1,2\\n3,4.5\\n")
    >>> load_csv(p, return_names=True)
    (['a', 'b'], array([[1. , 2. ],
           [3. , 4.5]], dtype=float32))
    """
    op = "load_csv"
    dtype = np.dtype(dtype)
    if dtype.kind not in "fiu":
        raise ValueError(f"{op}: dtype must be a numpy float or integer dtype, got {dtype}")
    if header not in (True, False, "auto"):
        raise ValueError(f"{op}: header must be True, False or 'auto', got {header!r}")
    if missing is not None and dtype.kind in "iu" and not float(missing).is_integer():
        raise ValueError(f"{op}: missing={missing!r} is not an integer, but dtype is {dtype}")
    path = _open_checked(path, op)
    with open(path, "rb") as f:
        text = _decode(f.read(), path, encoding, op)
    if text.startswith("\ufeff"):  # a byte-order mark some spreadsheet programs write
        text = text[1:]

    rows, lines = [], []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        for cells in reader:
            if not cells or all(not c.strip() for c in cells) and len(cells) == 1:
                continue
            if comments is not None and cells[0].lstrip().startswith(comments):
                continue
            rows.append([c.strip() for c in cells])
            lines.append(reader.line_num)
    except csv.Error as e:
        raise ValueError(f"{op}: {path}, line {reader.line_num}: malformed CSV: {e}") from None
    if not rows:
        raise ValueError(f"{op}: {path} has no rows (the file is empty)")

    names = None
    if header is True or (header == "auto" and not any(_is_number(c) for c in rows[0])):
        names, rows, lines = rows[0], rows[1:], lines[1:]
    width = len(names) if names is not None else len(rows[0])
    for cells, line in zip(rows, lines):
        if len(cells) != width:
            first = "the header" if names is not None else f"line {lines[0]}"
            raise ValueError(f"{op}: {path}, line {line}: expected {width} cells (as in "
                             f"{first}), got {len(cells)}; check the delimiter "
                             f"{delimiter!r} and for stray or missing separators")
        if missing is None:
            for col, c in enumerate(cells):
                if c == "":
                    raise ValueError(f"{op}: {path}, line {line}, column {col + 1}: empty cell; "
                                     "pass missing=<value> to fill empty cells")

    try:  # the common case in one numpy conversion; on failure, find the bad cell
        filled = rows if missing is None else [[c or repr(float(missing)) for c in r] for r in rows]
        table = np.array(filled, dtype=dtype).reshape(len(rows), width)
    except (ValueError, TypeError, OverflowError):
        table = np.empty((len(rows), width), dtype=dtype)
        for r, (cells, line) in enumerate(zip(rows, lines)):
            for col, c in enumerate(cells):
                table[r, col] = _parse_cell(c, dtype, missing, path, line, col, op)
    return (names, table) if return_names else table


def _parse_cell(cell: str, dtype: np.dtype, missing, path, line, col, op):
    if cell == "":
        return missing
    try:
        if dtype.kind == "f":
            return float(cell)
        value = int(cell)
        if not np.iinfo(dtype).min <= value <= np.iinfo(dtype).max:
            raise ValueError(f"{op}: {path}, line {line}, column {col + 1}: {value} is out of "
                             f"range for {dtype}")
        return value
    except ValueError as e:
        if str(e).startswith(op):
            raise
        kind = "a number" if dtype.kind == "f" else f"an integer (dtype {dtype})"
        raise ValueError(f"{op}: {path}, line {line}, column {col + 1}: cell {cell!r} is not "
                         f"{kind}") from None
