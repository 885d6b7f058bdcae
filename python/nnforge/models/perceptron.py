"""The perceptron (Rosenblatt 1958): one linear threshold unit.

    s = w . x + b,        y_hat = step(s) = 1 if s > 0 else 0

Rosenblatt's learning rule looks at one example at a time and changes the
weights only when the unit is wrong (the step has no useful gradient):

    w <- w + lr (y - y_hat) x,        b <- b + lr (y - y_hat)

Perceptron convergence theorem (Novikoff 1962): if some unit separates the two
classes with margin gamma and every ||x|| <= R, the rule makes at most
(R / gamma)^2 mistakes in all, so an epoch without a mistake comes and training
stops. XOR has no separating line (Minsky and Papert 1969): the rule never
stops, and a hidden layer (``nf.models.MLP``) is needed.

The gradient version keeps the unit and replaces the step by a smooth
surrogate of the 0-1 loss, minimised by autograd; with t = 2y - 1 in {-1, +1}:

    logistic:    log(1 + exp(-t s))  (binary cross-entropy of sigmoid(s): logistic regression)
    hinge:       max(0, 1 - t s)     (the linear SVM's loss, without the weight penalty)
    perceptron:  max(0, -t s)        (its gradient step on a mistake is Rosenblatt's update)
"""
from __future__ import annotations

from .. import nn
from ..autograd.grad_mode import no_grad
from ..nn import functional as F
from ..ops.creation import randperm
from ..tensor import Tensor

_SURROGATES = ("logistic", "hinge", "perceptron")


class Perceptron(nn.Module):
    """``Perceptron(in_features)``: the score s = w . x + b of one linear unit.

    ``forward`` gives the scores (N,), ``predict`` the step of them (0/1),
    ``fit_rosenblatt`` runs the original mistake-driven rule. The weights start
    at zero, as in Rosenblatt's rule (a single unit has no symmetry to break).

    >>> import nnforge as nf
    >>> x = nf.tensor([[0., 0.], [0., 1.], [1., 0.], [1., 1.]])
    >>> unit = nf.models.Perceptron(2)
    >>> unit.fit_rosenblatt(x, nf.tensor([0, 0, 0, 1]), shuffle=False)  # AND: mistakes per epoch
    [1, 3, 3, 2, 1, 0]
    >>> unit.predict(x).tolist()
    [0, 0, 0, 1]
    """

    def __init__(self, in_features: int):
        super().__init__()
        self.in_features = in_features
        self.linear = nn.Linear(in_features, 1)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x).squeeze(-1)

    @no_grad()
    def predict(self, x: Tensor) -> Tensor:
        """step(s): 1 where the score is positive, else 0 (int64)."""
        return (self(x) > 0).long()

    @no_grad()
    def rosenblatt_epoch(self, x: Tensor, y: Tensor, lr: float = 1.0, order=None) -> int:
        """One pass of Rosenblatt's rule over the rows of ``x`` (N, in_features)
        with 0/1 labels ``y`` (N,), in ``order`` (default: 0..N-1); returns the
        number of mistakes made during the pass."""
        _check_binary_problem("Perceptron.rosenblatt_epoch", x, y, self.in_features)
        w, b = self.linear.weight, self.linear.bias  # (1, in), (1,)
        labels = [int(v) for v in y.tolist()]
        mistakes = 0
        for i in (range(len(labels)) if order is None else [int(i) for i in order]):
            xi = x[i]
            y_hat = 1 if float((w[0] * xi).sum() + b[0]) > 0 else 0
            err = labels[i] - y_hat  # in {-1, 0, +1}: only mistakes move the weights
            if err:
                mistakes += 1
                w.add_(xi * (lr * err))  # w <- w + lr (y - y_hat) x
                b.add_(lr * err)         # b <- b + lr (y - y_hat)
        return mistakes

    def fit_rosenblatt(self, x: Tensor, y: Tensor, lr: float = 1.0, max_epochs: int = 100,
                       shuffle: bool = True, generator=None) -> list:
        """Epochs of Rosenblatt's rule until one has no mistake (converged) or
        ``max_epochs`` have run; returns the mistakes of each epoch."""
        mistakes = []
        for _ in range(max_epochs):
            order = randperm(len(y), generator=generator).tolist() if shuffle else None
            mistakes.append(self.rosenblatt_epoch(x, y, lr, order))
            if mistakes[-1] == 0:
                break
        return mistakes


def surrogate_loss(scores: Tensor, targets: Tensor, kind: str = "logistic") -> Tensor:
    """Mean surrogate of the 0-1 loss for scores s (N,) and 0/1 targets (N,);
    ``kind`` is "logistic", "hinge" or "perceptron" (formulas in the module docstring)."""
    if kind not in _SURROGATES:
        raise ValueError(f"surrogate_loss: kind must be one of {_SURROGATES}, got {kind!r}")
    if tuple(scores.shape) != tuple(targets.shape):
        raise ValueError(f"surrogate_loss: scores {tuple(scores.shape)} and targets "
                         f"{tuple(targets.shape)} must have the same shape")
    y = targets.to(scores.dtype)
    if kind == "logistic":
        return F.binary_cross_entropy_with_logits(scores, y)
    t = y * 2.0 - 1.0  # labels as -1/+1
    margin = 1.0 if kind == "hinge" else 0.0
    return (margin - t * scores).relu().mean()  # max(0, margin - t s)


def _check_binary_problem(op: str, x: Tensor, y: Tensor, in_features: int) -> None:
    if x.ndim != 2 or x.shape[1] != in_features:
        raise ValueError(f"{op}: x must be (N, {in_features}), got {tuple(x.shape)}")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"{op}: y must be (N,) = ({x.shape[0]},), got {tuple(y.shape)}")
    if not bool(((y == 0) | (y == 1)).all()):
        raise ValueError(f"{op}: labels must be 0 or 1")
