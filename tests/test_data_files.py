"""nnforge.data.files: loading the user's own .npy/.npz, CSV and text files,
and the clear errors for missing and malformed ones."""
import numpy as np
import pytest

import nnforge.data.files as files
from nnforge.data.files import load_array, load_csv, load_text


def write(tmp_path, name, content):
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def test_module_is_reachable_both_ways():
    import nnforge as nf
    assert nf.data.files is files and nf.data.files.load_csv is load_csv


@pytest.mark.parametrize("loader", [load_array, load_csv, load_text])
def test_missing_files_raise_file_not_found(loader, tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.dat"):
        loader(tmp_path / "nope.dat")
    with pytest.raises(IsADirectoryError):
        loader(tmp_path)


# ---------------------------------------------------------------------------- arrays
def test_load_npy_and_npz(tmp_path):
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.save(tmp_path / "a.npy", a)
    np.testing.assert_array_equal(load_array(tmp_path / "a.npy"), a)
    np.savez(tmp_path / "b.npz", x=a, y=np.arange(3))
    both = load_array(str(tmp_path / "b.npz"))
    assert sorted(both) == ["x", "y"] and both["x"].dtype == np.float32
    np.testing.assert_array_equal(load_array(tmp_path / "b.npz", "y"), np.arange(3))
    x, y = load_array(tmp_path / "b.npz", ["x", "y"])
    np.testing.assert_array_equal(x, a)
    np.savez_compressed(tmp_path / "c.npz", z=a)  # compressed archives too; the name's suffix
    (tmp_path / "c.npz").rename(tmp_path / "c.data")  # does not matter, the contents do
    np.testing.assert_array_equal(load_array(tmp_path / "c.data", "z"), a)


def test_npz_missing_key_lists_the_keys(tmp_path):
    np.savez(tmp_path / "b.npz", images=np.zeros(2), labels=np.zeros(2))
    with pytest.raises(KeyError, match=r"no array 'x'.*\['images', 'labels'\]"):
        load_array(tmp_path / "b.npz", "x")
    with pytest.raises(KeyError, match="'x'"):
        load_array(tmp_path / "b.npz", ["images", "x"])
    np.save(tmp_path / "a.npy", np.zeros(2))
    with pytest.raises(ValueError, match="a.npy.*only to .npz"):
        load_array(tmp_path / "a.npy", "x")


def test_pickled_arrays_are_refused(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="obj.npy.*never unpickles"):
        load_array(tmp_path / "obj.npy")
    np.savez(tmp_path / "obj.npz", ok=np.zeros(2), bad=np.array([[1], "x"], dtype=object))
    with pytest.raises(ValueError, match="obj.npz.*never unpickles"):
        load_array(tmp_path / "obj.npz", "bad")
    np.testing.assert_array_equal(load_array(tmp_path / "obj.npz", "ok"), np.zeros(2))
    import pickle
    write(tmp_path, "p.npy", pickle.dumps([1, 2]))  # a bare pickle is not a numpy file
    with pytest.raises(ValueError, match="p.npy is not a .npy or .npz"):
        load_array(tmp_path / "p.npy")


def test_corrupt_array_files(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(100))
    data = (tmp_path / "a.npy").read_bytes()
    write(tmp_path, "short.npy", data[:-40])
    with pytest.raises(ValueError, match="short.npy"):
        load_array(tmp_path / "short.npy")
    np.savez(tmp_path / "b.npz", x=np.arange(100))
    write(tmp_path, "short.npz", (tmp_path / "b.npz").read_bytes()[:60])
    with pytest.raises(ValueError, match="short.npz"):
        load_array(tmp_path / "short.npz")
    write(tmp_path, "empty.npy", b"")
    with pytest.raises(ValueError, match="empty.npy"):
        load_array(tmp_path / "empty.npy")


# ---------------------------------------------------------------------------- CSV
def test_csv_header_auto_and_names(tmp_path):
    p = write(tmp_path, "t.csv", "year, value\n1700,5\n1701,11.5\n\n")
    names, table = load_csv(p, return_names=True)
    assert names == ["year", "value"] and table.dtype == np.float32
    np.testing.assert_array_equal(table, [[1700, 5], [1701, 11.5]])
    plain = write(tmp_path, "n.csv", "1;2;3\n4;5;6\n")
    names, table = load_csv(plain, delimiter=";", return_names=True)
    assert names is None and table.shape == (2, 3)
    assert load_csv(plain, header=True, delimiter=";").tolist() == [[4, 5, 6]]
    ints = load_csv(plain, delimiter=";", dtype=np.int64)
    assert ints.dtype == np.int64 and ints.tolist() == [[1, 2, 3], [4, 5, 6]]
    assert load_csv(write(tmp_path, "h.csv", "a,b\n"), return_names=True)[1].shape == (0, 2)
    commented = write(tmp_path, "c.csv", "# made by hand\n1,2\n# more\n3,4\n")
    assert load_csv(commented, comments="#").tolist() == [[1, 2], [3, 4]]
    q = write(tmp_path, "q.csv", '"name, with comma",b\n1,nan\n2,-inf\n')
    names, table = load_csv(q, return_names=True)
    assert names == ["name, with comma", "b"] and np.isnan(table[0, 1]) and table[1, 1] == -np.inf


def test_csv_matches_numpy_on_the_sunspots_file():
    from nnforge.data.datasets import data_path
    ours = load_csv(data_path("sunspots"), dtype=np.float64)
    ref = np.loadtxt(data_path("sunspots"), delimiter=",", skiprows=1)
    np.testing.assert_array_equal(ours, ref)


@pytest.mark.parametrize("content, message", [
    ("a,b\n1,2\n3\n", r"bad.csv, line 3: expected 2 cells \(as in the header\), got 1"),
    ("1,2\n3,4,5\n", r"bad.csv, line 2: expected 2 cells \(as in line 1\), got 3"),
    ("a,b\n1,2\n3,x7\n", r"bad.csv, line 3, column 2: cell 'x7' is not a number"),
    ("1,2\n\n\n3,oops\n", r"bad.csv, line 4, column 2: cell 'oops' is not a number"),
    ("a,b\n1,\n", r"bad.csv, line 2, column 2: empty cell"),
    ("", r"bad.csv has no rows"),
])
def test_malformed_csv_names_file_line_and_problem(tmp_path, content, message):
    p = write(tmp_path, "bad.csv", content)
    with pytest.raises(ValueError, match=message):
        load_csv(p)


def test_csv_integer_dtype_and_missing_values(tmp_path):
    p = write(tmp_path, "i.csv", "1,2\n3,4.5\n")
    with pytest.raises(ValueError, match=r"line 2, column 2: cell '4.5' is not an integer"):
        load_csv(p, dtype=np.int32)
    with pytest.raises(ValueError, match="out of range for int8"):
        load_csv(write(tmp_path, "big.csv", "1,300\n"), dtype=np.int8)
    m = write(tmp_path, "m.csv", "1,,3\n,5,6\n")
    table = load_csv(m, missing=np.nan)
    assert np.isnan(table[0, 1]) and np.isnan(table[1, 0]) and table[1, 2] == 6
    assert load_csv(m, missing=-1, dtype=np.int64).tolist() == [[1, -1, 3], [-1, 5, 6]]
    with pytest.raises(ValueError, match="not an integer"):
        load_csv(m, missing=np.nan, dtype=np.int64)
    with pytest.raises(ValueError, match="dtype"):
        load_csv(m, dtype=np.str_)


def test_csv_undecodable_bytes(tmp_path):
    p = write(tmp_path, "latin.csv", "a,b\n1,2\n".encode() + "caf\xe9,3\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin.csv is not valid utf-8 text.*line 3, column 4"):
        load_csv(p)
    with pytest.raises(ValueError, match=r"line 3, column 1: cell 'café' is not a number"):
        load_csv(p, encoding="latin-1")


# ---------------------------------------------------------------------------- text
def test_load_text(tmp_path):
    p = write(tmp_path, "t.txt", "héllo\nwörld\r\n")
    assert load_text(p) == "héllo\nwörld\r\n"  # newlines kept exactly
    latin = write(tmp_path, "l.txt", "line one\nna\xefve\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"l.txt is not valid utf-8 text: byte\(s\) b'\\xef' "
                                         r"at line 2, column 3 \(byte offset 11\)"):
        load_text(latin)
    assert load_text(latin, encoding="latin-1") == "line one\nnaïve\n"
    with pytest.raises(ValueError, match="unknown encoding"):
        load_text(p, encoding="no-such-codec")
