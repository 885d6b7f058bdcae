"""``Optimizer``: parameter groups, per-parameter state, state_dict round trips.

A subclass implements ``step()``; the arithmetic of each update is a backend
function (``backend.sgd_update_`` ...) working in place on the arrays, so a
fused kernel can replace it without touching the optimizer.
"""
from __future__ import annotations

from collections import defaultdict

from .. import dtypes
from ..autograd.grad_mode import enable_grad, no_grad
from ..ops.creation import tensor as _tensor
from ..tensor import Tensor


class _RequiredParameter:
    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


def new_step_counter() -> Tensor:
    """``state["step"]``: a 0-d float32 tensor on the CPU, whatever the parameter's
    device (as in PyTorch), counting the steps taken."""
    return _tensor(0.0, dtype=dtypes.float32)


def increment_step(state: dict) -> int:
    """Adds one to ``state["step"]`` and returns the new count (1 on the first step).

    The counter always lives on the CPU, so its numpy array is updated directly:
    an autograd-level ``add_`` would cost tens of microseconds per parameter."""
    step = state["step"]
    step.data[...] = step.data + 1
    step._bump_version()
    return int(step.data)


class Optimizer:
    """Base class: ``Optimizer(params, defaults)`` where params is an iterable of
    tensors or of dicts (parameter groups with their own options)."""

    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
        self.state: dict = defaultdict(dict)
        self.param_groups: list = []
        if isinstance(params, Tensor):
            raise TypeError(f"{type(self).__name__}: params must be an iterable of Tensors or "
                            "dicts, got a single Tensor")
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, param_group: dict) -> None:
        name = type(self).__name__
        group = dict(param_group)
        params = group["params"]
        group["params"] = [params] if isinstance(params, Tensor) else list(params)
        for p in group["params"]:
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: can only optimize Tensors, got {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"{name}: can't optimize a non-leaf Tensor")
        for key, default in self.defaults.items():
            if default is required and key not in group:
                raise ValueError(f"{name}: parameter group didn't specify a value of required "
                                 f"optimization parameter {key}")
            group.setdefault(key, default)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in group["params"]):
            raise ValueError(f"{name}: some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    with no_grad():
                        p.grad.zero_()

    @no_grad()
    def step(self, closure=None):
        """One update of every parameter that has a gradient; returns the loss
        of ``closure()`` (evaluated with grad enabled first) when one is given."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._update(p, group, self.state[p])
                    p._bump_version()
        return loss

    def _update(self, p, group: dict, state: dict) -> None:
        """Updates ``p`` in place from ``p.grad`` with the group's hyperparameters."""
        raise NotImplementedError

    # ---------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        """{"state": {index: {name: Tensor or number}}, "param_groups": [...]}, where
        parameters are named by their index in the order of the groups."""
        index = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            ids = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            packed["params"] = ids
            groups.append(packed)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state and self.state[p]:
                    state[index[id(p)]] = dict(self.state[p])
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        name = type(self).__name__
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: the state dict has {len(groups)} parameter "
                             f"groups, the optimizer has {len(self.param_groups)}")
        params = []
        for mine, theirs in zip(self.param_groups, groups):
            if len(mine["params"]) != len(theirs["params"]):
                raise ValueError(f"{name}.load_state_dict: a parameter group has "
                                 f"{len(theirs['params'])} parameters in the state dict but "
                                 f"{len(mine['params'])} in the optimizer")
            params.extend(zip(theirs["params"], mine["params"]))
        by_index = dict(params)
        self.state = defaultdict(dict)
        for idx, st in state_dict["state"].items():
            p = by_index[int(idx)]
            restored = {}
            for k, v in st.items():
                if k == "step":
                    # A fresh CPU float32 counter: incremented in place, it must
                    # not be shared with the optimizer the state came from.
                    v = _tensor(float(v), dtype=dtypes.float32)
                elif isinstance(v, Tensor):
                    v = v.to(p.device).to(p.dtype).clone().detach()
                restored[k] = v
            self.state[p] = restored
        for mine, theirs in zip(self.param_groups, groups):
            for k, v in theirs.items():
                if k != "params":
                    mine[k] = v

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(k for k in group if k != "params"):
                lines.append(f"    {k}: {group[k]}")
        lines.append(")")
        return "\n".join(lines)
