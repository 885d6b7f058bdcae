"""CUDA fused optimizer updates (csrc/cuda/optim.cu through backend/cuda_optim.py)
against their CPU twins (backend/cpu.py over csrc/cpu/optim*.cpp): every option
combination of the CPU kernel tests (weight_decay, momentum, dampening,
nesterov, maximize, amsgrad, decoupled weight decay, centered, lr_decay), sizes
from empty to above a few grid strides, float32/float64 (bit-identical to the
CPU's FMA build, which rounds like torch.optim), float16 (vs the CPU's float32
staging, bit-identical) and bfloat16 (vs the float32 kernel rounded), multi-step
trajectories, the staging of strided and mixed-dtype arrays, argument errors,
and Tensor-level nf.optim.SGD / Adam / AdamW / RMSprop / Adagrad / Adadelta on
device="cuda" vs cpu. Marked `cuda`; skipped without a GPU."""
import numpy as np
import pytest

import nnforge as nf
from cuda_support import cpu, dev, gpu, needs_gpu

SIZES = [0, 1, 7, 33, 40_001, 1_000_003]
TOL = {"float32": dict(rtol=2e-6, atol=1e-7), "float64": dict(rtol=1e-14, atol=1e-15)}
# The CPU kernels fuse multiply-adds exactly where the CUDA kernels do when they
# run their FMA build (AVX2/AVX-512 machines): then the results agree bit for bit.
FMA_CPU = nf._C.selected_isa() != "scalar"

# name -> state buffer names in the backend functions' argument order
STATES = {
    "sgd_update_": ["momentum_buffer"],
    "adam_update_": ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"],
    "rmsprop_update_": ["square_avg", "grad_avg", "momentum_buffer"],
    "adagrad_update_": ["sum"],
    "adadelta_update_": ["square_avg", "acc_delta"],
}
SGD = dict(momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False,
           first_step=False)
ADAM = dict(beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, amsgrad=False, maximize=False,
            decoupled_weight_decay=False)
RMSPROP = dict(alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
               maximize=False)
ADAGRAD = dict(lr_decay=0.0, weight_decay=0.0, eps=1e-10, maximize=False)
ADADELTA = dict(rho=0.9, eps=1e-6, weight_decay=0.0, maximize=False)
DEFAULTS = {"sgd_update_": SGD, "adam_update_": ADAM, "rmsprop_update_": RMSPROP,
            "adagrad_update_": ADAGRAD, "adadelta_update_": ADADELTA}

# The CPU kernel tests' cases (tests/test_optim_kernels.py), plus dampening with nesterov off
# and a non-first momentum step.
CASES = [
    ("sgd_update_", dict(lr=0.1)),
    ("sgd_update_", dict(lr=0.1, momentum=0.9, first_step=True)),
    ("sgd_update_", dict(lr=0.05, momentum=0.9, dampening=0.2, weight_decay=0.1)),
    ("sgd_update_", dict(lr=0.05, momentum=0.8, nesterov=True, maximize=True)),
    ("sgd_update_", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01,
                         first_step=True)),
    ("adam_update_", dict(step=1, lr=0.01)),
    ("adam_update_", dict(step=7, lr=0.01, beta1=0.3, beta2=0.9, eps=1e-6, weight_decay=0.1)),
    ("adam_update_", dict(step=3, lr=0.02, weight_decay=0.1, decoupled_weight_decay=True,
                          amsgrad=True)),
    ("adam_update_", dict(step=50, lr=0.01, amsgrad=True, maximize=True)),
    ("adam_update_", dict(step=4, lr=0.01, weight_decay=0.05, decoupled_weight_decay=True)),
    ("rmsprop_update_", dict(lr=0.01)),
    ("rmsprop_update_", dict(lr=0.01, alpha=0.9, momentum=0.9, weight_decay=0.1)),
    ("rmsprop_update_", dict(lr=0.01, centered=True, maximize=True)),
    ("rmsprop_update_", dict(lr=0.01, alpha=0.3, centered=True, momentum=0.5)),
    ("adagrad_update_", dict(step=1, lr=0.1)),
    ("adagrad_update_", dict(step=9, lr=0.1, lr_decay=0.05, weight_decay=0.1, maximize=True)),
    ("adadelta_update_", dict(lr=1.0)),
    ("adadelta_update_", dict(lr=0.5, rho=0.5, eps=1e-4, weight_decay=0.1, maximize=True)),
]


def _case_id(case):
    return case[0] + "(" + ",".join(f"{k}={v}" for k, v in case[1].items()) + ")"


def _state(name, n, dtype, options, seed=0):
    """p, g and the state buffers (None where the options use none), as the CPU
    kernel tests make them: second moments positive, centered s above ga^2."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(-2, 2, n).astype(dtype)
    g = rng.uniform(-1, 1, n).astype(dtype)
    states = []
    for s in STATES[name]:
        used = not ((s == "max_exp_avg_sq" and not options.get("amsgrad"))
                    or (s == "grad_avg" and not options.get("centered"))
                    or (s == "momentum_buffer" and not options.get("momentum")))
        lo, hi = (-0.1, 0.1) if s in ("exp_avg", "momentum_buffer", "grad_avg") else (0.1, 1.0)
        states.append(rng.uniform(lo, hi, n).astype(dtype) if used else None)
    return p, g, states


def _kwargs(name, options):
    return {**DEFAULTS[name], **options}


def _run_cpu(name, p, g, states, options):
    p, states = p.copy(), [None if s is None else s.copy() for s in states]
    getattr(cpu, name)(p, g, *states, **_kwargs(name, options))
    return [p] + states


def _host(arrays):
    return [None if a is None else (a if isinstance(a, np.ndarray) else gpu().to_host(a))
            for a in arrays]


def _compare(got, want, dtype, exact):
    for k, (gv, wv) in enumerate(zip(got, want)):
        if wv is None:
            continue
        assert gv.dtype == wv.dtype and gv.shape == wv.shape
        if exact:
            np.testing.assert_array_equal(gv, wv, err_msg=f"array {k}")
        else:
            np.testing.assert_allclose(gv, wv, err_msg=f"array {k}", **TOL[dtype])


def _gpu_step(name, p, g, states, options):
    dp, ds = dev(p), [None if s is None else dev(s) for s in states]
    getattr(gpu(), name)(dp, dev(g), *ds, **_kwargs(name, options))
    return _host([dp] + ds)


@needs_gpu
@pytest.mark.parametrize("case", CASES, ids=_case_id)
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_update_matches_cpu(case, n, dtype):
    name, options = case
    p, g, states = _state(name, n, dtype, options)
    _compare(_gpu_step(name, p, g, states, options), _run_cpu(name, p, g, states, options),
             dtype, FMA_CPU)


@needs_gpu
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_trajectory_of_many_steps_matches_cpu(case):
    """25 steps, the gradient changing each step, state carried on each device."""
    name, options = case
    p, g, states = _state(name, 1000, "float32", options, seed=3)
    cpu_arrays = [p.copy()] + [None if s is None else s.copy() for s in states]
    dp, ds = dev(p), [None if s is None else dev(s) for s in states]
    rng = np.random.default_rng(4)
    for step in range(1, 26):
        opts = dict(options)
        if "step" in opts:
            opts["step"] = step
        if "first_step" in opts:
            opts["first_step"] = step == 1
        grad = (rng.uniform(-1, 1, p.shape) + 0.1 * cpu_arrays[0]).astype(np.float32)
        getattr(cpu, name)(cpu_arrays[0], grad, *cpu_arrays[1:], **_kwargs(name, opts))
        getattr(gpu(), name)(dp, dev(grad), *ds, **_kwargs(name, opts))
    got = _host([dp] + ds)
    if FMA_CPU:
        _compare(got, cpu_arrays, "float32", True)
    else:  # rounding differences compound over the steps
        for gv, wv in zip(got, cpu_arrays):
            if wv is not None:
                np.testing.assert_allclose(gv, wv, rtol=1e-4, atol=1e-5)


@needs_gpu
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_float16_matches_cpu_staging_and_bfloat16_the_float32_kernel(case):
    """float16: the CPU backend stages to float32 and rounds back, as the kernel does
    in registers: identical results. bfloat16 (no numpy dtype): the bfloat16 kernel
    equals the float32 kernel run on the same values and rounded to bfloat16."""
    name, options = case
    p, g, states = _state(name, 513, "float16", options, seed=5)
    want = _run_cpu(name, p, g, states, options)
    if FMA_CPU:
        _compare(_gpu_step(name, p, g, states, options), want, "float16", True)
    else:  # one float32 rounding apart before the rounding to float16
        for gv, wv in zip(_gpu_step(name, p, g, states, options), want):
            if wv is not None:
                np.testing.assert_allclose(gv, wv, rtol=1e-3, atol=1e-4)
    astype = nf._C.cuda.astype
    p32, g32, s32 = _state(name, 513, "float32", options, seed=6)
    bp, bg = astype(dev(p32), "bfloat16"), astype(dev(g32), "bfloat16")
    bs = [None if s is None else astype(dev(s), "bfloat16") for s in s32]
    fp, fs = astype(bp, "float32"), [None if s is None else astype(s, "float32") for s in bs]
    getattr(gpu(), name)(bp, bg, *bs, **_kwargs(name, options))
    getattr(gpu(), name)(fp, astype(bg, "float32"), *fs, **_kwargs(name, options))
    for b, f in zip([bp] + bs, [fp] + fs):
        if b is None:
            continue
        assert b.dtype_name == "bfloat16"
        np.testing.assert_array_equal(gpu().to_host(astype(b, "float32")),
                                      gpu().to_host(astype(astype(f, "bfloat16"), "float32")))


@needs_gpu
def test_staging_of_strided_and_mixed_dtype_arrays():
    """A strided parameter, a float64 state for float32 parameters and a transposed
    state are staged and written back; the result equals the all-contiguous call."""
    rng = np.random.default_rng(7)
    p, g, m, v = (rng.uniform(0.1, 1, (3, 4)).astype(np.float32) for _ in range(4))
    kw = dict(step=2, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
              amsgrad=False, maximize=False, decoupled_weight_decay=False)
    ref = [dev(a) for a in (p, m, v)]
    gpu().adam_update_(ref[0], dev(g), ref[1], ref[2], None, **kw)
    wide = np.zeros((3, 8), np.float32)
    wide[:, ::2] = p
    dwide = dev(wide)
    p_view = gpu().getitem(dwide, (slice(None), slice(None, None, 2)))
    m64 = dev(m.astype(np.float64))
    v_t = gpu().swap_last(dev(np.ascontiguousarray(v.T)))
    gpu().adam_update_(p_view, dev(g), m64, v_t, None, **kw)
    host = gpu().to_host(dwide)
    np.testing.assert_array_equal(host[:, ::2], gpu().to_host(ref[0]))
    np.testing.assert_array_equal(host[:, 1::2], 0)  # the gaps are untouched
    np.testing.assert_array_equal(gpu().to_host(m64), gpu().to_host(ref[1]).astype(np.float64))
    np.testing.assert_array_equal(gpu().to_host(v_t), gpu().to_host(ref[2]))


@needs_gpu
def test_nan_propagates_through_amsgrad_maximum():
    p, g = np.ones(3, np.float32), np.array([np.nan, 1.0, 1.0], np.float32)
    states = [np.zeros(3, np.float32), np.ones(3, np.float32),
              np.array([1.0, np.nan, 0.5], np.float32)]
    opts = dict(step=2, lr=0.1, amsgrad=True)
    got = _gpu_step("adam_update_", p, g, states, opts)
    want = _run_cpu("adam_update_", p, g, states, opts)
    for gv, wv in zip(got, want):
        np.testing.assert_array_equal(np.isnan(gv), np.isnan(wv))


@needs_gpu
def test_argument_errors():
    z = dev(np.zeros(3, np.float32))
    with pytest.raises(TypeError, match="sgd_update_: param has dtype int64"):
        gpu().sgd_update_(dev(np.zeros(3, np.int64)), dev(np.zeros(3, np.int64)), None, lr=0.1,
                          **SGD)
    with pytest.raises(ValueError, match="adadelta_update: square_avg must be a C-contiguous "
                                         "array with the param's dtype, size and device"):
        gpu().adadelta_update_(z, dev(np.zeros(3, np.float32)), dev(np.zeros(2, np.float32)),
                               dev(np.zeros(3, np.float32)), lr=1.0, **ADADELTA)
    with pytest.raises(ValueError, match="momentum_buffer is required when momentum != 0"):
        gpu().sgd_update_(z, dev(np.zeros(3, np.float32)), None, lr=0.1,
                          **{**SGD, "momentum": 0.9})
    with pytest.raises(ValueError, match="max_exp_avg_sq is required with amsgrad"):
        gpu().adam_update_(z, dev(np.zeros(3, np.float32)), dev(np.zeros(3, np.float32)),
                           dev(np.zeros(3, np.float32)), None, step=1, lr=0.1,
                           **{**ADAM, "amsgrad": True})
    with pytest.raises(ValueError, match="step counts from 1, got 0"):
        gpu().adagrad_update_(z, dev(np.zeros(3, np.float32)), dev(np.zeros(3, np.float32)),
                              step=0, lr=0.1, **ADAGRAD)
    with pytest.raises(ValueError, match="param and grad share memory"):
        gpu().sgd_update_(z, z, None, lr=0.1, **SGD)
    one = dev(np.array(1.0))
    gpu().adagrad_update_(one, dev(np.array(1.0)), dev(np.array(0.0)), step=1, lr=0.5, **ADAGRAD)
    assert gpu().to_host(one) == pytest.approx(0.5)


# ---------------------------------------------------------------- Tensor level
def _problem(device, w0, x, y):
    w = nf.tensor(w0.copy(), device=device, requires_grad=True)
    xt, yt = nf.tensor(x, device=device), nf.tensor(y, device=device)

    def loss():
        r = xt @ w - yt
        return (r * r).mean() + (w * w * w).abs().sum() * 0.01
    return w, loss


OPTIMIZERS = [
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, maximize=False)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True, maximize=True)),
    ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01)),
    ("Adadelta", dict(lr=1.0, weight_decay=0.01)),
]


@needs_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("opt_name,kwargs", OPTIMIZERS, ids=lambda v: str(v))
def test_tensor_optimizers_cuda_vs_cpu(opt_name, kwargs, dtype):
    rng = np.random.default_rng(8)
    w0 = rng.standard_normal((5, 3)).astype(dtype)
    x, y = rng.standard_normal((16, 5)).astype(dtype), rng.standard_normal((16, 3)).astype(dtype)
    ws = []
    for device in ("cpu", "cuda"):
        w, loss = _problem(device, w0, x, y)
        opt = getattr(nf.optim, opt_name)([w], **kwargs)
        for _ in range(20):
            opt.zero_grad()
            loss().backward()
            opt.step()
        ws.append(w.detach().cpu().numpy())
    # the gradients come from different matmul/reduction kernels: not bit-identical
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == "float32" else dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ws[1], ws[0], **tol)
    assert not np.allclose(ws[1], w0)  # it moved
