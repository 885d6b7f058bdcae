"""Learning-rate schedules: every scheduler's lr sequence against PyTorch's over
30 epochs (two parameter groups), ReduceLROnPlateau fed a metric sequence,
SequentialLR milestones, chained warm-ups, state_dict round trips, errors."""
import warnings

import numpy as np
import pytest

import nnforge as nf
from helpers import torch_or_skip

EPOCHS = 30


def _optimizer(lib):
    a = lib.tensor(np.ones(2), requires_grad=True)
    b = lib.tensor(np.ones(3), requires_grad=True)
    return lib.optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1, momentum=0.9)


def _warmup_cosine(lib, opt):
    s = lib.optim.lr_scheduler
    return s.SequentialLR(opt, [s.LinearLR(opt, start_factor=0.1, total_iters=5),
                                s.CosineAnnealingLR(opt, T_max=20, eta_min=1e-4)], milestones=[5])


def _three_phases(lib, opt):
    s = lib.optim.lr_scheduler
    return s.SequentialLR(opt, [s.ConstantLR(opt, factor=0.5, total_iters=2),
                                s.ExponentialLR(opt, gamma=0.8),
                                s.StepLR(opt, step_size=4, gamma=0.5)], milestones=[3, 10])


def _lambda_per_group(lib, opt):
    return lib.optim.lr_scheduler.LambdaLR(opt, [lambda e: 0.9 ** e, lambda e: 1.0 / (e + 1)])


def _chained(lib, opt):
    s = lib.optim.lr_scheduler
    return s.ChainedScheduler([s.LinearLR(opt, start_factor=0.25, total_iters=4),
                               s.ExponentialLR(opt, gamma=0.95)])


SCHEDULES = {
    "StepLR": lambda lib, opt: lib.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5),
    "MultiStepLR": lambda lib, opt: lib.optim.lr_scheduler.MultiStepLR(
        opt, milestones=[2, 5, 5, 9], gamma=0.3),
    "ExponentialLR": lambda lib, opt: lib.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9),
    "CosineAnnealingLR": lambda lib, opt: lib.optim.lr_scheduler.CosineAnnealingLR(
        opt, T_max=10, eta_min=1e-3),  # 30 epochs: down, up, down again
    "LinearLR-warmup": lambda lib, opt: lib.optim.lr_scheduler.LinearLR(
        opt, start_factor=0.1, total_iters=5),
    "LinearLR-decay": lambda lib, opt: lib.optim.lr_scheduler.LinearLR(
        opt, start_factor=1.0, end_factor=0.2, total_iters=8),
    "ConstantLR": lambda lib, opt: lib.optim.lr_scheduler.ConstantLR(opt, factor=0.5,
                                                                      total_iters=4),
    "LambdaLR": lambda lib, opt: lib.optim.lr_scheduler.LambdaLR(opt, lambda e: 0.95 ** e),
    "LambdaLR-per-group": _lambda_per_group,
    "SequentialLR-warmup-cosine": _warmup_cosine,
    "SequentialLR-three-phases": _three_phases,
    "ChainedScheduler": _chained,
}


def _lr_sequence(lib, make, epochs=EPOCHS, start=None):
    opt = _optimizer(lib)
    sched = make(lib, opt)
    seq = []
    for _ in range(epochs):
        seq.append(sched.get_last_lr())
        assert seq[-1] == [g["lr"] for g in opt.param_groups]
        opt.step()
        sched.step()
    return seq


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_lr_sequence_matches_pytorch(name):
    torch = torch_or_skip()
    ours = _lr_sequence(nf, SCHEDULES[name])
    theirs = _lr_sequence(torch, SCHEDULES[name])
    np.testing.assert_allclose(ours, theirs, rtol=1e-14, atol=0)


def test_two_schedulers_stepping_one_optimizer_compose_like_pytorch():
    """A LinearLR warm-up and an ExponentialLR decay, both stepped every epoch."""
    torch = torch_or_skip()

    def run(lib):
        opt = _optimizer(lib)
        s = lib.optim.lr_scheduler
        warm = s.LinearLR(opt, start_factor=0.2, total_iters=6)
        decay = s.ExponentialLR(opt, gamma=0.9)
        seq = []
        for _ in range(EPOCHS):
            seq.append([g["lr"] for g in opt.param_groups])
            opt.step()
            warm.step()
            decay.step()
        return seq

    np.testing.assert_allclose(run(nf), run(torch), rtol=1e-14, atol=0)


PLATEAU = [
    dict(),
    dict(mode="min", factor=0.5, patience=2, threshold=0.05, threshold_mode="rel", cooldown=1),
    dict(mode="max", factor=0.3, patience=1, threshold=0.01, threshold_mode="abs", cooldown=2,
         min_lr=[0.01, 0.2]),
    dict(mode="min", factor=0.5, patience=0, min_lr=0.02, eps=1e-3),
]
METRICS = [1.0, 0.9, 0.85, 0.86, 0.84, 0.84, 0.9, 0.83, 0.83, 0.83, 0.83, 0.5, 0.6, 0.7, 0.8,
           0.9, 1.0, 0.49, 0.49, 0.49, 0.49, 0.49, 0.49, 0.49, 0.49, 0.2, 0.3, 0.3, 0.3, 0.3]


@pytest.mark.parametrize("kwargs", PLATEAU, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()))
def test_reduce_lr_on_plateau_matches_pytorch(kwargs):
    torch = torch_or_skip()

    def run(lib):
        opt = _optimizer(lib)
        sched = lib.optim.lr_scheduler.ReduceLROnPlateau(opt, **kwargs)
        seq = []
        for metric in METRICS:
            opt.step()
            sched.step(metric)
            seq.append(sched.get_last_lr())
        return seq, sched

    (ours, sched), (theirs, tsched) = run(nf), run(torch)
    np.testing.assert_allclose(ours, theirs, rtol=1e-14, atol=0)
    assert (sched.best, sched.num_bad_epochs, sched.cooldown_counter, sched.last_epoch) == \
        (tsched.best, tsched.num_bad_epochs, tsched.cooldown_counter, tsched.last_epoch)


def test_reduce_lr_on_plateau_takes_a_tensor_metric():
    opt = _optimizer(nf)
    sched = nf.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0, factor=0.5)
    sched.step(nf.tensor(1.0))
    sched.step(nf.tensor(2.0))
    assert sched.get_last_lr() == [0.05, 0.25]


@pytest.mark.parametrize("name", ["StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR",
                                  "LinearLR-warmup", "ConstantLR"])
def test_step_with_epoch_uses_the_closed_form_like_pytorch(name):
    torch = torch_or_skip()

    def run(lib):
        opt = _optimizer(lib)
        sched = SCHEDULES[name](lib, opt)
        out = []
        for epoch in (4, 7, 2, 12):
            sched.step(epoch)
            out.append(sched.get_last_lr())
        return out

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = run(torch)
    np.testing.assert_allclose(run(nf), theirs, rtol=1e-14, atol=0)


# ---------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("name", list(SCHEDULES) + ["ReduceLROnPlateau"])
def test_state_dict_round_trip_continues_identically(name):
    plateau = name == "ReduceLROnPlateau"

    def make(opt):
        if plateau:
            return nf.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=1,
                                                            cooldown=1)
        return SCHEDULES[name](nf, opt)

    def advance(opt, sched, metrics):
        seq = []
        for m in metrics:
            opt.step()
            sched.step(m) if plateau else sched.step()
            seq.append(sched.get_last_lr())
        return seq

    opt1 = _optimizer(nf)
    s1 = make(opt1)
    advance(opt1, s1, METRICS[:12])
    saved_opt, saved_sched = opt1.state_dict(), s1.state_dict()
    after = advance(opt1, s1, METRICS[12:])
    # As in PyTorch: make the scheduler, then load the optimizer, then the scheduler.
    opt2 = _optimizer(nf)
    s2 = make(opt2)
    opt2.load_state_dict(saved_opt)
    s2.load_state_dict(saved_sched)
    assert advance(opt2, s2, METRICS[12:]) == after


def test_saved_state_does_not_change_with_the_scheduler():
    opt = _optimizer(nf)
    sched = nf.optim.lr_scheduler.MultiStepLR(opt, milestones=[2, 4])
    saved = sched.state_dict()
    for _ in range(5):
        sched.step()
    assert saved["last_epoch"] == 0 and saved["_last_lr"] == [0.1, 0.5]


def test_lambda_state_dict_saves_callable_objects_only():
    class Decay:
        def __init__(self, rate):
            self.rate = rate

        def __call__(self, epoch):
            return self.rate ** epoch

    opt = _optimizer(nf)
    sched = nf.optim.lr_scheduler.LambdaLR(opt, [Decay(0.5), lambda e: 1.0])
    sd = sched.state_dict()
    assert sd["lr_lambdas"] == [{"rate": 0.5}, None]
    other = nf.optim.lr_scheduler.LambdaLR(_optimizer(nf), [Decay(0.9), lambda e: 1.0])
    other.load_state_dict(sd)
    assert other.lr_lambdas[0].rate == 0.5


def test_resuming_needs_initial_lr():
    opt = _optimizer(nf)
    with pytest.raises(KeyError, match="initial_lr"):
        nf.optim.lr_scheduler.StepLR(opt, step_size=2, last_epoch=3)
    for g in opt.param_groups:
        g["initial_lr"] = g["lr"]
    sched = nf.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5, last_epoch=3)
    assert sched.last_epoch == 4 and sched.get_last_lr() == [0.05, 0.25]


def test_initial_lr_recorded_in_groups_and_optimizer_state_dict():
    opt = _optimizer(nf)
    nf.optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)
    assert [g["initial_lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert opt.state_dict()["param_groups"][1]["initial_lr"] == 0.5


# ---------------------------------------------------------------- errors
def test_bad_arguments():
    s = nf.optim.lr_scheduler
    opt = _optimizer(nf)
    with pytest.raises(TypeError, match="Optimizer"):
        s.StepLR("not an optimizer", step_size=1)
    with pytest.raises(ValueError, match="step_size"):
        s.StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match="start_factor"):
        s.LinearLR(opt, start_factor=0.0)
    with pytest.raises(ValueError, match="end_factor"):
        s.LinearLR(opt, end_factor=1.5)
    with pytest.raises(ValueError, match="factor"):
        s.ConstantLR(opt, factor=2.0)
    with pytest.raises(ValueError, match="T_max"):
        s.CosineAnnealingLR(opt, T_max=0)
    with pytest.raises(ValueError, match="expected 2 lr_lambdas"):
        s.LambdaLR(opt, [lambda e: 1.0])
    with pytest.raises(ValueError, match="factor must be < 1.0"):
        s.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ValueError, match="mode must be"):
        s.ReduceLROnPlateau(opt, mode="lowest")
    with pytest.raises(ValueError, match="threshold_mode"):
        s.ReduceLROnPlateau(opt, threshold_mode="relative")
    with pytest.raises(ValueError, match="expected 2 min_lrs"):
        s.ReduceLROnPlateau(opt, min_lr=[0.1])
    a, b = s.StepLR(opt, step_size=2), s.ExponentialLR(opt, gamma=0.5)
    with pytest.raises(ValueError, match="one milestone fewer"):
        s.SequentialLR(opt, [a, b], milestones=[2, 4])
    with pytest.raises(ValueError, match="different optimizer"):
        s.SequentialLR(_optimizer(nf), [a, b], milestones=[2])
    with pytest.raises(ValueError, match="ReduceLROnPlateau"):
        s.SequentialLR(opt, [a, s.ReduceLROnPlateau(opt)], milestones=[2])
    with pytest.raises(ValueError, match="at least one scheduler"):
        s.ChainedScheduler([], optimizer=opt)


def test_public_names():
    assert nf.optim.lr_scheduler.StepLR.__name__ == "StepLR"
    from nnforge.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau
    assert issubclass(ReduceLROnPlateau, LRScheduler)
