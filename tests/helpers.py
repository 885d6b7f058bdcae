"""The one parity helper every op test goes through, and a few small tools.

``check_op`` runs an op in nnforge, compares its outputs with a numpy and/or a
PyTorch reference, backpropagates a random upstream gradient and compares every
input gradient with PyTorch's, and runs ``nf.autograd.gradcheck`` in float64.
Most op tests are then one line::

    check_op(lambda a, b: a * b, torch.mul, np.multiply, shapes=[(3, 1), (4,)])

The PyTorch part is skipped (not failed) where torch is not installed; pass
``np_fn`` as well so that the forward is still checked there.
"""
from __future__ import annotations

import numpy as np
import pytest

import nnforge as nf

try:
    import torch
except ImportError:  # the torch half of every check is skipped
    torch = None

HAS_TORCH = torch is not None
requires_torch = pytest.mark.skipif(not HAS_TORCH, reason="PyTorch is not installed")

# Forward and gradient tolerances per dtype name.
TOLERANCES = {
    "float16": (1e-2, 1e-2),
    "float32": (1e-5, 1e-4),
    "float64": (1e-10, 1e-8),
}

GRADCHECK_MAX_ELEMENTS = 400


def torch_or_skip():
    """The torch module, or skips the calling test where it is not installed."""
    if torch is None:
        pytest.skip("PyTorch is not installed")
    return torch


# ---------------------------------------------------------------- conversions
def to_numpy(x) -> np.ndarray:
    """An nnforge tensor, torch tensor, numpy array or scalar as a numpy array."""
    if isinstance(x, nf.Tensor):
        return np.array(x.detach().numpy())
    if torch is not None and isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def dtype_name(x) -> str:
    """'float32', 'int64', 'bool', ... for nnforge/torch/numpy tensors and dtypes."""
    if isinstance(x, nf.Tensor):
        return x.dtype.name
    if isinstance(x, nf.dtype):
        return x.name
    if torch is not None and isinstance(x, (torch.Tensor, torch.dtype)):
        d = x.dtype if isinstance(x, torch.Tensor) else x
        return str(d).replace("torch.", "")
    return np.asarray(x).dtype.name


def assert_close(actual, expected, atol=1e-5, rtol=1e-4, msg="", check_dtype=False):
    """Values (and shapes; dtypes when asked) of two array-likes agree."""
    a, e = to_numpy(actual), to_numpy(expected)
    where = f" ({msg})" if msg else ""
    assert a.shape == e.shape, f"shape {a.shape} != expected {e.shape}{where}"
    if check_dtype:
        assert dtype_name(actual) == dtype_name(expected), \
            f"dtype {dtype_name(actual)} != expected {dtype_name(expected)}{where}"
    if a.dtype.kind == "b" or e.dtype.kind == "b":
        np.testing.assert_array_equal(a, e, err_msg=msg)
    else:
        np.testing.assert_allclose(a.astype(np.float64), e.astype(np.float64),
                                   atol=atol, rtol=rtol, equal_nan=True, err_msg=msg)


# ---------------------------------------------------------------- inputs
def random_array(shape, dtype="float32", *, rng=None, low=-2.0, high=2.0,
                 positive=False, nonneg=False) -> np.ndarray:
    """A random numpy array: uniform on [low, high) for floats, integers on
    [low, high) for int dtypes, coin flips for bool. ``positive`` draws from
    [0.5, 2) (for log, sqrt, division), ``nonneg`` from [0, high)."""
    rng = np.random.default_rng(0) if rng is None else rng
    npd = np.dtype(nf.dtypes.as_dtype(dtype).np)
    shape = tuple(shape)
    if npd.kind == "b":
        return rng.random(shape) < 0.5
    if npd.kind in "iu":
        return rng.integers(int(low), int(high), size=shape).astype(npd)
    if positive:
        low, high = 0.5, 2.0
    elif nonneg:
        low = 0.0
    return rng.uniform(low, high, size=shape).astype(npd)


def noncontiguous(array: np.ndarray) -> np.ndarray:
    """The same values in a non-contiguous numpy view (every other element of a
    buffer twice as long in the last dim). 0-d and empty arrays come back as they are."""
    a = np.asarray(array)
    if a.ndim == 0 or a.size == 0:
        return a
    buf = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
    view = buf[..., ::2]
    view[...] = a
    return view


def transposed(array: np.ndarray) -> np.ndarray:
    """The same values held in a transposed (Fortran-order) numpy view."""
    a = np.asarray(array)
    return np.ascontiguousarray(a.T).T


def nf_input(array: np.ndarray, requires_grad=False, layout="contiguous") -> nf.Tensor:
    """An nnforge tensor over ``array`` with the given memory layout:
    'contiguous' (a copy), 'strided' (see ``noncontiguous``) or 'transposed'."""
    a = np.array(array)
    if layout == "strided":
        a = noncontiguous(a)
    elif layout == "transposed":
        a = transposed(a)
    elif layout != "contiguous":
        raise ValueError(f"nf_input: unknown layout {layout!r}")
    t = nf.from_numpy(a)
    if requires_grad:
        t.requires_grad_()
    return t


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _outputs(result):
    """The tensors among an op's results (a tensor or a tuple of them)."""
    return [o for o in _as_tuple(result) if o is not None]


# ---------------------------------------------------------------- the helper
def check_op(nf_fn, torch_fn=None, np_fn=None, *, shapes=None, inputs=None, dtype="float32",
             requires_grad=None, grad=True, gradcheck=True, noncontig=True, check_dtype=True,
             atol=None, rtol=None, grad_atol=None, grad_rtol=None, low=-2.0, high=2.0,
             positive=False, nonneg=False, seed=0):
    """Runs ``nf_fn`` and checks it against its references; returns nnforge's outputs.

    Inputs: ``shapes`` (random arrays of ``dtype``, see ``random_array`` for
    ``low``/``high``/``positive``/``nonneg``) or ``inputs`` (numpy arrays used
    as given). ``nf_fn``, ``torch_fn`` and ``np_fn`` each take one argument per
    input (lambdas capture anything else) and return one result or a tuple.

    Checks, each where it applies:
      * forward values, shapes and dtypes vs ``np_fn`` and ``torch_fn``;
      * the same forward and gradients with non-contiguous input views;
      * ``grad``: a random upstream gradient backpropagated through the
        floating outputs; every input gradient vs PyTorch's (an input torch
        gives no gradient must get None or zeros);
      * ``gradcheck``: ``nf.autograd.gradcheck`` on float64 copies.
    ``requires_grad`` (one bool per input) defaults to "every float input".
    """
    rng = np.random.default_rng(seed)
    if (shapes is None) == (inputs is None):
        raise ValueError("check_op: pass exactly one of shapes= and inputs=")
    if inputs is None:
        arrays = [random_array(s, dtype, rng=rng, low=low, high=high, positive=positive,
                               nonneg=nonneg) for s in shapes]
    else:
        arrays = [np.asarray(a) for a in inputs]
    if requires_grad is None:
        requires_grad = [grad and a.dtype.kind == "f" for a in arrays]
    requires_grad = list(requires_grad)
    if len(requires_grad) != len(arrays):
        raise ValueError("check_op: requires_grad needs one entry per input")

    ref_dtype = next((a.dtype.name for a in arrays if a.dtype.kind == "f"), "float32")
    d_atol, d_rtol = TOLERANCES.get(ref_dtype, (1e-5, 1e-4))
    atol = d_atol if atol is None else atol
    rtol = d_rtol if rtol is None else rtol
    grad_atol = 10 * atol if grad_atol is None else grad_atol
    grad_rtol = 10 * rtol if grad_rtol is None else grad_rtol

    # ---- nnforge forward (contiguous inputs)
    nf_in = [nf_input(a, rg) for a, rg in zip(arrays, requires_grad)]
    nf_out = _outputs(nf_fn(*nf_in))

    # ---- numpy reference
    if np_fn is not None:
        np_out = _as_tuple(np_fn(*[a.copy() for a in arrays]))
        assert len(np_out) == len(nf_out), f"{len(nf_out)} outputs, numpy gives {len(np_out)}"
        for i, (o, r) in enumerate(zip(nf_out, np_out)):
            assert_close(o, r, atol, rtol, msg=f"output {i} vs numpy")

    # ---- PyTorch reference, forward
    th_in = th_out = None
    if torch_fn is not None and torch is not None:
        th_in = [torch.from_numpy(a.copy()).requires_grad_(rg) for a, rg in zip(arrays, requires_grad)]
        th_out = _outputs(torch_fn(*th_in))
        assert len(th_out) == len(nf_out), f"{len(nf_out)} outputs, torch gives {len(th_out)}"
        for i, (o, r) in enumerate(zip(nf_out, th_out)):
            assert_close(o, r, atol, rtol, msg=f"output {i} vs torch", check_dtype=check_dtype)

    # ---- backward with a random upstream gradient
    diff = [i for i, o in enumerate(nf_out) if o.requires_grad]
    seeds = [random_array(tuple(nf_out[i].shape), nf_out[i].dtype, rng=rng) for i in diff]
    nf_grads = None
    if grad and diff:
        nf.autograd.backward([nf_out[i] for i in diff], [nf.tensor(s) for s in seeds])
        nf_grads = [t.grad for t in nf_in]
        for i, (t, rg) in enumerate(zip(nf_in, requires_grad)):
            if rg and t.grad is not None:
                assert tuple(t.grad.shape) == tuple(t.shape), \
                    f"grad of input {i} has shape {tuple(t.grad.shape)}, input {tuple(t.shape)}"
                assert t.grad.dtype == t.dtype, f"grad of input {i} is {t.grad.dtype}, input {t.dtype}"
        if th_out is not None:
            th_diff = [th_out[i] for i in diff]
            assert all(o.requires_grad for o in th_diff), "torch output does not require grad"
            torch.autograd.backward(th_diff, [torch.from_numpy(s.copy()) for s in seeds])
            for i, (t, r, rg) in enumerate(zip(nf_in, th_in, requires_grad)):
                if not rg:
                    continue
                if r.grad is None:
                    assert t.grad is None or not to_numpy(t.grad).any(), \
                        f"input {i}: torch gives no gradient, nnforge gives a nonzero one"
                    continue
                assert t.grad is not None, f"input {i}: nnforge gives no gradient, torch does"
                assert_close(t.grad, r.grad, grad_atol, grad_rtol, msg=f"grad of input {i} vs torch")

    # ---- the same through non-contiguous views
    if noncontig and any(a.ndim > 0 and a.size > 1 for a in arrays):
        for layout in ("strided", "transposed"):
            nc_in = [nf_input(a, rg, layout) for a, rg in zip(arrays, requires_grad)]
            nc_out = _outputs(nf_fn(*nc_in))
            for i, (o, r) in enumerate(zip(nc_out, nf_out)):
                assert_close(o, r, atol, rtol, msg=f"output {i}, {layout} inputs vs contiguous",
                             check_dtype=True)
            if nf_grads is not None:
                nf.autograd.backward([nc_out[i] for i in diff], [nf.tensor(s) for s in seeds])
                for i, (t, g) in enumerate(zip(nc_in, nf_grads)):
                    if g is not None:
                        assert_close(t.grad, g, grad_atol, grad_rtol,
                                     msg=f"grad of input {i}, {layout} inputs vs contiguous")

    # ---- finite differences in float64
    if grad and gradcheck and diff:
        run_gradcheck(nf_fn, arrays, requires_grad)
    return nf_out[0] if len(nf_out) == 1 else tuple(nf_out)


def run_gradcheck(nf_fn, arrays, requires_grad=None, **kwargs):
    """``nf.autograd.gradcheck`` of ``nf_fn`` on float64 copies of ``arrays``."""
    arrays = [np.asarray(a) for a in arrays]
    if requires_grad is None:
        requires_grad = [a.dtype.kind == "f" for a in arrays]
    total = sum(a.size for a, rg in zip(arrays, requires_grad) if rg)
    assert total <= GRADCHECK_MAX_ELEMENTS, (
        f"check_op: {total} input elements are too many for gradcheck; use smaller "
        f"shapes (<= {GRADCHECK_MAX_ELEMENTS} elements) or gradcheck=False")
    ins = []
    for a, rg in zip(arrays, requires_grad):
        if a.dtype.kind == "f":
            a = a.astype(np.float64)
        t = nf.from_numpy(np.ascontiguousarray(a).copy())
        ins.append(t.requires_grad_() if rg else t)
    assert nf.autograd.gradcheck(nf_fn, tuple(ins), **kwargs)


def run_isa_script(script: str, isa: str) -> None:
    """Runs ``script`` in a fresh Python with NNFORGE_ISA=isa (skipping when this CPU
    lacks the ISA); it must exit cleanly and print "ok"."""
    import os
    import subprocess
    import sys
    f = nf._C.cpu_features()
    needs = {"avx2": ("avx2", "fma"),
             "avx512": ("avx512f", "avx512bw", "avx512dq", "avx512vl", "fma")}.get(isa, ())
    if not all(f[k] for k in needs):
        pytest.skip(f"this CPU has no {isa}")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=dict(os.environ, NNFORGE_ISA=isa))
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
