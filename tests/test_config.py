"""Tests for the extension module's build/runtime configuration (nnforge._C, nnforge.config)."""

import io
import os
import subprocess
import sys

import numpy as np
import pytest

from nnforge import _C, config

FEATURES = [
    "sse4_2", "avx", "avx2", "fma",
    "avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512_vnni", "avx512_bf16",
    "amx_tile", "amx_bf16",
]


def run_python(code, **env_overrides):
    """Run `code` in a fresh interpreter (the ISA choice is cached per process)."""
    env = dict(os.environ)
    env.pop("NNFORGE_ISA", None)
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def restore_threads():
    before = _C.get_num_threads()
    yield
    _C.set_num_threads(before)


# ---------------------------------------------------------------- build info


def test_module_imports_with_version():
    assert _C.__version__ == "0.1.0"
    assert hasattr(_C, "cpu") and hasattr(_C, "cuda")


def test_build_info_keys_and_types():
    info = _C.build_info()
    assert set(info) == {"version", "compiler", "cxx_standard", "openmp", "cuda_built"}
    assert info["version"] == _C.__version__
    assert isinstance(info["compiler"], str) and info["compiler"] != "unknown compiler"
    assert info["cxx_standard"] in ("C++17", "C++20", "C++23")
    assert isinstance(info["openmp"], bool)
    assert info["cuda_built"] is _C.cuda.is_built()


# ---------------------------------------------------------------- CPU features and ISA


def test_cpu_features_are_bools():
    feats = _C.cpu_features()
    assert list(feats) == FEATURES
    assert all(type(v) is bool for v in feats.values())


def test_cpu_features_are_consistent():
    f = _C.cpu_features()
    # Every AVX-512 subset implies the foundation; AVX2/FMA imply OS AVX support.
    for name in ("avx512bw", "avx512dq", "avx512vl", "avx512_vnni", "avx512_bf16"):
        assert not f[name] or f["avx512f"], name
    assert not f["avx2"] or f["avx"]
    assert not f["fma"] or f["avx"]
    assert not f["amx_bf16"] or f["amx_tile"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/cpuinfo")
def test_cpu_features_match_proc_cpuinfo():
    with open("/proc/cpuinfo") as fh:
        flags_line = next((line for line in fh if line.startswith("flags")), None)
    if flags_line is None:
        pytest.skip("no x86 flags line in /proc/cpuinfo")
    kernel_flags = set(flags_line.split(":", 1)[1].split())
    feats = _C.cpu_features()
    # The kernel only lists a flag when the OS also enables its state.
    for name in FEATURES:
        assert feats[name] == (name in kernel_flags), name


def expected_isa(f):
    if all(f[k] for k in ("avx512f", "avx512bw", "avx512dq", "avx512vl", "fma")):
        return "avx512"
    if f["avx2"] and f["fma"]:
        return "avx2"
    return "scalar"


def test_selected_isa_follows_features():
    result = run_python("from nnforge import _C; print(_C.selected_isa(), _C.isa_forced())")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [expected_isa(_C.cpu_features()), "False"]


@pytest.mark.parametrize("isa", ["scalar", "avx2", "avx512"])
def test_nnforge_isa_forces_choice(isa):
    result = run_python(
        "from nnforge import _C; print(_C.selected_isa(), _C.isa_forced())", NNFORGE_ISA=isa
    )
    f = _C.cpu_features()
    supported = {"scalar": True, "avx2": f["avx2"] and f["fma"],
                 "avx512": expected_isa(f) == "avx512"}[isa]
    if supported:
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == [isa, "True"]
    else:
        assert result.returncode != 0
        assert "RuntimeError" in result.stderr
        assert f"NNFORGE_ISA={isa}" in result.stderr and "lacks" in result.stderr


def test_nnforge_isa_is_case_insensitive():
    result = run_python("from nnforge import _C; print(_C.selected_isa())", NNFORGE_ISA="Scalar")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "scalar"


def test_nnforge_isa_bad_value_is_a_clear_error():
    code = (
        "from nnforge import _C\n"
        "for _ in range(2):\n"  # the error is cached, and raised every time
        "    try:\n"
        "        _C.selected_isa()\n"
        "    except ValueError as e:\n"
        "        print(e)\n"
    )
    result = run_python(code, NNFORGE_ISA="sse9")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2 and lines[0] == lines[1]
    assert "NNFORGE_ISA='sse9'" in lines[0]
    assert "scalar, avx2, avx512" in lines[0]


# ---------------------------------------------------------------- threads


def test_num_threads_round_trip(restore_threads):
    config.set_num_threads(1)
    assert config.get_num_threads() == 1
    config.set_num_threads(3)
    expected = 3 if _C.build_info()["openmp"] else 1
    assert config.get_num_threads() == expected
    assert _C.get_num_threads() == expected
    config.set_num_threads(np.int64(2))  # numpy integers are integers
    assert config.get_num_threads() == (2 if _C.build_info()["openmp"] else 1)


@pytest.mark.parametrize("bad", [0, -1])
def test_set_num_threads_rejects_below_one(bad, restore_threads):
    before = config.get_num_threads()
    with pytest.raises(ValueError, match=rf"set_num_threads: n must be >= 1, got {bad}"):
        config.set_num_threads(bad)
    # The C++ side checks too, with the same message.
    with pytest.raises(ValueError, match=rf"set_num_threads: n must be >= 1, got {bad}"):
        _C.set_num_threads(bad)
    assert config.get_num_threads() == before


@pytest.mark.parametrize("bad", [2.0, "4", None, True])
def test_set_num_threads_rejects_non_integers(bad):
    with pytest.raises(TypeError, match="set_num_threads: n must be an int"):
        config.set_num_threads(bad)


def test_omp_num_threads_is_honoured():
    if not _C.build_info()["openmp"]:
        pytest.skip("built without OpenMP")
    result = run_python("from nnforge import _C; print(_C.get_num_threads())", OMP_NUM_THREADS="3")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3"


# ---------------------------------------------------------------- CUDA


def test_cuda_queries_do_not_crash():
    count = _C.cuda.device_count()
    assert isinstance(count, int) and count >= 0
    if not _C.cuda.is_built():
        assert count == 0
        with pytest.raises(RuntimeError, match="built without CUDA"):
            _C.cuda.device_name(0)
        return
    with pytest.raises(IndexError, match="out of range"):
        _C.cuda.device_name(count)
    with pytest.raises(IndexError, match="out of range"):
        _C.cuda.device_name(-1)
    for i in range(count):
        assert _C.cuda.device_name(i).strip()


def test_cuda_device_count_is_zero_with_no_visible_device():
    # Hiding every device works on GPU machines too; where there is no driver
    # at all this is the path that must report 0 instead of failing.
    result = run_python(
        "from nnforge import _C; print(_C.cuda.device_count(), _C.cuda.device_count())",
        CUDA_VISIBLE_DEVICES="",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "0"]


# ---------------------------------------------------------------- show_config


def show_config_text():
    buf = io.StringIO()
    config.show_config(file=buf)
    return buf.getvalue()


def test_show_config_lines():
    text = show_config_text()
    lines = text.splitlines()
    assert lines[0] == f"nnforge {_C.__version__}"
    fields = dict(line.strip().split(":", 1) for line in lines[1:])
    fields = {k: v.strip() for k, v in fields.items()}
    info = _C.build_info()
    assert fields["Python"].startswith(".".join(map(str, sys.version_info[:3])))
    assert fields["numpy"] == np.__version__
    assert fields["compiler"] == info["compiler"]
    assert fields["C++ standard"] == info["cxx_standard"]
    assert fields["OpenMP"] == ("yes" if info["openmp"] else "no")
    present = [k for k, v in _C.cpu_features().items() if v]
    assert fields["CPU features"] == (" ".join(present) or "(none detected)")
    assert fields["threads"] == str(_C.get_num_threads())
    assert fields["CUDA built"] == ("yes" if info["cuda_built"] else "no")
    count = _C.cuda.device_count()
    if count == 0:
        assert fields["CUDA available"] == "no (0 devices)"
    else:
        assert fields["CUDA available"].startswith(f"yes ({count} device")
        assert _C.cuda.device_name(0) in fields["CUDA available"]
    # In this process NNFORGE_ISA may or may not be set; check the wording.
    how = "forced by NNFORGE_ISA" if _C.isa_forced() else "detected"
    assert fields["kernel ISA"] == f"{_C.selected_isa()} ({how})"


def test_show_config_defaults_to_stdout(capsys):
    config.show_config()
    assert capsys.readouterr().out == show_config_text()


def test_show_config_reports_forced_and_bad_isa():
    code = "from nnforge import config; config.show_config()"
    forced = run_python(code, NNFORGE_ISA="scalar")
    assert forced.returncode == 0, forced.stderr
    assert "kernel ISA:" in forced.stdout
    assert "scalar (forced by NNFORGE_ISA)" in forced.stdout
    # A bad value must not stop show_config, which is what people run to debug it.
    bad = run_python(code, NNFORGE_ISA="nope")
    assert bad.returncode == 0, bad.stderr
    assert "kernel ISA:" in bad.stdout and "error: NNFORGE_ISA='nope'" in bad.stdout
