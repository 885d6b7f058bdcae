"""The nnforge command line."""
import subprocess
import sys

from nnforge.cli import main


def test_train_mlp_digits_runs_and_reports(capsys):
    assert main(["train", "mlp", "--data", "digits", "--epochs", "2", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "epoch   2/2" in out and "final test accuracy" in out


def test_unknown_recipe_is_a_clear_error(capsys):
    assert main(["train", "resnet", "--data", "digits"]) == 2
    err = capsys.readouterr().err
    assert "no recipe for model 'resnet'" in err and "mlp --data digits" in err


def test_info_and_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "nnforge", "info"], capture_output=True, text=True,
                         check=True).stdout
    assert "kernel ISA" in out and "CUDA built" in out
