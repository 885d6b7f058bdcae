"""nnforge.io: our safetensors reader/writer, atomic writes, nf.save / nf.load.

Round trips for every dtype and odd shapes, models and optimizers that carry
on identically after a reload, interchange with the ``safetensors`` package
both ways (skipped where it is not installed), a clear error for every kind
of damaged file, and a crash in the middle of a write that must leave the old
file as it was.
"""
import ast
import json
import math
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

import nnforge as nf
from nnforge.io import (CheckpointError, load, load_file, load_metadata, load_numpy, save,
                        save_file, save_numpy)
from nnforge.io import safetensors as st_mod

IO_DIR = Path(nf.__file__).parent / "io"

DTYPES = [nf.bool, nf.uint8, nf.int8, nf.int16, nf.int32, nf.int64, nf.float16, nf.float32,
          nf.float64]
SHAPES = [(), (0,), (3, 0, 2), (5,), (2, 3, 4)]


def _random(shape, dtype, rng):
    if dtype is nf.bool:
        a = rng.random(shape) > 0.5
    elif dtype.is_floating_point:
        a = rng.standard_normal(shape) * 100
    else:
        info = np.iinfo(dtype.np)
        a = rng.integers(info.min, info.max, size=shape, endpoint=True)
    return np.asarray(a).astype(dtype.np)


def _same(a, b):
    """Same dtype, shape and bits (nan-safe)."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a, b)


def _raw_file(path, header, data=b"", *, pad=True):
    """Writes a safetensors file by hand: ``header`` is a dict (dumped as JSON)
    or bytes taken as they are."""
    if not isinstance(header, bytes):
        header = json.dumps(header).encode()
    if pad:
        header += b" " * (-len(header) % 8)
    Path(path).write_bytes(struct.pack("<Q", len(header)) + header + data)
    return path


# ---------------------------------------------------------------------- round trips
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
def test_save_file_round_trip_every_dtype_and_shape(tmp_path, rng, dtype):
    tensors = {f"t{i}": nf.from_numpy(_random(shape, dtype, rng)) for i, shape in enumerate(SHAPES)}
    path = tmp_path / "a.safetensors"
    save_file(tensors, path)
    back = load_file(path)
    assert list(back) == list(tensors)
    for name, t in tensors.items():
        assert isinstance(back[name], nf.Tensor)
        assert back[name].dtype is dtype
        _same(back[name].numpy(), t.numpy())
    # The same through nf.save / nf.load, and the numpy-level pair.
    save(tensors, tmp_path / "b.safetensors")
    for name, t in load(tmp_path / "b.safetensors").items():
        _same(t.numpy(), tensors[name].numpy())
    arrays = {k: v.numpy() for k, v in tensors.items()}
    save_numpy(arrays, tmp_path / "c.safetensors")
    for name, a in load_numpy(tmp_path / "c.safetensors").items():
        _same(a, arrays[name])


def test_file_layout(tmp_path):
    """Header padded with spaces to 8 bytes, starts with '{', data aligned to each
    item size, tensors tile the buffer, metadata under __metadata__."""
    path = tmp_path / "a.safetensors"
    save_file({"b": nf.ones(3, dtype=nf.bool), "h": nf.ones(3, dtype=nf.float16),
               "d": nf.arange(3, dtype=nf.float64)}, path, metadata={"k": "v"})
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    assert n % 8 == 0 and raw[8:9] == b"{"
    header = json.loads(raw[8:8 + n])
    assert header.pop("__metadata__") == {"k": "v"}
    assert list(header) == ["b", "h", "d"]
    spans = sorted(tuple(v["data_offsets"]) for v in header.values())
    assert spans[0][0] == 0 and spans[-1][1] == len(raw) - 8 - n
    for v in header.values():
        begin, _ = v["data_offsets"]
        assert (8 + n + begin) % {"BOOL": 1, "F16": 2, "F64": 8}[v["dtype"]] == 0
    assert header["d"] == {"dtype": "F64", "shape": [3], "data_offsets": [0, 24]}
    assert raw[8 + n:8 + n + 24] == np.arange(3, dtype="<f8").tobytes()


def test_non_contiguous_and_big_endian_inputs(tmp_path, rng):
    base = nf.from_numpy(rng.standard_normal((4, 6)).astype(np.float32))
    views = {"t": base.t(), "step": base[::2, 1::3], "neg": nf.from_numpy(base.numpy()[::-1])}
    save_file(views, tmp_path / "v.safetensors")
    for name, t in load_file(tmp_path / "v.safetensors").items():
        assert t.is_contiguous()
        _same(t.numpy(), np.ascontiguousarray(views[name].numpy()))
    big = np.arange(6, dtype=">i4").reshape(2, 3)
    save_numpy({"big": big}, tmp_path / "b.safetensors")
    back = load_numpy(tmp_path / "b.safetensors")["big"]
    assert back.dtype == np.dtype(np.int32) and back.dtype.isnative
    np.testing.assert_array_equal(back, big)


def test_loaded_tensors_are_writable_and_independent_of_the_file(tmp_path):
    path = tmp_path / "a.safetensors"
    save_file({"w": nf.ones(3)}, path)
    w = load_file(path)["w"]
    w.add_(1)  # a read-only buffer would refuse this
    save_file({"w": nf.zeros(3)}, path)  # the file can be replaced while w is alive
    assert w.tolist() == [2.0, 2.0, 2.0]
    assert load_file(path)["w"].tolist() == [0.0, 0.0, 0.0]


def test_save_of_a_single_tensor_and_of_requires_grad(tmp_path):
    t = nf.randn(2, 3, requires_grad=True)
    save(t, tmp_path / "t.safetensors")
    back = load(tmp_path / "t.safetensors")
    assert isinstance(back, nf.Tensor) and back.requires_grad and back.is_leaf
    _same(back.detach().numpy(), t.detach().numpy())
    save(t.detach(), tmp_path / "u.safetensors")
    assert not load(tmp_path / "u.safetensors").requires_grad


def test_nested_structure_keeps_python_types(tmp_path):
    shared = nf.arange(4)
    obj = {
        "epoch": 3, "lr": 0.1, "one": 1.0, "done": False, "name": "run-1", "none": None,
        "big": 2 ** 100, "nan": math.nan, "inf": -math.inf, "empty": {}, "nothing": [],
        "ints": {0: "a", 10: "b", -1: "c"}, "keys": {1.5: 1, True: 2, None: 3, "s": 4},
        "tuple": (1, (2.0, "x"), [None]), "list": [1, [2, [3, nf.ones(1)]]],
        "array": np.arange(3, dtype=np.int16), "npscalar": np.float32(2.5),
        "np64": np.float64(0.25), "a": shared, "b": shared,
        "rng": nf.get_rng_state(),
    }
    path = tmp_path / "n.safetensors"
    save(obj, path)
    back = load(path)
    assert list(back) == list(obj)
    for k in ("epoch", "lr", "one", "done", "name", "none", "big", "inf", "empty", "nothing",
              "ints", "keys", "rng"):
        assert back[k] == obj[k] and type(back[k]) is type(obj[k]), k
    assert type(back["one"]) is float and type(back["epoch"]) is int
    assert list(back["ints"]) == [0, 10, -1] and all(type(k) is int for k in back["ints"])
    assert math.isnan(back["nan"])
    assert back["tuple"] == (1, (2.0, "x"), [None]) and type(back["tuple"][1]) is tuple
    assert back["list"][1][1][1].tolist() == [1.0]
    assert type(back["array"]) is np.ndarray and back["array"].dtype == np.int16
    assert type(back["npscalar"]) is np.float32 and back["npscalar"] == 2.5
    assert type(back["np64"]) is np.float64
    assert back["a"] is back["b"]  # stored once, shared again
    assert sorted(load_file(path)) == ["a", "array", "list.1.1.1", "np64", "npscalar"]
    nf.set_rng_state(back["rng"])
    x = nf.rand(3)
    nf.set_rng_state(obj["rng"])
    assert nf.rand(3).tolist() == x.tolist()


def test_tensor_names_are_dotted_paths_and_never_collide(tmp_path):
    path = tmp_path / "n.safetensors"
    obj = {"model": {"0.weight": nf.ones(1)}, "model.0": {"weight": nf.zeros(1)},
           "__metadata__": nf.ones(2), 7: [nf.ones(3)]}
    save(obj, path)
    names = list(load_file(path))
    assert names[0] == "model.0.weight" and len(set(names)) == 4 and "7.0" in names
    back = load(path)
    assert back["model"]["0.weight"].tolist() == [1.0]
    assert back["model.0"]["weight"].tolist() == [0.0]
    assert back["__metadata__"].tolist() == [1.0, 1.0] and back[7][0].shape == (3,)


def test_model_state_dict_round_trip_gives_identical_outputs(tmp_path, rng):
    def make():
        return nf.nn.Sequential(nf.nn.Linear(5, 8), nf.nn.Tanh(), nf.nn.Linear(8, 3))
    a = make()
    path = tmp_path / "model.safetensors"
    save(a.state_dict(), path)
    nf.manual_seed(123)
    b = make()
    loaded = load(path)
    assert list(loaded) == list(a.state_dict())
    b.load_state_dict(loaded)
    x = nf.from_numpy(rng.standard_normal((4, 5)).astype(np.float32))
    _same(b(x).detach().numpy(), a(x).detach().numpy())
    # A plain Linear through save_file / load_file as well.
    lin = nf.nn.Linear(3, 2)
    save_file(lin.state_dict(), tmp_path / "lin.safetensors")
    lin2 = nf.nn.Linear(3, 2)
    lin2.load_state_dict(load_file(tmp_path / "lin.safetensors"))
    _same(lin2(x[:, :3]).detach().numpy(), lin(x[:, :3]).detach().numpy())


def test_optimizer_state_round_trip_and_training_continues_identically(tmp_path, rng):
    xs = [nf.from_numpy(rng.standard_normal((6, 4)).astype(np.float32)) for _ in range(6)]

    def make(seed):
        nf.manual_seed(seed)
        model = nf.nn.Sequential(nf.nn.Linear(4, 5), nf.nn.ReLU(), nf.nn.Linear(5, 1))
        return model, nf.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True,
                                   weight_decay=1e-3)

    def train(model, opt, batches):
        for x in batches:
            opt.zero_grad()
            (model(x) ** 2).mean().backward()
            opt.step()

    model, opt = make(0)
    train(model, opt, xs[:3])
    path = tmp_path / "ckpt.safetensors"
    save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3}, path)
    train(model, opt, xs[3:])

    model2, opt2 = make(1)  # different initial weights, empty optimizer state
    ckpt = load(path)
    assert ckpt["epoch"] == 3
    assert sorted(ckpt["optimizer"]["state"]) == [0, 1, 2, 3]
    assert ckpt["optimizer"]["param_groups"] == [
        {k: v for k, v in g.items()} for g in opt.state_dict()["param_groups"]]
    model2.load_state_dict(ckpt["model"])
    opt2.load_state_dict(ckpt["optimizer"])
    train(model2, opt2, xs[3:])
    for p, q in zip(model.parameters(), model2.parameters()):
        _same(q.detach().numpy(), p.detach().numpy())


def test_metadata_is_preserved(tmp_path):
    path = tmp_path / "m.safetensors"
    meta = {"format": "pt", "note": "ünïcødé ✓", "empty": ""}
    save_file({"w": nf.ones(2)}, path, metadata=meta)
    assert load_metadata(path) == meta
    save({"w": nf.ones(2), "step": 5}, path, metadata={"author": "me"})
    got = load_metadata(path)
    assert got["author"] == "me" and "nnforge.structure" in got
    assert load(path)["step"] == 5
    with pytest.raises(ValueError, match="reserved"):
        save({}, path, metadata={"nnforge.structure": "x"})
    with pytest.raises(TypeError, match="str to str"):
        save_file({"w": nf.ones(2)}, path, metadata={"n": 1})


def test_load_of_a_plain_safetensors_file_gives_a_flat_dict(tmp_path):
    path = tmp_path / "plain.safetensors"
    data = np.arange(6, dtype="<f4").tobytes()
    _raw_file(path, {"__metadata__": {"format": "pt"},
                     "a.b": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}}, data)
    back = load(path, map_location="cpu", weights_only=True)
    assert list(back) == ["a.b"] and back["a.b"].tolist() == [[0, 1, 2], [3, 4, 5]]


def test_map_location(tmp_path):
    path = tmp_path / "a.safetensors"
    save(nf.ones(1), path)
    assert load(path, map_location=nf.device("cpu")).tolist() == [1.0]
    with pytest.raises(ValueError, match="map_location"):
        load(path, map_location={"cuda:0": "cpu"})  # PyTorch's dict form: not supported
    if not nf.cuda.is_available():  # the reason names why the device is unusable
        with pytest.raises(RuntimeError, match="device 'cuda'"):
            load(path, map_location="cuda")


# ---------------------------------------------------------------------- bad input on save
def test_save_refuses_what_it_cannot_store(tmp_path):
    path = tmp_path / "x.safetensors"
    with pytest.raises(TypeError, match="state_dict"):
        save(nf.nn.Linear(2, 2), path)
    with pytest.raises(TypeError, match=r"set.*'a\.b'"):
        save({"a": {"b": {1, 2}}}, path)
    with pytest.raises(TypeError, match="dict key"):
        save({(1, 2): 3}, path)
    cyc = []
    cyc.append(cyc)
    with pytest.raises(ValueError, match="contains itself"):
        save(cyc, path)
    with pytest.raises(TypeError, match="complex"):
        save_numpy({"c": np.zeros(2, np.complex64)}, path)
    with pytest.raises(TypeError, match="names must be str"):
        save_file({1: nf.ones(1)}, path)
    with pytest.raises(ValueError, match="reserved"):
        save_file({"__metadata__": nf.ones(1)}, path)
    with pytest.raises(TypeError, match="Tensor or a numpy array"):
        save_file({"a": [1, 2]}, path)
    with pytest.raises(TypeError, match="path"):
        import io
        save(nf.ones(1), io.BytesIO())
    assert not path.exists() and os.listdir(tmp_path) == []


# ---------------------------------------------------------------------- damaged files
F32x2 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
CORRUPT = {
    # name: (header dict or raw bytes, data bytes, words the message must contain)
    "not json": (b"{this is not json}", b"", "not valid JSON"),
    "json array": (b"[1, 2]", b"", "does not start with '{'"),
    "json string at top": (b'"abc"', b"", "does not start"),
    "not utf-8": (b'{"\xff\xfe": 1}', b"", "UTF-8"),
    "unknown dtype": ({"a": {"dtype": "F33", "shape": [2], "data_offsets": [0, 8]}},
                      bytes(8), "unknown dtype 'F33'"),
    "unsupported dtype": ({"a": {"dtype": "U32", "shape": [2], "data_offsets": [0, 8]}},
                          bytes(8), "U32 is not supported"),
    "offsets reversed": ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}},
                         bytes(8), "out of order"),
    "offsets overlap": ({"a": F32x2, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}},
                        bytes(12), "overlaps"),
    "offsets outside buffer": ({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}},
                               bytes(8), "outside"),
    "offsets vs shape": ({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}},
                         bytes(8), "need 12"),
    "hole": ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}, bytes(16),
             "belong to no tensor"),
    "trailing garbage": ({"a": F32x2}, bytes(8) + b"garbage!", "trailing"),
    "duplicate names": (b'{"a": ' + json.dumps(F32x2).encode() + b', "a": '
                        + json.dumps(F32x2).encode() + b"}", bytes(8), "names 'a' twice"),
    "negative shape": ({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}},
                       bytes(8), "shape"),
    "float shape": ({"a": {"dtype": "F32", "shape": [2.0], "data_offsets": [0, 8]}},
                    bytes(8), "shape"),
    "offsets not a pair": ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0]}},
                           bytes(8), "data_offsets"),
    "missing field": ({"a": {"dtype": "F32", "shape": [2]}}, bytes(8), "missing"),
    "extra field": ({"a": dict(F32x2, stride=[1])}, bytes(8), "unknown fields"),
    "entry not object": ({"a": [1, 2]}, b"", "expected an object"),
    "metadata not strings": ({"__metadata__": {"k": 1}}, b"", "__metadata__"),
    "bool bytes": ({"a": {"dtype": "BOOL", "shape": [2], "data_offsets": [0, 2]}},
                   b"\x01\x07", "0 or 1"),
}


@pytest.mark.parametrize("case", list(CORRUPT))
def test_corrupt_files_raise_a_clear_error(tmp_path, case):
    header, data, words = CORRUPT[case]
    path = _raw_file(tmp_path / "bad.safetensors", header, data)
    for reader in (load_file, load_numpy, load):
        with pytest.raises(CheckpointError) as info:
            reader(path)
        msg = str(info.value)
        assert str(path) in msg and words in msg, msg
    assert issubclass(CheckpointError, ValueError)


@pytest.mark.parametrize("content,words", [
    (b"", "0 bytes, too short"),
    (b"\x08\x00\x00", "3 bytes, too short"),
    (struct.pack("<Q", 1000) + b"{}      ", "runs past the end"),
    (struct.pack("<Q", 2 ** 64 - 1) + b"{}", "runs past the end"),
])
def test_short_files_and_bad_header_lengths(tmp_path, content, words):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=words) as info:
        load_file(path)
    assert str(path) in str(info.value)


def test_unpadded_header_from_another_writer_is_accepted(tmp_path):
    # Padding is what writers do, not something readers may demand.
    path = _raw_file(tmp_path / "a.safetensors", {"a": F32x2}, np.ones(2, "<f4").tobytes(),
                     pad=False)
    assert load_file(path)["a"].tolist() == [1.0, 1.0]


def test_truncated_files_raise(tmp_path):
    path = tmp_path / "a.safetensors"
    save({"w": nf.ones(4, 4), "b": nf.zeros(3, dtype=nf.int64), "epoch": 1}, path)
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    cut_path = tmp_path / "cut.safetensors"
    for cut in [0, 1, 7, 8, 9, 8 + n // 2, 8 + n - 1, 8 + n, 8 + n + 1, 8 + n + 40, len(raw) - 1]:
        cut_path.write_bytes(raw[:cut])
        with pytest.raises(CheckpointError, match="cut.safetensors"):
            load(cut_path)
    with pytest.raises(CheckpointError):  # and a byte too many
        cut_path.write_bytes(raw + b"\0")
        load(cut_path)


def test_damaged_structure_metadata(tmp_path):
    path = tmp_path / "a.safetensors"

    def write(structure, tensors=None):
        save_file(tensors or {}, path, metadata={"nnforge.structure": structure})
    write("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load(path)
    write(json.dumps({"format": 99, "root": 1}))
    with pytest.raises(CheckpointError, match="newer nnforge"):
        load(path)
    write(json.dumps({"format": 1, "root": {"tensor": "missing"}}))
    with pytest.raises(CheckpointError, match="lacks"):
        load(path)
    write(json.dumps({"format": 1, "root": {"what": 1}}))
    with pytest.raises(CheckpointError, match="unexpected structure node"):
        load(path)
    write(json.dumps({"format": 1, "root": {"tensor": "a"}}), {"a": nf.ones(1), "b": nf.ones(1)})
    with pytest.raises(CheckpointError, match="not in its structure"):
        load(path)
    write(json.dumps({"format": 1, "root": {"tensor": "a", "requires_grad": True}}),
          {"a": nf.ones(1, dtype=nf.int64)})
    with pytest.raises(CheckpointError, match="requires_grad"):
        load(path)


def test_missing_file_raises_file_not_found(tmp_path):
    for reader in (load, load_file, load_numpy, load_metadata):
        with pytest.raises(FileNotFoundError):
            reader(tmp_path / "nope.safetensors")


# ---------------------------------------------------------------------- atomic writes
@pytest.mark.parametrize("exc", [OSError("disk full"), KeyboardInterrupt()],
                         ids=["OSError", "KeyboardInterrupt"])
def test_a_crash_mid_write_leaves_the_old_file_intact(tmp_path, monkeypatch, exc):
    path = tmp_path / "ckpt.safetensors"
    old = {"w": nf.arange(1000, dtype=nf.float32), "epoch": 1}
    save(old, path)
    before = path.read_bytes()
    real = st_mod._write_array
    calls = []

    def crashing(f, arr):
        calls.append(arr.nbytes)
        real(f, arr[: arr.size // 2])  # half the data reaches the disk ...
        f.flush()
        raise exc  # ... then the "crash"

    monkeypatch.setattr(st_mod, "_write_array", crashing)
    with pytest.raises(type(exc)):
        save({"w": nf.zeros(1000), "epoch": 2}, path)
    with pytest.raises(type(exc)):
        save_file({"w": nf.zeros(1000)}, path)
    with pytest.raises(type(exc)):
        save_file({"w": nf.zeros(1000)}, tmp_path / "new.safetensors")
    assert calls
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]  # no temp file, no half-written new file
    assert path.read_bytes() == before
    back = load(path)
    assert back["epoch"] == 1 and back["w"].tolist() == old["w"].tolist()


def test_writes_go_through_a_temp_file_and_an_atomic_rename(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.safetensors"
    save(nf.ones(2), path)
    seen = []
    real_replace, real_fsync = os.replace, os.fsync

    def replace(src, dst):
        # At the moment of the rename the target still holds the old checkpoint
        # and the new one is complete in the temp file next to it.
        seen.append(("replace", os.path.dirname(src) == str(tmp_path), Path(dst) == path))
        assert load(path).tolist() == [1.0, 1.0]
        assert load(src).tolist() == [2.0, 2.0, 2.0]
        real_replace(src, dst)

    def fsync(fd):
        seen.append("fsync")
        real_fsync(fd)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "fsync", fsync)
    save(nf.full((3,), 2.0), path)
    monkeypatch.undo()
    assert seen[0] == "fsync" and seen[1] == ("replace", True, True)
    if os.name == "posix":
        assert seen[2:] == ["fsync"]  # the directory, so the rename survives a power cut
    assert load(path).tolist() == [2.0, 2.0, 2.0]
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_new_files_get_the_usual_permissions(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    save(nf.ones(1), tmp_path / "a.safetensors")
    assert (tmp_path / "a.safetensors").stat().st_mode & 0o777 == 0o666 & ~umask


# ---------------------------------------------------------------------- no pickle
def test_io_never_imports_or_calls_pickle(tmp_path, monkeypatch):
    # numpy itself imports pickle, so check our sources and our behaviour instead.
    banned = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "marshal", "shelve",
              "joblib", "torch"}
    for source in IO_DIR.glob("*.py"):
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                mods = [node.module or ""]
            else:
                continue
            assert not {m.split(".")[0] for m in mods} & banned, (source.name, mods)
        assert "allow_pickle" not in source.read_text()

    def boom(*args, **kwargs):
        raise AssertionError("pickle used")
    for name in ("dump", "dumps", "load", "loads", "Pickler", "Unpickler"):
        monkeypatch.setattr(pickle, name, boom)
    path = tmp_path / "a.safetensors"
    save({"m": nf.nn.Linear(2, 2).state_dict(), "e": 1, "a": np.ones(2)}, path)
    assert load(path)["e"] == 1


# ---------------------------------------------------------------------- the safetensors package
@pytest.fixture
def st_numpy():
    return pytest.importorskip("safetensors.numpy")


@pytest.fixture
def st_torch():
    pytest.importorskip("torch")
    return pytest.importorskip("safetensors.torch")


def _interop_arrays(rng):
    arrays = {f"{d.name}_{i}": _random(shape, d, rng)
              for d in DTYPES for i, shape in enumerate([(), (0, 3), (2, 3)])}
    arrays["nested.name.0"] = rng.standard_normal((3, 1)).astype(np.float32)
    return arrays


def test_our_files_load_with_the_safetensors_package(tmp_path, rng, st_numpy, st_torch):
    import safetensors
    import torch
    arrays = _interop_arrays(rng)
    path = tmp_path / "ours.safetensors"
    save_file({k: nf.from_numpy(v) for k, v in arrays.items()}, path, metadata={"a": "b"})
    theirs = st_numpy.load_file(str(path))
    assert set(theirs) == set(arrays)
    for k, v in arrays.items():
        _same(theirs[k], v)
    for k, t in st_torch.load_file(str(path)).items():
        _same(t.numpy(), arrays[k])
    with safetensors.safe_open(str(path), framework="np") as f:
        assert f.metadata() == {"a": "b"}
    # A whole nf.save checkpoint reads as its tensors, named by their paths.
    model = nf.nn.Sequential(nf.nn.Linear(3, 2))
    save({"model": model.state_dict(), "epoch": 1}, tmp_path / "ck.safetensors")
    tsd = st_torch.load_file(str(tmp_path / "ck.safetensors"))
    assert set(tsd) == {"model.0.weight", "model.0.bias"}
    tlin = torch.nn.Linear(3, 2)
    tlin.load_state_dict({k[len("model.0."):]: v for k, v in tsd.items()})
    x = np.ones((1, 3), np.float32)
    np.testing.assert_allclose(tlin(torch.from_numpy(x)).detach().numpy(),
                               model(nf.from_numpy(x)).detach().numpy(), rtol=1e-6)


def test_files_of_the_safetensors_package_load_with_ours(tmp_path, rng, st_numpy, st_torch):
    import torch
    arrays = _interop_arrays(rng)
    st_numpy.save_file(arrays, str(tmp_path / "np.safetensors"), metadata={"x": "y"})
    back = load_file(tmp_path / "np.safetensors")
    assert set(back) == set(arrays)
    for k, v in arrays.items():
        _same(back[k].numpy(), v)
    assert load_metadata(tmp_path / "np.safetensors") == {"x": "y"}

    tensors = {k: torch.from_numpy(v) for k, v in arrays.items()}
    tensors["bf16"] = torch.randn(4, 5).to(torch.bfloat16)
    tensors["bf16_0d"] = torch.tensor(-3.5, dtype=torch.bfloat16)
    tensors["t_noncontig"] = torch.randn(3, 4).t().contiguous()
    st_torch.save_file(tensors, str(tmp_path / "pt.safetensors"))
    back = load(tmp_path / "pt.safetensors")  # no nnforge structure: a flat dict
    assert set(back) == set(tensors)
    for k, t in tensors.items():
        if t.dtype == torch.bfloat16:  # nf.bfloat16, the same bits
            assert back[k].dtype is nf.bfloat16
            _same(back[k].float().numpy(), t.float().numpy())
        else:
            _same(back[k].numpy(), t.numpy())
    # A PyTorch model's weights, saved by safetensors.torch, drive our model.
    tmodel = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    st_torch.save_file(tmodel.state_dict(), str(tmp_path / "model.safetensors"))
    ours = nf.nn.Sequential(nf.nn.Linear(4, 3), nf.nn.ReLU(), nf.nn.Linear(3, 2))
    ours.load_state_dict(load_file(tmp_path / "model.safetensors"))
    x = rng.standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_allclose(ours(nf.from_numpy(x)).detach().numpy(),
                               tmodel(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
