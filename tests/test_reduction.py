"""Reductions, cumulative sums and the softmax family against numpy and PyTorch:
full and per-dim, keepdim, size-1/odd/empty dims, non-contiguous inputs, ties,
-inf rows and large inputs; every gradient, and gradcheck in float64."""
import warnings

import numpy as np
import pytest

import nnforge as nf
from helpers import assert_close, check_op, requires_torch, torch

pytestmark = pytest.mark.filterwarnings("error")

# (shape, dim): dim None reduces everything; tuples reduce several dims.
CASES = [
    ((), None), ((), 0), ((1,), 0), ((7,), None), ((7,), 0), ((3, 4), None), ((3, 4), 1),
    ((3, 4), -2), ((1, 4), 0), ((2, 3, 5), 1), ((2, 3, 5), (0, 2)), ((2, 3, 5), (-1, 0, 1)),
    ((0, 3), 0), ((0, 3), 1), ((0, 3), None), ((2, 0, 3), (0, 1)), ((2, 0, 3), 2),
]
# Reductions with no identity (max, amax, argmax...) need a non-empty reduced dim.
NONEMPTY = [(s, d) for s, d in CASES
            if not any(s[k] == 0 for k in (range(len(s)) if d is None or not s else
                                          (d if isinstance(d, tuple) else (d,))))]
SINGLE_DIM = [(s, d) for s, d in CASES if isinstance(d, int)]


def ids(case):
    return f"{case[0]}-dim{case[1]}"


def layouts_ok(shapes):
    """check_op's 'transposed' layout turns a 0-d input into shape (1,) (see test_pointwise)."""
    return all(len(s) > 0 for s in shapes)


def quiet(fn):
    """A numpy reference run without its warnings (mean of an empty slice, ddof <= 0...)."""
    def run(*args):
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            return fn(*args)
    return run


def nf_call(name, dim, **kw):
    return lambda a: getattr(a, name)(**kw) if dim is None else getattr(a, name)(dim, **kw)


def th_call(name, dim, **kw):
    return lambda a: getattr(a, name)(**kw) if dim is None else getattr(a, name)(dim, **kw)


def np_axis(dim, shape):
    return None if dim is None or shape == () else dim


# ---------------------------------------------------------------- sum / mean / prod
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("case", CASES, ids=ids)
@pytest.mark.parametrize("name", ["sum", "mean"])
def test_sum_mean(name, case, keepdim):
    shape, dim = case
    kw = {"keepdim": keepdim} if dim is not None else {}
    npf = {"sum": np.sum, "mean": np.mean}[name]
    check_op(nf_call(name, dim, **kw), th_call(name, dim, **kw),
             quiet(lambda a: npf(a, axis=np_axis(dim, shape), keepdims=keepdim if dim is not None else False)),
             shapes=[shape], noncontig=layouts_ok([shape]))


@requires_torch
@pytest.mark.parametrize("dtype", ["bool", "int32", "int64"])
def test_sum_of_integers_is_int64_like_torch(dtype):
    a = (np.arange(12).reshape(3, 4) % 3).astype(dtype)
    for fn in (lambda x: x.sum(), lambda x: x.sum(0), lambda x: x.sum(-1, keepdim=True)):
        assert_close(fn(nf.from_numpy(a)), fn(torch.from_numpy(a)), check_dtype=True)


def test_sum_dtype_argument():
    x = nf.tensor([[1, 2], [3, 4]])
    out = x.sum(0, dtype=nf.float64)
    assert out.dtype == nf.float64 and out.tolist() == [4.0, 6.0]


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("case", [c for c in CASES if not isinstance(c[1], tuple)], ids=ids)
def test_prod(case, keepdim):
    shape, dim = case
    kw = {"keepdim": keepdim} if dim is not None else {}
    check_op(nf_call("prod", dim, **kw), th_call("prod", dim, **kw),
             lambda a: np.prod(a, axis=np_axis(dim, shape), keepdims=keepdim if dim is not None else False),
             shapes=[shape], noncontig=layouts_ok([shape]))


@pytest.mark.parametrize("dim", [None, 0, 1, -1])
def test_prod_with_zeros(dim):
    # one zero, two zeros and none in a row: the gradient is the product of the others.
    x = np.array([[0.0, 2.0, 3.0, 1.5], [0.0, 0.0, 2.0, -1.0], [1.0, 2.0, 3.0, -0.5]])
    fn = nf_call("prod", dim)
    check_op(fn, th_call("prod", dim), lambda a: np.prod(a, axis=dim), inputs=[x], dtype="float64")


# ---------------------------------------------------------------- var / std
@pytest.mark.parametrize("correction", [0, 1, 2])
@pytest.mark.parametrize("case", [c for c in CASES if c[0] != ()], ids=ids)
@pytest.mark.parametrize("name", ["var", "std"])
def test_var_std(name, case, correction):
    shape, dim = case
    nfn = (lambda a: getattr(a, name)(dim, correction=correction)) if dim is not None else \
        (lambda a: getattr(a, name)(correction=correction))
    thn = (lambda a: getattr(a, name)(dim, correction=correction)) if dim is not None else \
        (lambda a: getattr(a, name)(correction=correction))
    npf = quiet(lambda a: getattr(np, name)(a, axis=dim, ddof=correction))
    n = int(np.prod([shape[d] for d in (range(len(shape)) if dim is None else
                                        (dim if isinstance(dim, tuple) else (dim,)))]))
    # N <= correction gives inf/nan (PyTorch also warns there): numpy reference only
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check_op(nfn, thn if n > correction else None, npf, shapes=[shape],
                 gradcheck=n > correction, grad=n > correction)


@pytest.mark.parametrize("name", ["var", "std"])
@pytest.mark.parametrize("unbiased", [True, False])
def test_var_std_unbiased_and_keepdim(name, unbiased):
    check_op(lambda a: getattr(a, name)(1, unbiased=unbiased, keepdim=True),
             lambda a: getattr(a, name)(1, unbiased=unbiased, keepdim=True),
             lambda a: getattr(np, name)(a, axis=1, ddof=int(unbiased), keepdims=True),
             shapes=[(3, 5)])


@requires_torch
def test_std_of_constant_input_has_zero_gradient_like_torch():
    # d sqrt(var)/dx = 0/0 at a constant input; PyTorch returns 0, not nan.
    x = np.array([[2.0, 2.0, 2.0], [1.0, 2.0, 4.0]])
    check_op(lambda a: a.std(1), lambda a: a.std(1), None, inputs=[x], gradcheck=False)
    check_op(lambda a: a.std(), lambda a: a.std(), None, inputs=[np.full((2, 2), 3.0)],
             gradcheck=False)


def test_var_mean():
    x = np.random.default_rng(0).standard_normal((4, 5))
    v, m = nf.var_mean(nf.from_numpy(x), 1)
    assert_close(v, np.var(x, axis=1, ddof=1), 1e-12, 1e-12)
    assert_close(m, np.mean(x, axis=1), 1e-12, 1e-12)


@requires_torch
def test_var_with_too_few_elements_is_nan_or_inf_silently():
    x = nf.tensor([[1.0]], requires_grad=True)
    assert np.isnan(x.var().item())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ref = torch.tensor([1.0, 2.0]).var(correction=3)
    assert nf.tensor([1.0, 2.0]).var(correction=3).item() == ref.item() == float("inf")


# ---------------------------------------------------------------- max / min / amax / amin
@pytest.mark.parametrize("case", NONEMPTY, ids=ids)
@pytest.mark.parametrize("name", ["amax", "amin"])
def test_amax_amin(name, case):
    shape, dim = case
    for keepdim in (False, True):
        kw = {"keepdim": keepdim}
        d = () if dim is None else dim
        check_op(lambda a: getattr(a, name)(d, **kw), lambda a: getattr(a, name)(d, **kw),
                 lambda a: getattr(np, name)(a, axis=np_axis(dim, shape), keepdims=keepdim),
                 shapes=[shape], noncontig=layouts_ok([shape]))


@pytest.mark.parametrize("name", ["max", "min"])
@pytest.mark.parametrize("shape", [(), (1,), (7,), (3, 4), (2, 3, 5)], ids=str)
def test_max_min_full(name, shape):
    check_op(lambda a: getattr(a, name)(), lambda a: getattr(a, name)(),
             getattr(np, "a" + name), shapes=[shape], noncontig=layouts_ok([shape]))


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("case", [c for c in SINGLE_DIM if c in NONEMPTY or c[0][c[1]] != 0], ids=ids)
@pytest.mark.parametrize("name", ["max", "min"])
def test_max_min_dim_values_and_indices(name, case, keepdim):
    shape, dim = case
    arg = getattr(np, "arg" + name)
    ext = getattr(np, "a" + name)

    def np_ref(a):
        if a.ndim == 0:
            return a, np.array(0)
        if a.size == 0:
            out = np.zeros(a.shape[:dim % a.ndim] + a.shape[dim % a.ndim + 1:], a.dtype)
            out = np.expand_dims(out, dim) if keepdim else out
            return out, out.astype(np.int64)
        return ext(a, axis=dim, keepdims=keepdim), arg(a, axis=dim, keepdims=keepdim)
    out = check_op(lambda a: getattr(a, name)(dim, keepdim=keepdim),
                   lambda a: tuple(getattr(a, name)(dim, keepdim=keepdim)), np_ref,
                   shapes=[shape], noncontig=layouts_ok([shape]))
    assert out[1].dtype == nf.int64


def test_max_dim_returns_named_tuple():
    x = nf.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]])
    r = x.max(1)
    assert r.values.tolist() == [5.0, 7.0] and r.indices.tolist() == [1, 0]
    v, i = nf.min(x, dim=0, keepdim=True)
    assert v.tolist() == [[1.0, 0.0, 2.0]] and i.tolist() == [[0, 1, 0]]
    r0 = nf.tensor(3.0).max(0)
    assert r0.values.item() == 3.0 and r0.indices.item() == 0


@requires_torch
@pytest.mark.parametrize("fn", [
    lambda a: a.max(), lambda a: a.min(), lambda a: a.amax(1), lambda a: a.amin(0),
    lambda a: a.amax((0, 1)), lambda a: a.amax(1, keepdim=True), lambda a: a.max(1)[0],
    lambda a: a.min(0)[0],
], ids=["max", "min", "amax1", "amin0", "amax01", "amax1keep", "maxdim", "mindim"])
def test_ties_split_like_torch(fn):
    # max()/amax share the gradient evenly among tied elements; max(dim) gives it to the index.
    x = np.array([[1.0, 3.0, 3.0], [0.0, 3.0, 1.0], [0.0, 0.0, -1.0]])
    check_op(fn, fn, None, inputs=[x], gradcheck=False)


# ---------------------------------------------------------------- argmax / argmin
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("case", [c for c in NONEMPTY if not isinstance(c[1], tuple)], ids=ids)
@pytest.mark.parametrize("name", ["argmax", "argmin"])
def test_argmax_argmin(name, case, keepdim):
    shape, dim = case
    x = np.random.default_rng(0).integers(0, 3, shape).astype(np.float32)  # many ties: first wins
    fn = (lambda a: getattr(a, name)(dim, keepdim=keepdim))

    def np_ref(a):
        if dim is None:
            r = getattr(np, name)(a)
            return np.reshape(r, (1,) * a.ndim) if keepdim else r
        return getattr(np, name)(a, axis=dim if a.ndim else None, keepdims=keepdim and a.ndim > 0)
    out = check_op(fn, fn, np_ref, inputs=[x], grad=False, noncontig=layouts_ok([shape]))
    assert out.dtype == nf.int64


def test_argmax_over_empty_tensor_along_nonempty_dim():
    out = nf.zeros(3, 0).argmax(0)
    assert tuple(out.shape) == (0,)
    assert tuple(nf.zeros(3, 0).amax(0).shape) == (0,)
    assert tuple(nf.zeros(3, 0).max(0).values.shape) == (0,)


# ---------------------------------------------------------------- logsumexp
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("case", [c for c in CASES if c[1] is not None], ids=ids)
def test_logsumexp(case, keepdim):
    shape, dim = case

    def np_ref(a):
        with np.errstate(divide="ignore"):
            return np.log(np.sum(np.exp(a), axis=np_axis(dim, shape), keepdims=keepdim))
    check_op(lambda a: a.logsumexp(dim, keepdim=keepdim), lambda a: a.logsumexp(dim, keepdim=keepdim),
             np_ref, shapes=[shape], noncontig=layouts_ok([shape]))


@requires_torch
def test_logsumexp_of_infinite_rows_matches_torch():
    x = np.array([[-np.inf, -np.inf, -np.inf], [1.0, 2.0, -np.inf], [np.inf, 1.0, 0.0],
                  [1000.0, 1000.0, -1000.0]])
    out = check_op(lambda a: a.logsumexp(1), lambda a: a.logsumexp(1), None, inputs=[x],
                   gradcheck=False, noncontig=False)
    assert out[0].item() == -np.inf and out[2].item() == np.inf


def test_logsumexp_is_stable_for_large_inputs():
    x = np.array([[1e4, 1e4], [-1e4, -1e4 + 1.0]])
    out = check_op(lambda a: a.logsumexp(1), lambda a: a.logsumexp(1), None, inputs=[x])
    assert_close(out, [1e4 + np.log(2), -1e4 + 1 + np.log1p(np.exp(-1))], 1e-8, 1e-12)


# ---------------------------------------------------------------- cumsum
@pytest.mark.parametrize("case", SINGLE_DIM, ids=ids)
def test_cumsum(case):
    shape, dim = case
    check_op(lambda a: a.cumsum(dim), lambda a: a.cumsum(dim),
             lambda a: np.cumsum(a, axis=dim) if a.ndim else a, shapes=[shape],
             noncontig=layouts_ok([shape]))


@requires_torch
def test_cumsum_integers_become_int64():
    a = np.array([[True, False], [True, True]])
    assert_close(nf.from_numpy(a).cumsum(0), torch.from_numpy(a).cumsum(0), check_dtype=True)


# ---------------------------------------------------------------- softmax / log_softmax
def np_softmax(a, dim):
    if a.ndim == 0:
        return np.ones_like(a)
    e = np.exp(a - np.max(a, axis=dim, keepdims=True, initial=-np.inf))
    return e / e.sum(axis=dim, keepdims=True)


def np_log_softmax(a, dim):
    if a.ndim == 0:
        return np.zeros_like(a)
    s = a - np.max(a, axis=dim, keepdims=True, initial=-np.inf)
    with np.errstate(divide="ignore"):
        return s - np.log(np.exp(s).sum(axis=dim, keepdims=True))


@pytest.mark.parametrize("case", SINGLE_DIM, ids=ids)
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax(name, case):
    shape, dim = case
    ref = {"softmax": np_softmax, "log_softmax": np_log_softmax}[name]
    check_op(lambda a: getattr(a, name)(dim), lambda a: getattr(a, name)(dim),
             lambda a: ref(a, dim), shapes=[shape], noncontig=layouts_ok([shape]))


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_functional_float64(name):
    fn = getattr(nf, name)
    ref = {"softmax": np_softmax, "log_softmax": np_log_softmax}[name]
    check_op(lambda a: fn(a, -1), lambda a: getattr(torch, name)(a, -1), lambda a: ref(a, -1),
             shapes=[(2, 3, 4)], dtype="float64")


@pytest.mark.parametrize("scale", [1e3, 1e4])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_is_stable_for_large_inputs(name, scale, dtype):
    x = (np.random.default_rng(0).standard_normal((3, 5)) * scale).astype(dtype)
    x[0] = scale  # a row of equal huge values
    ref = {"softmax": np_softmax, "log_softmax": np_log_softmax}[name]
    out = check_op(lambda a: getattr(a, name)(1), lambda a: getattr(a, name)(1),
                   lambda a: ref(a, 1), inputs=[x], gradcheck=False)
    assert np.isfinite(out.detach().numpy()).all()


@requires_torch
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_with_infinite_entries_matches_torch(name):
    x = np.array([[-np.inf, 0.0, 1.0], [-np.inf, -np.inf, -np.inf], [np.inf, 1.0, 0.0]])
    check_op(lambda a: getattr(a, name)(1), lambda a: getattr(a, name)(1), None, inputs=[x],
             gradcheck=False, noncontig=False)


# ---------------------------------------------------------------- all / any
@pytest.mark.parametrize("case", [c for c in CASES if c[1] is None or c[0] != ()], ids=ids)
@pytest.mark.parametrize("name", ["all", "any"])
def test_all_any(name, case):
    shape, dim = case
    x = np.random.default_rng(0).random(shape) < 0.7
    for keepdim in (False, True):
        fn = (lambda a: getattr(a, name)()) if dim is None else \
            (lambda a: getattr(a, name)(dim, keepdim=keepdim))
        check_op(fn, fn if not isinstance(dim, tuple) else None,
                 lambda a: getattr(np, name)(a, axis=dim, keepdims=keepdim and dim is not None),
                 inputs=[x], grad=False)


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "cumsum", "logsumexp", "sum", "amax"])
def test_reductions_of_0d_stay_in_the_graph(name):
    x = nf.tensor(2.0, dtype=nf.float64, requires_grad=True)
    y = getattr(x, name)(0)
    assert y.requires_grad and tuple(y.shape) == ()
    y.backward()
    if torch is not None:
        t = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
        getattr(t, name)(0).backward()
        assert_close(x.grad, t.grad)
