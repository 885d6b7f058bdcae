"""The fused optimizer kernels (nnforge._C.cpu.*_update, csrc/cpu/optim*.cpp)
against plain numpy references of their equations, over sizes from empty to
above the OpenMP threshold, float32 and float64; thread-count independence;
argument checks; and the staging path of the backend wrappers (strided views,
other dtypes)."""
import numpy as np
import pytest

import nnforge as nf
from nnforge import _C
from nnforge.backend import cpu as backend

SIZES = [0, 1, 7, 33, 40_001]  # 40_001: odd, above the 32K-element threading threshold
TOL = {"float32": dict(rtol=2e-5, atol=2e-6), "float64": dict(rtol=1e-12, atol=1e-13)}


# ---------------------------------------------------------------- numpy references
# The equations as the kernels' comments give them, computed in float64.
def ref_sgd(p, g, momentum_buffer, *, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
            nesterov=False, maximize=False, first_step=False):
    g = -g if maximize else g
    if weight_decay:
        g = g + weight_decay * p
    buf = momentum_buffer
    if momentum:
        buf = g.copy() if first_step else momentum * buf + (1 - dampening) * g
        g = g + momentum * buf if nesterov else buf
    return dict(param=p - lr * g, momentum_buffer=buf)


def ref_adam(p, g, exp_avg, exp_avg_sq, max_exp_avg_sq, *, step, lr, beta1=0.9, beta2=0.999,
             eps=1e-8, weight_decay=0.0, amsgrad=False, maximize=False,
             decoupled_weight_decay=False):
    g = -g if maximize else g
    if weight_decay and decoupled_weight_decay:
        p = p * (1 - lr * weight_decay)
    elif weight_decay:
        g = g + weight_decay * p
    m = beta1 * exp_avg + (1 - beta1) * g
    v = beta2 * exp_avg_sq + (1 - beta2) * g * g
    vmax = np.maximum(max_exp_avg_sq, v) if amsgrad else max_exp_avg_sq
    v_used = vmax if amsgrad else v
    denom = np.sqrt(v_used) / np.sqrt(1 - beta2 ** step) + eps
    p = p - lr / (1 - beta1 ** step) * m / denom
    return dict(param=p, exp_avg=m, exp_avg_sq=v, max_exp_avg_sq=vmax)


def ref_rmsprop(p, g, square_avg, grad_avg, momentum_buffer, *, lr, alpha=0.99, eps=1e-8,
                weight_decay=0.0, momentum=0.0, centered=False, maximize=False):
    g = -g if maximize else g
    if weight_decay:
        g = g + weight_decay * p
    s = alpha * square_avg + (1 - alpha) * g * g
    ga = grad_avg
    if centered:
        ga = alpha * grad_avg + (1 - alpha) * g
        avg = np.sqrt(s - ga * ga) + eps
    else:
        avg = np.sqrt(s) + eps
    buf = momentum_buffer
    if momentum > 0:
        buf = momentum * buf + g / avg
        p = p - lr * buf
    else:
        p = p - lr * g / avg
    return dict(param=p, square_avg=s, grad_avg=ga, momentum_buffer=buf)


def ref_adagrad(p, g, sum, *, step, lr, lr_decay=0.0, weight_decay=0.0, eps=1e-10,
                maximize=False):
    g = -g if maximize else g
    if weight_decay:
        g = g + weight_decay * p
    clr = lr / (1 + (step - 1) * lr_decay)
    s = sum + g * g
    return dict(param=p - clr * g / (np.sqrt(s) + eps), sum=s)


def ref_adadelta(p, g, square_avg, acc_delta, *, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0,
                 maximize=False):
    g = -g if maximize else g
    if weight_decay:
        g = g + weight_decay * p
    s = rho * square_avg + (1 - rho) * g * g
    delta = np.sqrt(acc_delta + eps) / np.sqrt(s + eps) * g
    a = rho * acc_delta + (1 - rho) * delta * delta
    return dict(param=p - lr * delta, square_avg=s, acc_delta=a)


# kernel name -> (reference, state buffer names in argument order)
KERNELS = {
    "sgd_update": (ref_sgd, ["momentum_buffer"]),
    "adam_update": (ref_adam, ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"]),
    "rmsprop_update": (ref_rmsprop, ["square_avg", "grad_avg", "momentum_buffer"]),
    "adagrad_update": (ref_adagrad, ["sum"]),
    "adadelta_update": (ref_adadelta, ["square_avg", "acc_delta"]),
}

CASES = [
    ("sgd_update", dict(lr=0.1)),
    ("sgd_update", dict(lr=0.1, momentum=0.9, first_step=True)),
    ("sgd_update", dict(lr=0.05, momentum=0.9, dampening=0.2, weight_decay=0.1)),
    ("sgd_update", dict(lr=0.05, momentum=0.8, nesterov=True, maximize=True)),
    ("adam_update", dict(step=1, lr=0.01)),
    ("adam_update", dict(step=7, lr=0.01, beta1=0.3, beta2=0.9, eps=1e-6, weight_decay=0.1)),
    ("adam_update", dict(step=3, lr=0.02, weight_decay=0.1, decoupled_weight_decay=True,
                         amsgrad=True)),
    ("adam_update", dict(step=50, lr=0.01, amsgrad=True, maximize=True)),
    ("rmsprop_update", dict(lr=0.01)),
    ("rmsprop_update", dict(lr=0.01, alpha=0.9, momentum=0.9, weight_decay=0.1)),
    ("rmsprop_update", dict(lr=0.01, centered=True, maximize=True)),
    ("rmsprop_update", dict(lr=0.01, alpha=0.3, centered=True, momentum=0.5)),
    ("adagrad_update", dict(step=1, lr=0.1)),
    ("adagrad_update", dict(step=9, lr=0.1, lr_decay=0.05, weight_decay=0.1, maximize=True)),
    ("adadelta_update", dict(lr=1.0)),
    ("adadelta_update", dict(lr=0.5, rho=0.5, eps=1e-4, weight_decay=0.1, maximize=True)),
]


def _case_id(case):
    return case[0] + "(" + ",".join(f"{k}={v}" for k, v in case[1].items()) + ")"


def _state(name, n, dtype, rng, options):
    """Parameter, gradient and state buffers with values the equations accept
    (second moments positive, a centered square_avg above grad_avg^2); buffers
    the options do not use are None."""
    p = rng.uniform(-2, 2, n)
    g = rng.uniform(-1, 1, n)
    states = {}
    for s in KERNELS[name][1]:
        if s in ("exp_avg", "momentum_buffer", "grad_avg"):
            states[s] = rng.uniform(-0.1, 0.1, n)
        else:
            states[s] = rng.uniform(0.1, 1.0, n)
    if not options.get("amsgrad"):
        states.pop("max_exp_avg_sq", None)
    if not options.get("centered"):
        states.pop("grad_avg", None)
    if not options.get("momentum"):
        states.pop("momentum_buffer", None)
    cast = {k: v.astype(dtype) for k, v in states.items()}
    return p.astype(dtype), g.astype(dtype), cast


def _call(name, p, g, states, options):
    """Runs the kernel in place on copies; returns {name: array} after the step."""
    p = p.copy()
    states = {k: v.copy() for k, v in states.items()}
    args = [states.get(s) for s in KERNELS[name][1]]
    getattr(_C.cpu, name)(p, g, *args, **options)
    return dict(param=p, **states)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_kernel_matches_numpy_reference(case, n, dtype, rng):
    name, options = case
    ref_fn, names = KERNELS[name]
    p, g, states = _state(name, n, dtype, rng, options)
    out = _call(name, p, g, states, options)
    f64 = {k: v.astype(np.float64) for k, v in states.items()}
    expected = ref_fn(p.astype(np.float64), g.astype(np.float64),
                      *[f64.get(s) for s in names], **options)
    for key, value in out.items():
        assert value.dtype == dtype and value.shape == (n,)
        np.testing.assert_allclose(value, expected[key], err_msg=f"{name}: {key}", **TOL[dtype])


@pytest.mark.parametrize("name", list(KERNELS))
def test_several_steps_match_numpy_reference(name, rng):
    """Five steps in float64: the first-step buffer copy (SGD) and the step count
    in the bias corrections (Adam, Adagrad) carry over correctly."""
    ref_fn, names = KERNELS[name]
    options = {"sgd_update": dict(lr=0.1, momentum=0.9),
               "adam_update": dict(lr=0.01, amsgrad=True),
               "rmsprop_update": dict(lr=0.01, momentum=0.5, centered=True),
               "adagrad_update": dict(lr=0.1, lr_decay=0.1),
               "adadelta_update": dict(lr=1.0)}[name]
    p, _, states = _state(name, 101, "float64", rng, options)
    states = {k: np.zeros_like(v) for k, v in states.items()}  # fresh state
    ours, ref = dict(param=p, **states), dict(param=p, **states)
    for step in range(1, 6):
        g = rng.uniform(-1, 1, p.size)
        extra = {"sgd_update": dict(first_step=step == 1)}.get(name, {})
        if name in ("adam_update", "adagrad_update"):
            extra = dict(step=step)
        ours = _call(name, ours["param"], g, {k: ours[k] for k in states}, {**options, **extra})
        ref = ref_fn(ref["param"], g, *[ref.get(s) for s in names], **options, **extra)
        for key, value in ours.items():
            np.testing.assert_allclose(value, ref[key], rtol=1e-12, atol=1e-13,
                                       err_msg=f"step {step}: {key}")


@pytest.mark.parametrize("case", CASES, ids=_case_id)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_results_do_not_depend_on_the_thread_count(case, dtype, rng):
    name, options = case
    p, g, states = _state(name, 100_003, dtype, rng, options)
    before = nf.get_num_threads()
    try:
        nf.set_num_threads(1)
        one = _call(name, p, g, states, options)
        nf.set_num_threads(2)
        two = _call(name, p, g, states, options)
    finally:
        nf.set_num_threads(before)
    for key in one:
        np.testing.assert_array_equal(one[key], two[key], err_msg=key)


def test_nan_propagates_through_amsgrad_maximum():
    p, g = np.zeros(2), np.zeros(2)
    m, v = np.zeros(2), np.array([np.nan, 1.0])
    vmax = np.array([1.0, np.nan])
    _C.cpu.adam_update(p, g, m, v, vmax, step=1, lr=0.1, amsgrad=True)
    assert np.isnan(vmax).all() and np.isnan(p).all()


# ---------------------------------------------------------------- argument checks
def _adam_args(n=4, dtype=np.float32):
    return [np.zeros(n, dtype) for _ in range(4)]


def test_size_mismatch_names_kernel_and_sizes():
    p, g, m, v = _adam_args()
    with pytest.raises(ValueError, match=r"adam_update: exp_avg_sq has 3 elements but param has 4"):
        _C.cpu.adam_update(p, g, m, v[:3].copy(), None, step=1, lr=0.1)
    with pytest.raises(ValueError, match=r"sgd_update: grad has 5 elements but param has 4"):
        _C.cpu.sgd_update(p, np.zeros(5, np.float32), None, lr=0.1)


def test_dtype_mismatch_names_both_dtypes():
    p, g, m, v = _adam_args()
    with pytest.raises(ValueError, match="rmsprop_update: grad has dtype float64 but param has "
                                         "dtype float32"):
        _C.cpu.rmsprop_update(p, g.astype(np.float64), v, None, None, lr=0.1)
    with pytest.raises(ValueError, match="adagrad_update: param has dtype int64; expected float32 "
                                         "or float64"):
        _C.cpu.adagrad_update(np.zeros(4, np.int64), np.zeros(4, np.int64),
                              np.zeros(4, np.int64), step=1, lr=0.1)


def test_non_contiguous_read_only_and_overlapping_arrays():
    p, g, m, v = _adam_args(8)
    with pytest.raises(ValueError, match="adadelta_update: acc_delta must be C-contiguous"):
        _C.cpu.adadelta_update(p[:4], g[:4], m[:4], v[::2])
    ro = p.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="sgd_update: param must be writeable"):
        _C.cpu.sgd_update(ro, g, None, lr=0.1)
    g.flags.writeable = False  # a read-only gradient is fine
    _C.cpu.sgd_update(p, g, None, lr=0.1)
    with pytest.raises(ValueError, match="adam_update: exp_avg_sq overlaps exp_avg"):
        _C.cpu.adam_update(p, g, m, m, None, step=1, lr=0.1)
    with pytest.raises(ValueError, match="sgd_update: grad overlaps param"):
        _C.cpu.sgd_update(p, p, None, lr=0.1)


def test_missing_buffers_bad_step_and_non_arrays():
    p, g, m, v = _adam_args()
    with pytest.raises(ValueError, match="adam_update: max_exp_avg_sq is required"):
        _C.cpu.adam_update(p, g, m, v, None, step=1, lr=0.1, amsgrad=True)
    with pytest.raises(ValueError, match="sgd_update: momentum_buffer is required"):
        _C.cpu.sgd_update(p, g, None, lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="rmsprop_update: grad_avg is required"):
        _C.cpu.rmsprop_update(p, g, v, None, None, lr=0.1, centered=True)
    with pytest.raises(ValueError, match="adam_update: step must be >= 1"):
        _C.cpu.adam_update(p, g, m, v, None, step=0, lr=0.1)
    with pytest.raises(ValueError, match="adagrad_update: step must be >= 1"):
        _C.cpu.adagrad_update(p, g, v, step=0, lr=0.1)
    with pytest.raises(TypeError, match="sgd_update: param must be a numpy array, got list"):
        _C.cpu.sgd_update([0.0, 1.0], g, None, lr=0.1)


def test_zero_size_and_zero_dim():
    empty = [np.zeros(0, np.float64) for _ in range(4)]
    _C.cpu.adadelta_update(*empty)
    p, g, state_sum = np.array(1.0), np.array(1.0), np.array(0.0)
    _C.cpu.adagrad_update(p, g, state_sum, step=1, lr=0.5)
    assert p == pytest.approx(0.5) and state_sum == 1.0


# ---------------------------------------------------------------- backend wrappers
def test_wrapper_stages_strided_and_mixed_dtype_arrays(rng):
    """Strided views and state in another dtype are copied, updated by the kernel
    and written back; the result equals the all-contiguous call exactly."""
    n = 12
    p, g, m, v = (rng.uniform(0.1, 1, n).astype(np.float32) for _ in range(4))
    ref = [a.copy() for a in (p, m, v)]
    backend.adam_update_(ref[0], g, ref[1], ref[2], None, step=2, lr=0.1, beta1=0.9, beta2=0.999,
                         eps=1e-8, weight_decay=0.0, amsgrad=False, maximize=False,
                         decoupled_weight_decay=False)
    buf = np.zeros(2 * n, np.float32)
    p_view = buf[::2]
    p_view[...] = p
    g_view = np.ascontiguousarray(np.stack([g, g]).T)[:, 0]  # strided read-only use
    m64 = m.astype(np.float64)  # state in another dtype: computed in float32, cast back
    v_t = np.ascontiguousarray(v.reshape(3, 4).T).T  # Fortran order
    backend.adam_update_(p_view, g_view, m64, v_t, None, step=2, lr=0.1, beta1=0.9, beta2=0.999,
                         eps=1e-8, weight_decay=0.0, amsgrad=False, maximize=False,
                         decoupled_weight_decay=False)
    np.testing.assert_array_equal(p_view, ref[0])
    np.testing.assert_array_equal(buf[1::2], 0)  # the gaps are untouched
    np.testing.assert_array_equal(m64, ref[1].astype(np.float64))
    np.testing.assert_array_equal(v_t.reshape(-1), ref[2])


def test_wrapper_float16_and_integer_parameters():
    p = np.array([1.0, -1.0], np.float16)
    buf = np.zeros(2, np.float16)
    backend.sgd_update_(p, np.array([1.0, 1.0], np.float16), buf, lr=0.5, momentum=0.9,
                        dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False,
                        first_step=True)
    assert p.dtype == np.float16 and p.tolist() == [0.5, -1.5]
    assert buf.tolist() == [1.0, 1.0]
    with pytest.raises(TypeError, match="sgd_update_: param has dtype int64"):
        backend.sgd_update_(np.zeros(2, np.int64), np.zeros(2, np.int64), None, lr=0.1,
                            momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
                            maximize=False, first_step=False)


def test_wrapper_passes_kernel_errors_through():
    p = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match="adadelta_update: square_avg has 2 elements"):
        backend.adadelta_update_(p, p.copy(), np.zeros(2, np.float32), p.copy(), lr=1.0, rho=0.9,
                                 eps=1e-6, weight_decay=0.0, maximize=False)
