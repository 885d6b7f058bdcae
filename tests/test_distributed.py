"""nnforge.distributed and DistributedDataParallel under `mpirun -n 2` (oversubscribed on
this machine): collectives, DDP equivalence with one process at twice the batch (SGD, Adam,
no_sync accumulation, fit), bucket overlap, unused parameters, a failing rank ending the job,
and the CLI's --distributed run resumed in one process. The in-process checks live in
tests/mpi/checks.py and share one launch; tests skip when mpi4py or mpirun is missing."""
import importlib.util
import json
import os
import subprocess
import sys

import pytest

import nnforge as nf
import nnforge.distributed as dist

HERE = os.path.dirname(os.path.abspath(__file__))
LAUNCHER = dist.find_mpirun()
HAS_MPI = importlib.util.find_spec("mpi4py") is not None and LAUNCHER is not None
requires_mpi = pytest.mark.skipif(
    not HAS_MPI, reason="needs mpi4py and an MPI launcher (pip install 'nnforge[mpi]')")
TIMEOUT = 120


def mpirun(argv, n=2, timeout=TIMEOUT, cwd=None):
    cmd = dist.mpirun_command(n, [sys.executable] + argv, launcher=LAUNCHER)
    env = dist.mpirun_env()
    env["PYTHONPATH"] = os.pathsep.join([HERE, env.get("PYTHONPATH", "")])
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd)


# --------------------------------------------------------------------------- no MPI needed
def test_missing_mpi4py_is_a_clear_import_error(monkeypatch):
    from nnforge.distributed import _mpi
    monkeypatch.setattr(_mpi, "_MPI", None)
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    with pytest.raises(ImportError, match=r"mpi4py is not installed; pip install 'nnforge\[mpi\]'"):
        dist.init_process_group()
    assert not dist.is_available() and not dist.is_initialized()


def test_missing_launcher(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    assert dist.find_mpirun() is None
    with pytest.raises(RuntimeError, match="no MPI launcher"):
        dist.mpirun_command(2, ["x.py"])


def test_uninitialized_group_errors():
    with pytest.raises(ValueError, match="has not been initialized"):
        dist.get_rank()
    with pytest.raises(ValueError, match="has not been initialized"):
        dist.all_reduce(nf.ones(2))
    with pytest.raises(ValueError, match="has not been initialized"):
        nf.nn.parallel.DistributedDataParallel(nf.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="backend 'nccl' is not supported"):
        dist.init_process_group("nccl")


def test_mpirun_env_allows_oversubscription():
    env = dist.mpirun_env({})
    assert env["OMPI_MCA_rmaps_base_oversubscribe"] == "1" and env["OMP_NUM_THREADS"] == "1"
    if os.geteuid() == 0:
        assert env["OMPI_ALLOW_RUN_AS_ROOT"] == "1"


# --------------------------------------------------------------------------- under mpirun
@pytest.fixture(scope="module")
def checks(tmp_path_factory):
    out = tmp_path_factory.mktemp("mpi") / "results.json"
    proc = mpirun([os.path.join(HERE, "mpi", "checks.py"), str(out)])
    assert proc.returncode == 0 and out.exists(), proc.stdout + proc.stderr
    return json.loads(out.read_text())


CHECK_NAMES = ["collectives", "ddp_equivalence_sgd", "ddp_equivalence_adam_small_buckets",
               "ddp_no_sync_accumulation", "ddp_buffers_and_state_dict", "ddp_overlap",
               "ddp_unused_parameters", "ddp_fit_matches_single_process"]


@requires_mpi
@pytest.mark.parametrize("name", CHECK_NAMES)
def test_under_mpirun(checks, name):
    assert set(checks) == set(CHECK_NAMES)
    assert checks[name] == "ok", checks[name]


@requires_mpi
def test_a_failing_rank_ends_the_job(tmp_path):
    script = tmp_path / "fail.py"
    script.write_text(
        "import nnforge.distributed as dist\n"
        "dist.init_process_group()\n"
        "if dist.get_rank() == 1:\n"
        "    raise ValueError('rank one fails')\n"
        "dist.barrier()  # rank 0 would wait here forever without the abort\n"
        "print('rank 0 passed the barrier')\n")
    proc = mpirun([str(script)], timeout=60)
    assert proc.returncode != 0
    assert "rank one fails" in proc.stderr and "aborting all ranks" in proc.stderr
    assert "passed the barrier" not in proc.stdout


@requires_mpi
def test_cli_distributed_run_resumes_in_one_process(tmp_path, capsys):
    out = tmp_path / "run"
    proc = mpirun(["-m", "nnforge", "train", "mlp", "--epochs", "1", "--batch-size", "16",
                   "--distributed", "--out", str(out), "--no-progress"], cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "data-parallel over 2 ranks" in proc.stderr
    assert proc.stdout.count("epoch   1/1") == 1  # rank 0 alone logs
    assert (out / "last.safetensors").exists() and (out / "history.json").exists()
    state = nf.load(str(out / "last.safetensors"))
    assert state["epoch"] == 1 and not any(k.startswith("module.") for k in state["model"])

    from nnforge import cli
    status = cli.main(["train", "mlp", "--epochs", "2", "--resume", str(out / "last.safetensors"),
                       "--no-progress"])
    text = capsys.readouterr().out
    assert status == 0 and "resumed from" in text and "epoch   2/2" in text
