"""The nnforge command line."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import nnforge as nf
from nnforge.cli import main
from nnforge.train import recipes


def test_train_mlp_digits_runs_and_reports(capsys):
    assert main(["train", "mlp", "--data", "digits", "--epochs", "2", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "epoch   2/2" in out and "final test accuracy" in out


def test_train_with_out_dir_writes_checkpoints_history_and_summary(tmp_path, capsys):
    out = tmp_path / "run"
    threads = nf.get_num_threads()
    try:  # --data defaults to the model's own data set
        assert main(["train", "mlp", "--epochs", "3", "--batch-size", "64", "--seed", "1",
                     "--out", str(out), "--no-progress", "--threads", "1"]) == 0
        assert nf.get_num_threads() == 1
    finally:
        nf.set_num_threads(threads)
    text = capsys.readouterr().out
    assert "epoch   3/3" in text and "final test accuracy" in text
    for name in ("best.safetensors", "last.safetensors", "history.json", "summary.txt"):
        assert (out / name).is_file(), name
    history = json.loads((out / "history.json").read_text())
    assert history["epoch"] == [1, 2, 3] and len(history["val_accuracy"]) == 3
    last = nf.load(out / "last.safetensors")
    assert last["epoch"] == 3 and last["extra"]["recipe"] == "mlp/digits"
    assert last["extra"]["seed"] == 1 and last["extra"]["batch_size"] == 64
    summary = (out / "summary.txt").read_text()
    assert "parameters: 19,210" in summary and "time per epoch" in summary
    assert "FLOPs per sample (forward): 37,888" in summary and "final test accuracy" in summary


def test_learning_curves_png(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="learning_curves.png needs matplotlib "
                        "(pip install 'nnforge[plot]')")
    assert main(["train", "mlp", "--epochs", "2", "--out", str(tmp_path), "--no-progress"]) == 0
    png = tmp_path / "learning_curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_without_matplotlib_a_note_instead_of_the_plot(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(nf.viz, "have_matplotlib", lambda: False)
    assert main(["train", "mlp", "--epochs", "1", "--out", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "learning_curves.png not written: matplotlib is not installed" in out
    assert not (tmp_path / "learning_curves.png").exists() and (tmp_path / "summary.txt").exists()


def test_resume_from_the_cli_matches_a_straight_run(tmp_path, capsys):
    straight, split = tmp_path / "straight", tmp_path / "split"
    args = ["train", "mlp", "--no-progress", "--seed", "3", "--batch-size", "128"]
    assert main(args + ["--epochs", "3", "--out", str(straight)]) == 0
    assert main(args + ["--epochs", "1", "--out", str(split)]) == 0
    assert main(args + ["--epochs", "3", "--out", str(split), "--resume",
                        str(split / "last.safetensors")]) == 0
    assert "resumed from" in capsys.readouterr().out
    a, b = nf.load(straight / "last.safetensors"), nf.load(split / "last.safetensors")
    assert b["epoch"] == 3 and b["history"]["epoch"] == [1, 2, 3]
    for k, v in a["model"].items():
        assert np.array_equal(v.numpy(), b["model"][k].numpy()), k


def test_evaluate_a_checkpoint(tmp_path, capsys):
    assert main(["train", "mlp", "--epochs", "2", "--out", str(tmp_path), "--no-progress"]) == 0
    trained = capsys.readouterr().out
    assert main(["evaluate", "mlp", "--checkpoint", str(tmp_path / "last.safetensors")]) == 0
    out = capsys.readouterr().out
    assert "test accuracy" in out and "after epoch 2" in out
    # the same number the training run reported for its last epoch
    final = trained.split("final test accuracy ")[1].split("%")[0]
    assert f"test accuracy {final}%" in out
    # a bare state_dict file works too
    nf.save(nf.load(tmp_path / "best.safetensors")["model"], tmp_path / "weights.safetensors")
    assert main(["evaluate", "mlp", "--data", "digits", "--checkpoint",
                 str(tmp_path / "weights.safetensors")]) == 0


def test_list_and_info(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:4] == ["MODEL", "DATA", "DEFAULT", "EVALUATE"]
    row = next(line for line in out.splitlines() if line.startswith("mlp "))
    assert row.split()[:4] == ["mlp", "digits", "yes", "yes"]


def test_info_and_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "nnforge", "info"], capture_output=True, text=True,
                         check=True).stdout
    assert "kernel ISA" in out and "CUDA built" in out


def test_unknown_recipe_is_a_clear_error(capsys):
    assert main(["train", "capsnet", "--data", "digits"]) == 2
    err = capsys.readouterr().err
    assert "no recipe for model 'capsnet'" in err and "mlp --data digits" in err


@pytest.mark.parametrize("argv, message", [
    (["train", "mlp", "--epochs", "0"], "argument --epochs: expected a positive integer, got '0'"),
    (["train", "mlp", "--epochs", "two"], "argument --epochs: expected a positive integer"),
    (["train", "mlp", "--lr", "-0.1"], "argument --lr: expected a positive number, got '-0.1'"),
    (["train", "mlp", "--lr", "nan"], "argument --lr: expected a positive number"),
    (["train", "mlp", "--batch-size", "0"], "argument --batch-size: expected a positive"),
    (["train", "mlp", "--seed", "-1"], "argument --seed: expected a non-negative integer"),
    (["train", "mlp", "--device", "gpu"], "argument --device: invalid choice: 'gpu'"),
    (["train", "mlp", "--data", "mnist"], "no recipe for model 'mlp' on data 'mnist'; mlp "
                                          "trains on: digits"),
    (["train", "mlp", "--resume", "/nonexistent/last.safetensors"], "no such file"),
    (["train"], "the following arguments are required: model"),
    (["evaluate", "mlp"], "the following arguments are required: --checkpoint"),
    (["evaluate", "mlp", "--checkpoint", "/nonexistent.safetensors"], "no such file"),
    (["evaluate", "nosuchmodel", "--checkpoint", "x"], "no recipe for model 'nosuchmodel'"),
    ([], "the following arguments are required: COMMAND"),
    (["fly"], "invalid choice: 'fly'"),
])
def test_bad_input_exits_with_2_and_a_message(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_damaged_or_foreign_checkpoints_exit_with_2(tmp_path, capsys):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a checkpoint at all")
    assert main(["train", "mlp", "--resume", str(junk)]) == 2
    assert "not a valid safetensors file" in capsys.readouterr().err
    weights = tmp_path / "weights.safetensors"
    nf.save({"w": nf.ones(2)}, weights)
    assert main(["train", "mlp", "--resume", str(weights)]) == 2
    assert "not an nnforge training checkpoint" in capsys.readouterr().err
    assert main(["evaluate", "mlp", "--checkpoint", str(junk)]) == 2
    assert "not a valid safetensors file" in capsys.readouterr().err
    assert main(["evaluate", "mlp", "--checkpoint", str(weights)]) == 2
    assert "holds no MLP weights" in capsys.readouterr().err


def test_cuda_device_is_a_clear_error_without_cuda(capsys):
    if nf.cuda.is_available():
        pytest.skip("a CUDA device is available")
    assert main(["train", "mlp", "--device", "cuda", "--epochs", "1"]) == 2
    assert "--device cuda is not available" in capsys.readouterr().err


def test_options_a_recipe_does_not_take_are_refused(monkeypatch, capsys):
    recipes.load_all()
    ran = []

    def tiny(*, epochs=1, progress=True, log=print):
        """A recipe without --out, --seed or --resume."""
        ran.append(epochs)
        return {}

    monkeypatch.setitem(recipes.RECIPES, ("tiny", "toy"), tiny)
    monkeypatch.setitem(recipes.DEFAULT_DATA, "tiny", "toy")
    assert main(["train", "tiny", "--epochs", "2", "--no-progress"]) == 0 and ran == [2]
    assert main(["train", "tiny", "--seed", "1", "--out", "x"]) == 2
    assert "recipe tiny --data toy does not support --seed, --out" in capsys.readouterr().err
    assert main(["evaluate", "tiny", "--checkpoint", os.devnull]) == 2
    assert "has no evaluator" in capsys.readouterr().err
