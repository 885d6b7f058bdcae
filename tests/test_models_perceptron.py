"""The perceptron (Rosenblatt's rule and the gradient version), XOR and an MLP
that solves it, and universal approximation of 1-D functions."""
import math

import numpy as np
import pytest

import nnforge as nf
from nnforge.models import Perceptron, surrogate_loss
from nnforge.train.recipes import perceptron as recipes


def _quiet(*_):
    pass


# ----------------------------------------------------------------------------- the unit
def test_rosenblatt_rule_is_the_textbook_update():
    # One mistake on x = (1, 2) with label 1 from zero weights: w += lr * x, b += lr.
    unit = Perceptron(2)
    mistakes = unit.rosenblatt_epoch(nf.tensor([[1.0, 2.0]]), nf.tensor([1]), lr=0.5)
    assert mistakes == 1
    assert unit.linear.weight.detach().numpy().tolist() == [[0.5, 1.0]]
    assert unit.linear.bias.detach().numpy().tolist() == [0.5]
    # Right answers leave the weights alone.
    assert unit.rosenblatt_epoch(nf.tensor([[1.0, 2.0]]), nf.tensor([1]), lr=0.5) == 0
    assert unit.linear.weight.detach().numpy().tolist() == [[0.5, 1.0]]
    assert unit.predict(nf.tensor([[1.0, 2.0], [-3.0, -3.0]])).tolist() == [1, 0]


def test_rosenblatt_learns_and_and_stops():
    x = nf.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    unit = Perceptron(2)
    mistakes = unit.fit_rosenblatt(x, nf.tensor([0, 0, 0, 1]), shuffle=False)
    assert mistakes[-1] == 0 and all(m > 0 for m in mistakes[:-1])
    assert unit.predict(x).tolist() == [0, 0, 0, 1]


def test_rosenblatt_input_errors():
    unit = Perceptron(3)
    with pytest.raises(ValueError, match=r"x must be \(N, 3\)"):
        unit.rosenblatt_epoch(nf.zeros(4, 2), nf.zeros(4, dtype=nf.int64))
    with pytest.raises(ValueError, match="y must be"):
        unit.rosenblatt_epoch(nf.zeros(4, 3), nf.zeros(5, dtype=nf.int64))
    with pytest.raises(ValueError, match="0 or 1"):
        unit.rosenblatt_epoch(nf.zeros(2, 3), nf.tensor([0, 2]))


def test_surrogate_losses_match_their_formulas():
    s_np = np.array([2.0, -0.5, 0.3, -3.0], dtype=np.float32)
    y_np = np.array([1, 1, 0, 0])
    t = 2 * y_np - 1
    expected = {"logistic": np.mean(np.log1p(np.exp(-t * s_np))),
                "hinge": np.mean(np.maximum(0, 1 - t * s_np)),
                "perceptron": np.mean(np.maximum(0, -t * s_np))}
    for kind, value in expected.items():
        s = nf.tensor(s_np, requires_grad=True)
        loss = surrogate_loss(s, nf.tensor(y_np), kind)
        assert loss.item() == pytest.approx(value, rel=1e-5)
        loss.backward()
    # The perceptron criterion's gradient is -t x on mistakes only: Rosenblatt's update.
    s = nf.tensor(s_np, requires_grad=True)
    surrogate_loss(s, nf.tensor(y_np), "perceptron").backward()
    mistakes = (t * s_np) < 0
    np.testing.assert_allclose(s.grad.numpy(), np.where(mistakes, -t / 4, 0.0), atol=1e-7)
    with pytest.raises(ValueError, match="kind"):
        surrogate_loss(s, nf.tensor(y_np), "squared")
    with pytest.raises(ValueError, match="same shape"):
        surrogate_loss(s, nf.tensor([0, 1]), "hinge")


# ----------------------------------------------------------------------------- recipes
def test_separable_problem_rosenblatt_converges_and_gradient_version_too():
    history = recipes.perceptron_separable(progress=False, log=_quiet)
    mistakes = history["rosenblatt_mistakes"]
    assert history["rosenblatt_converged"] and mistakes[-1] == 0
    assert history["rosenblatt_train_acc"] == 1.0
    # Novikoff: at most (R / gamma)^2 mistakes in all, in the augmented space (x, 1)
    # where the bias is a weight. The true line has |w| = 1 and |b| <= 0.3, and every
    # point is >= 0.1 from it, so gamma >= 0.1 / |(w, b)| >= 0.1 / sqrt(1 + 0.3^2).
    x, _ = recipes.separable_data()
    r = float(np.sqrt((x.numpy() ** 2).sum(1).max() + 1.0))
    gamma = 0.1 / math.sqrt(1.0 + 0.3 ** 2)
    assert sum(mistakes) <= (r / gamma) ** 2
    assert history["gradient_errors"][-1] == 0 and history["gradient_train_acc"] == 1.0


def test_digits_0_vs_1_are_separable_and_the_rule_generalizes():
    history = recipes.perceptron_digits01(progress=False, log=_quiet)
    assert history["rosenblatt_converged"] and history["rosenblatt_train_acc"] == 1.0
    assert history["rosenblatt_test_acc"] >= 0.98
    assert history["gradient_train_acc"] == 1.0 and history["gradient_test_acc"] >= 0.98


def test_xor_defeats_the_perceptron_and_an_mlp_solves_it(tmp_path):
    lines = []
    history = recipes.perceptron_xor(progress=False, log=lines.append, out_dir=str(tmp_path))
    # No line separates XOR: Rosenblatt's rule never has an error-free epoch...
    assert not history["rosenblatt_converged"]
    assert len(history["rosenblatt_mistakes"]) == 300 and min(history["rosenblatt_mistakes"]) > 0
    assert history["rosenblatt_train_acc"] <= 0.75
    # ...nor does gradient descent on a single unit...
    assert min(history["gradient_errors"]) > 0 and history["gradient_train_acc"] <= 0.75
    # ...but one hidden layer does.
    assert history["mlp_train_acc"] == 1.0 and history["mlp_loss"][-1] < 0.05
    assert any("MLP 2-8-1" in line for line in lines)
    assert {"history.json", "mlp.safetensors"} <= {p.name for p in tmp_path.iterdir()}


@pytest.mark.parametrize("data", ["sin", "abs", "step"])
def test_one_hidden_layer_approximates_1d_functions(data):
    history = recipes.fit_function(data, tolerance=0.05, progress=False, log=_quiet)
    assert history["reached"], history["max_abs_error"][-5:]
    # Check the returned model independently on a grid it never trained on.
    model = history["model"]
    grid = np.linspace(-math.pi, math.pi, 999, dtype=np.float32)[:, None]
    with nf.no_grad():
        out = model(nf.from_numpy(grid)).numpy()
    f = recipes.TARGETS[data][0]
    assert np.abs(out - f(grid)).max() < 0.05


def test_cli_trains_the_perceptron(capsys):
    from nnforge.cli import main
    assert main(["train", "perceptron", "--data", "separable", "--no-progress"]) == 0
    assert "converged after" in capsys.readouterr().out


def test_docstring_examples():
    import doctest

    import nnforge.models.perceptron as module
    assert doctest.testmod(module).failed == 0
