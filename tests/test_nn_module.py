"""Tests for nnforge.nn.Module, Parameter and the containers (python/nnforge/nn/module.py,
parameter.py, containers.py), with PyTorch state_dict interchange where torch is installed."""
from collections import OrderedDict
import copy

import numpy as np
import pytest

import nnforge as nf
from nnforge import nn


# ---------------------------------------------------------------- fixtures
class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(8, 4)
        self.register_buffer("running", nf.zeros(4))
        self.register_buffer("scratch", nf.ones(2), persistent=False)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x))) + self.running


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(nf.ones(1))
        self.block = Block()
        self.head = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2, bias=False))

    def forward(self, x):
        return self.head(self.block(x) * self.scale)


NET_PARAMS = ["scale", "block.fc1.weight", "block.fc1.bias", "block.fc2.weight", "block.fc2.bias",
              "head.0.weight", "head.0.bias", "head.2.weight"]


def as_np(t):
    return t.detach().numpy()


# ---------------------------------------------------------------- Parameter
def test_parameter_shares_data_and_is_a_leaf():
    t = nf.randn(3)
    p = nn.Parameter(t)
    assert isinstance(p, nf.Tensor) and isinstance(p, nn.Parameter)
    assert p.requires_grad and p.is_leaf and p.grad_fn is None
    with nf.no_grad():
        t.add_(1.0)
    np.testing.assert_array_equal(as_np(p), as_np(t))  # same storage
    assert not nn.Parameter(nf.zeros(2), requires_grad=False).requires_grad
    assert tuple(nn.Parameter().shape) == (0,)


def test_parameter_repr_and_errors():
    p = nn.Parameter(nf.tensor([1.0, 2.0]))
    assert repr(p) == "Parameter containing:\ntensor([1., 2.], requires_grad=True)"
    with pytest.raises(TypeError, match="must be an nnforge Tensor"):
        nn.Parameter([1.0, 2.0])
    with pytest.raises(RuntimeError, match="floating point"):
        nn.Parameter(nf.tensor([1, 2]))
    assert not nn.Parameter(nf.tensor([1, 2]), requires_grad=False).requires_grad


def test_parameter_from_non_leaf_becomes_leaf():
    x = nf.randn(3, requires_grad=True)
    p = nn.Parameter(x * 2)
    assert p.is_leaf
    (p * 3).sum().backward()
    np.testing.assert_allclose(p.grad.numpy(), [3, 3, 3])
    assert x.grad is None


def test_ops_on_parameters_give_plain_tensors():
    p = nn.Parameter(nf.ones(2))
    y = p * 2
    assert type(y) is nf.Tensor and type(p.detach()) is nf.Tensor


def test_parameter_deepcopy_is_independent():
    p = nn.Parameter(nf.ones(2))
    (p * 2).sum().backward()
    q = copy.deepcopy(p)
    assert isinstance(q, nn.Parameter) and q is not p
    np.testing.assert_array_equal(q.grad.numpy(), [2, 2])
    (q * 5).sum().backward()
    np.testing.assert_array_equal(p.grad.numpy(), [2, 2])  # the original is untouched
    np.testing.assert_array_equal(q.grad.numpy(), [7, 7])
    with nf.no_grad():
        q.mul_(3.0)
    np.testing.assert_array_equal(as_np(p), [1, 1])


# ---------------------------------------------------------------- registration
def test_setattr_registers_parameters_buffers_modules():
    m = Block()
    assert list(m._parameters) == []
    assert list(m._modules) == ["fc1", "act", "fc2"]
    assert list(m._buffers) == ["running", "scratch"]
    assert m.running is m._buffers["running"]
    assert isinstance(m.fc1, nn.Linear)
    m.extra = nn.Parameter(nf.zeros(3))
    assert m.extra is m._parameters["extra"]
    m.plain = 5
    assert m.plain == 5 and "plain" not in m._parameters
    with pytest.raises(AttributeError, match="'Block' object has no attribute 'nope'"):
        m.nope


def test_assigning_wrong_kinds_raises():
    m = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="parameter 'weight'"):
        m.weight = nf.zeros(2, 2)  # a plain tensor cannot replace a Parameter
    m.bias = None
    assert m.bias is None and "bias" in m._parameters
    seq = nn.Sequential(nn.ReLU())
    with pytest.raises(TypeError, match="child module '0'"):
        setattr(seq, "0", 3)
    b = Block()
    with pytest.raises(TypeError, match="buffer 'running'"):
        b.running = 3.0
    b.running = nf.ones(4)
    np.testing.assert_array_equal(b.running.numpy(), np.ones(4))


def test_register_errors():
    m = nn.Module()
    with pytest.raises(KeyError, match="contain"):
        m.register_buffer("a.b", nf.zeros(1))
    with pytest.raises(KeyError, match="empty"):
        m.register_parameter("", None)
    with pytest.raises(TypeError, match="string"):
        m.add_module(3, nn.ReLU())
    m.x = 1
    with pytest.raises(KeyError, match="already exists"):
        m.register_buffer("x", nf.zeros(1))
    with pytest.raises(TypeError, match="Parameter or None"):
        m.register_parameter("w", nf.zeros(1))
    with pytest.raises(TypeError, match="not a Module"):
        m.add_module("child", "relu")


def test_assign_before_init_raises():
    class Bad(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(nf.zeros(1))
            super().__init__()

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Bad()


def test_reassignment_changes_kind():
    m = nn.Module()
    m.register_buffer("thing", nf.zeros(2))
    m.thing = nn.Parameter(nf.ones(2))  # a Parameter replaces the buffer of that name
    assert "thing" in m._parameters and "thing" not in m._buffers
    m.thing = None
    assert m._parameters["thing"] is None


def test_delattr_and_dir():
    m = Block()
    assert {"fc1", "running", "scratch"} <= set(dir(m))
    del m.fc1
    del m.running
    assert "fc1" not in m._modules and "running" not in m._buffers
    m.plain = 1
    del m.plain
    assert not hasattr(m, "plain")


def test_add_module_and_register_module():
    m = nn.Module()
    m.add_module("a", nn.ReLU())
    m.register_module("b", nn.Tanh())
    assert [n for n, _ in m.named_children()] == ["a", "b"]


def test_forward_missing_raises():
    with pytest.raises(NotImplementedError, match='missing the required "forward"'):
        nn.Module()(nf.zeros(1))


# ---------------------------------------------------------------- traversal
def test_named_parameters_order_and_prefixes():
    net = Net()
    assert [n for n, _ in net.named_parameters()] == NET_PARAMS
    prefixed = [n for n, _ in net.named_parameters(prefix="model")]
    assert prefixed == ["model." + n for n in NET_PARAMS]
    assert [n for n, _ in net.named_parameters(recurse=False)] == ["scale"]
    params = list(net.parameters())
    assert len(params) == len(NET_PARAMS)
    assert params[1] is net.block.fc1.weight
    assert all(isinstance(p, nn.Parameter) for p in params)


def test_named_modules_children_and_buffers():
    net = Net()
    names = [n for n, _ in net.named_modules()]
    assert names == ["", "block", "block.fc1", "block.act", "block.fc2", "head", "head.0",
                     "head.1", "head.2"]
    assert [n for n, _ in net.named_children()] == ["block", "head"]
    assert list(net.children())[1] is net.head
    assert [n for n, _ in net.named_buffers()] == ["block.running", "block.scratch"]
    assert len(list(net.buffers(recurse=False))) == 0
    assert len(list(net.modules())) == 9


def test_shared_parameters_deduplicated():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.Linear(4, 4)
            self.dec = nn.Linear(4, 4)
            self.dec.weight = self.enc.weight

    m = Tied()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["enc.weight", "enc.bias", "dec.bias"]
    assert len(list(m.named_parameters(remove_duplicate=False))) == 4
    # state_dict keeps every name (PyTorch does), and loads back into both.
    sd = m.state_dict()
    assert list(sd) == ["enc.weight", "enc.bias", "dec.weight", "dec.bias"]
    m2 = Tied()
    m2.load_state_dict(sd)
    assert m2.dec.weight is m2.enc.weight
    np.testing.assert_array_equal(as_np(m2.enc.weight), as_np(m.enc.weight))


def test_shared_module_yielded_once():
    shared = nn.Linear(2, 2)
    seq = nn.Sequential(shared, nn.ReLU(), shared)
    assert [n for n, _ in seq.named_modules()] == ["", "0", "1"]
    assert len(list(seq.named_modules(remove_duplicate=False))) == 4
    assert len(list(seq.parameters())) == 2
    x = nf.randn(3, 2)
    seq(x).sum().backward()
    assert shared.weight.grad is not None


def test_get_submodule_parameter_buffer():
    net = Net()
    assert net.get_submodule("head.0") is net.head[0]
    assert net.get_submodule("") is net
    assert net.get_parameter("block.fc2.bias") is net.block.fc2.bias
    assert net.get_buffer("block.running") is net.block.running
    with pytest.raises(AttributeError, match="no submodule 'fc9'"):
        net.get_submodule("block.fc9")
    with pytest.raises(AttributeError, match="no parameter 'nope'"):
        net.get_parameter("block.nope")


# ---------------------------------------------------------------- state_dict
def test_state_dict_keys_detached_and_shared():
    net = Net()
    sd = net.state_dict()
    assert isinstance(sd, OrderedDict)
    # A module's own entries come before its children's, as in PyTorch.
    assert list(sd) == ["scale", "block.running", "block.fc1.weight", "block.fc1.bias",
                        "block.fc2.weight", "block.fc2.bias", "head.0.weight", "head.0.bias",
                        "head.2.weight"]
    assert "block.scratch" not in sd  # non-persistent
    w = sd["block.fc1.weight"]
    assert not w.requires_grad and not isinstance(w, nn.Parameter)
    with nf.no_grad():
        net.block.fc1.weight.mul_(0.0)
    assert float(w.abs().sum()) == 0.0  # storage is shared with the parameter
    kv = net.state_dict(keep_vars=True)
    assert kv["scale"] is net.scale
    assert list(net.block.state_dict(prefix="b."))[:2] == ["b.running", "b.fc1.weight"]


def test_state_dict_round_trip_gives_identical_outputs():
    nf.manual_seed(0)
    a, b = Net(), Net()
    with nf.no_grad():
        a.block.running.add_(0.5)
    x = nf.randn(5, 4)
    assert not np.allclose(as_np(a(x)), as_np(b(x)))
    params_before = list(b.parameters())
    result = b.load_state_dict(a.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    np.testing.assert_array_equal(as_np(a(x)), as_np(b(x)))
    assert all(p is q for p, q in zip(params_before, b.parameters()))  # copied in place
    with nf.no_grad():
        a.block.fc1.weight.add_(1.0)
    assert not np.allclose(as_np(a.block.fc1.weight), as_np(b.block.fc1.weight))


def test_load_from_numpy_arrays_casts_dtype():
    a, b = Net(), Net()
    sd = {k: v.numpy().astype(np.float64) for k, v in a.state_dict().items()}
    b.load_state_dict(sd)
    assert b.block.fc1.weight.dtype == nf.float32
    np.testing.assert_allclose(as_np(b.block.fc1.weight), sd["block.fc1.weight"], rtol=1e-6)
    x = nf.randn(2, 4)
    np.testing.assert_allclose(as_np(a(x)), as_np(b(x)), rtol=1e-6)


def test_strict_errors_list_every_problem():
    net = Net()
    sd = net.state_dict()
    del sd["scale"], sd["head.0.bias"]
    sd["block.fc3.weight"] = nf.zeros(2)
    sd["extra"] = nf.zeros(1)
    sd["block.fc1.weight"] = nf.zeros(3, 4)
    sd["head.2.weight"] = np.zeros((2, 2), dtype=np.float32)
    with pytest.raises(RuntimeError) as info:
        net.load_state_dict(sd)
    msg = str(info.value)
    assert msg.startswith("Error(s) in loading state_dict for Net:")
    assert 'Missing key(s) in state_dict: "scale", "head.0.bias".' in msg
    assert '"block.fc3.weight"' in msg and '"extra"' in msg and "Unexpected key(s)" in msg
    assert ("size mismatch for block.fc1.weight: copying a param with shape (3, 4) from "
            "checkpoint, the shape in current model is (8, 4).") in msg
    assert ("size mismatch for head.2.weight: copying a param with shape (2, 2) from "
            "checkpoint, the shape in current model is (2, 3).") in msg


def test_strict_false_returns_keys_but_size_mismatch_still_raises():
    lin = nn.Linear(3, 4)
    w = np.arange(12, dtype=np.float32).reshape(4, 3)
    result = lin.load_state_dict({"weight": w, "junk": np.zeros(1)}, strict=False)
    assert result.missing_keys == ["bias"] and result.unexpected_keys == ["junk"]
    assert result == (["bias"], ["junk"])
    np.testing.assert_array_equal(as_np(lin.weight), w)
    with pytest.raises(RuntimeError, match="size mismatch for weight"):
        lin.load_state_dict({"weight": np.zeros((3, 3))}, strict=False)
    assert repr(lin.load_state_dict(lin.state_dict())) == "<All keys matched successfully>"


def test_non_persistent_buffer_key_is_unexpected():
    b = Block()
    sd = b.state_dict()
    sd["scratch"] = nf.zeros(2)
    result = b.load_state_dict(sd, strict=False)
    assert result.unexpected_keys == ["scratch"]


def test_load_state_dict_assign():
    a, b = nn.Linear(2, 3), nn.Linear(2, 3)
    old = b.weight
    b.load_state_dict(a.state_dict(), assign=True)
    assert b.weight is not old and isinstance(b.weight, nn.Parameter)
    assert b.weight.requires_grad
    np.testing.assert_array_equal(as_np(b.weight), as_np(a.weight))


def test_load_state_dict_rejects_non_mapping():
    with pytest.raises(TypeError, match="mapping"):
        nn.Linear(2, 2).load_state_dict([1, 2])


def test_load_state_dict_bad_value_type():
    with pytest.raises(RuntimeError, match='"weight"'):
        nn.Linear(2, 2).load_state_dict({"weight": "abc", "bias": np.zeros(2)})


# ---------------------------------------------------------------- modes, grads, apply, to
def test_train_eval_propagate():
    net = Net()
    assert net.training and net.head[1].training
    assert net.eval() is net
    assert all(not m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net.block.train(False)
    assert net.training and not net.block.fc1.training
    with pytest.raises(ValueError, match="bool"):
        net.train("yes")


def test_zero_grad():
    net = Net()
    net(nf.randn(3, 4)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(p.grad is not None and float(p.grad.abs().sum()) == 0.0 for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_requires_grad_():
    net = Net()
    net.block.requires_grad_(False)
    assert [n for n, p in net.named_parameters() if p.requires_grad] == [
        "scale", "head.0.weight", "head.0.bias", "head.2.weight"]
    net(nf.randn(2, 4)).sum().backward()
    assert net.block.fc1.weight.grad is None and net.head[0].weight.grad is not None


def test_apply_visits_children_first():
    net = Net()
    seen = []
    assert net.apply(lambda m: seen.append(type(m).__name__)) is net
    assert seen == ["Linear", "ReLU", "Linear", "Block", "Linear", "Tanh", "Linear",
                    "Sequential", "Net"]

    def init_zero(m):
        if isinstance(m, nn.Linear):
            nn.init.zeros_(m.weight)
    net.apply(init_zero)
    assert float(net.head[0].weight.abs().sum()) == 0.0


def test_to_float64_keeps_parameter_identity():
    net = Net()
    net.register_buffer("steps", nf.tensor(3))
    net(nf.randn(2, 4)).sum().backward()
    params = list(net.parameters())
    ref = {n: as_np(p).astype(np.float64) for n, p in net.named_parameters()}
    assert net.to(nf.float64) is net
    assert all(p is q for p, q in zip(params, net.parameters()))
    for n, p in net.named_parameters():
        assert p.dtype == nf.float64 and p.requires_grad and p.is_leaf
        assert p.grad.dtype == nf.float64
        np.testing.assert_array_equal(as_np(p), ref[n])
    assert net.block.running.dtype == nf.float64
    assert net.steps.dtype == nf.int64  # integer buffers keep their dtype
    net.zero_grad()
    out = net(nf.randn(2, 4, dtype=nf.float64))
    assert out.dtype == nf.float64
    out.sum().backward()
    assert net.scale.grad.dtype == nf.float64
    net.float()
    assert net.head[0].weight.dtype == nf.float32
    net.double()
    assert net.head[0].weight.dtype == nf.float64
    net.to(device="cpu", dtype=nf.float32)
    assert net.head[0].weight.dtype == nf.float32
    net.to(nf.zeros(1, dtype=nf.float64))
    assert net.head[0].weight.dtype == nf.float64
    with pytest.raises(TypeError, match="floating point"):
        net.to(nf.int64)


# ---------------------------------------------------------------- hooks
def test_forward_hooks_fire_modify_and_remove():
    lin = nn.Linear(2, 2)
    calls = []

    def pre(module, args):
        calls.append(("pre", module))
        return args[0] * 0.0  # a non-tuple result replaces the single argument

    def post(module, args, output):
        calls.append(("post", tuple(args[0].shape)))
        return output + 1.0

    h1 = lin.register_forward_pre_hook(pre)
    h2 = lin.register_forward_hook(post)
    out = lin(nf.randn(3, 2))
    assert calls == [("pre", lin), ("post", (3, 2))]
    np.testing.assert_allclose(as_np(out), as_np(lin.bias + 1.0).reshape(1, 2).repeat(3, 0),
                               rtol=1e-6)
    h1.remove()
    h2.remove()
    h2.remove()  # removing twice is harmless
    x = nf.randn(3, 2)
    expected = nn.functional.linear(x, lin.weight, lin.bias)
    np.testing.assert_array_equal(as_np(lin(x)), as_np(expected))
    assert len(calls) == 2


def test_hook_order_prepend_kwargs_and_context_manager():
    class Scale(nn.Module):
        def forward(self, x, factor=1.0):
            return x * factor

    m = Scale()
    order = []
    m.register_forward_hook(lambda mod, a, o: order.append("second"))
    m.register_forward_hook(lambda mod, a, o: order.append("first"), prepend=True)

    def kw_pre(mod, args, kwargs):
        return args, {"factor": 10.0}

    with m.register_forward_pre_hook(kw_pre, with_kwargs=True):
        out = m(nf.ones(2), factor=2.0)
    np.testing.assert_array_equal(out.numpy(), [10.0, 10.0])
    assert order == ["first", "second"]
    np.testing.assert_array_equal(m(nf.ones(2), factor=2.0).numpy(), [2.0, 2.0])

    seen = {}
    m.register_forward_hook(lambda mod, a, kw, o: seen.update(kw), with_kwargs=True)
    m(nf.ones(1), factor=3.0)
    assert seen == {"factor": 3.0}


# ---------------------------------------------------------------- repr and summary
NET_REPR = """Net(
  (block): Block(
    (fc1): Linear(in_features=4, out_features=8, bias=True)
    (act): ReLU()
    (fc2): Linear(in_features=8, out_features=4, bias=True)
  )
  (head): Sequential(
    (0): Linear(in_features=4, out_features=3, bias=True)
    (1): Tanh()
    (2): Linear(in_features=3, out_features=2, bias=False)
  )
)"""


def test_repr_tree():
    # PyTorch's tree, then our extra: one line of parameter counts (shared ones once).
    assert repr(Net()) == NET_REPR + "\nTotal params: 98 (trainable: 98)"
    assert repr(nn.ReLU(inplace=True)) == "ReLU(inplace=True)"
    assert repr(nn.Module()) == "Module()"
    ml = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2)])
    assert repr(ml) == ("ModuleList(\n  (0-1): 2 x Linear(in_features=2, out_features=2, "
                        "bias=True)\n  (2): ReLU()\n  (3): Linear(in_features=2, "
                        "out_features=2, bias=True)\n)\nTotal params: 18 (trainable: 18)")


def test_repr_matches_pytorch():
    torch = pytest.importorskip("torch")
    tnn = torch.nn

    def build(lib):
        return lib.Sequential(
            lib.Linear(3, 4), lib.ReLU(), lib.ModuleList([lib.Linear(2, 2) for _ in range(3)]),
            lib.Dropout(0.1), lib.Softmax(dim=1), lib.Flatten(), lib.Unflatten(1, (2, 3)),
            lib.ModuleDict({"a": lib.Identity(), "b": lib.Sigmoid()}), lib.CrossEntropyLoss(),
            lib.MSELoss(), lib.NLLLoss(), lib.LogSoftmax(dim=1),
            lib.Sequential(OrderedDict(fc=lib.Linear(1, 1, bias=False))))
    tree, counts = repr(build(nn)).rsplit("\n", 1)
    reference = build(tnn)
    assert tree == repr(reference)
    n = sum(p.numel() for p in reference.parameters())
    assert counts == f"Total params: {n:,} (trainable: {n:,})"


def test_summary_counts():
    net = Net()
    text = net.summary()
    total = sum(p.numel() for p in net.parameters())
    assert total == 1 + (4 * 8 + 8) + (8 * 4 + 4) + (4 * 3 + 3) + 3 * 2
    assert f"Total params: {total:,}" in text
    assert f"Trainable params: {total:,}" in text
    assert "block.fc1  Linear" in text.replace("   ", "  ")
    net.block.requires_grad_(False)
    frozen = 4 * 8 + 8 + 8 * 4 + 4
    assert f"Non-trainable params: {frozen:,}" in net.summary()
    assert repr(net) == NET_REPR + f"\nTotal params: {total:,} (trainable: {total - frozen:,})"


# ---------------------------------------------------------------- Sequential
def test_sequential_forward_index_slice_len_iter():
    layers = [nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3)]
    seq = nn.Sequential(*layers)
    x = nf.randn(2, 4)
    ref = layers[2](layers[1](layers[0](x)))
    np.testing.assert_array_equal(as_np(seq(x)), as_np(ref))
    assert len(seq) == 3 and list(seq) == layers
    assert seq[0] is layers[0] and seq[-1] is layers[2]
    head = seq[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head[1] is layers[1]
    assert [n for n, _ in seq[1:].named_children()] == ["1", "2"]
    with pytest.raises(IndexError, match="out of range"):
        seq[3]


def test_sequential_mutation():
    a, b, c, d = nn.ReLU(), nn.Tanh(), nn.Sigmoid(), nn.Identity()
    seq = nn.Sequential(a, b)
    seq.append(c)
    assert list(seq._modules) == ["0", "1", "2"] and seq[2] is c
    seq.insert(1, d)
    assert list(seq) == [a, d, b, c] and list(seq._modules) == ["0", "1", "2", "3"]
    del seq[0]
    assert list(seq) == [d, b, c] and list(seq._modules) == ["0", "1", "2"]
    seq.extend([nn.ReLU(), nn.ReLU()])
    assert len(seq) == 5
    seq[0] = a
    assert seq[0] is a
    del seq[3:]
    assert list(seq) == [a, b, c]
    assert seq.pop(1) is b and list(seq) == [a, c]
    combined = seq + nn.Sequential(d)
    assert list(combined) == [a, c, d]


def test_sequential_from_ordered_dict():
    seq = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 3)), ("act", nn.ReLU())]))
    assert [n for n, _ in seq.named_parameters()] == ["fc.weight", "fc.bias"]
    assert seq.fc is seq[0]
    assert list(seq.state_dict()) == ["fc.weight", "fc.bias"]


# ---------------------------------------------------------------- ModuleList / ModuleDict
def test_module_list():
    class Stack(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(3, 3) for _ in range(2)])

        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            return x

    s = Stack()
    assert [n for n, _ in s.named_parameters()] == ["layers.0.weight", "layers.0.bias",
                                                    "layers.1.weight", "layers.1.bias"]
    ml = s.layers
    extra = nn.Linear(3, 3)
    ml.append(extra)
    assert len(ml) == 3 and ml[-1] is extra
    first = ml[0]
    ml.insert(0, nn.ReLU())
    assert isinstance(ml[0], nn.ReLU) and ml[1] is first
    assert list(ml._modules) == ["0", "1", "2", "3"]
    ml.extend([nn.Tanh()])
    ml += [nn.Sigmoid()]
    assert len(ml) == 6
    sub = ml[1:3]
    assert isinstance(sub, nn.ModuleList) and list(sub) == [ml[1], ml[2]]
    ml[0] = nn.Identity()
    assert isinstance(ml[0], nn.Identity)
    del ml[0]
    assert ml[0] is first and list(ml._modules) == [str(i) for i in range(5)]
    assert ml.pop() is not None and len(ml) == 4
    with pytest.raises(IndexError):
        ml[10]
    with pytest.raises(TypeError, match="iterable"):
        ml.extend(nn.ReLU())
    s(nf.randn(2, 3))


def test_module_dict():
    md = nn.ModuleDict({"cls": nn.Linear(4, 3), "box": nn.Linear(4, 4)})
    assert list(md.keys()) == ["cls", "box"] and len(md) == 2 and "cls" in md
    assert [n for n, _ in md.named_parameters()] == ["cls.weight", "cls.bias", "box.weight",
                                                     "box.bias"]
    md["act"] = nn.ReLU()
    assert list(md) == ["cls", "box", "act"]
    assert isinstance(md.pop("act"), nn.ReLU)
    del md["box"]
    assert list(md.items())[0][0] == "cls" and len(list(md.values())) == 1
    md.update([("z", nn.Tanh())])
    assert list(md) == ["cls", "z"]
    md.clear()
    assert len(md) == 0


def test_parameter_list_and_dict():
    pl = nn.ParameterList([nf.zeros(2), nn.Parameter(nf.ones(3))])
    assert all(isinstance(p, nn.Parameter) for p in pl) and len(pl) == 2
    pl.append(nf.ones(1))
    assert [n for n, _ in pl.named_parameters()] == ["0", "1", "2"]
    pd = nn.ParameterDict({"a": nf.zeros(2)})
    pd["b"] = nf.ones(1)
    assert list(pd) == ["a", "b"] and isinstance(pd["b"], nn.Parameter)

    class Owner(nn.Module):
        def __init__(self):
            super().__init__()
            self.ps = pl
            self.pd = pd

    assert list(Owner().state_dict()) == ["ps.0", "ps.1", "ps.2", "pd.a", "pd.b"]


# ---------------------------------------------------------------- deepcopy
def test_deepcopy_linear_is_independent():
    lin = nn.Linear(3, 2)
    twin = copy.deepcopy(lin)
    assert twin.weight is not lin.weight
    np.testing.assert_array_equal(as_np(twin.weight), as_np(lin.weight))
    with nf.no_grad():
        twin.weight.zero_()
    assert float(lin.weight.abs().sum()) > 0
    twin(nf.randn(4, 3)).sum().backward()
    assert twin.weight.grad is not None and lin.weight.grad is None


# ---------------------------------------------------------------- PyTorch interchange
def _mlp(lib):
    return lib.Sequential(lib.Linear(784, 256), lib.ReLU(), lib.Linear(256, 10))


def _check_same_outputs_and_grads(torch, nf_model, t_model, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((16, 784)).astype(np.float32)
    y = rng.integers(0, 10, 16)
    xn = nf.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    out_n, out_t = nf_model(xn), t_model(xt)
    np.testing.assert_allclose(as_np(out_n), out_t.detach().numpy(), rtol=1e-4, atol=1e-5)
    nn.functional.cross_entropy(out_n, nf.tensor(y)).backward()
    torch.nn.functional.cross_entropy(out_t, torch.tensor(y)).backward()
    np.testing.assert_allclose(xn.grad.numpy(), xt.grad.numpy(), rtol=1e-4, atol=1e-6)
    t_params = dict(t_model.named_parameters())
    for name, p in nf_model.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), t_params[name].grad.numpy(), rtol=1e-4,
                                   atol=1e-6, err_msg=name)


def test_pytorch_state_dict_loads_into_nnforge():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    t_model = _mlp(torch.nn)
    nf_model = _mlp(nn)
    sd = {k: v.numpy() for k, v in t_model.state_dict().items()}
    result = nf_model.load_state_dict(sd)
    assert result.missing_keys == [] and result.unexpected_keys == []
    _check_same_outputs_and_grads(torch, nf_model, t_model, seed=1)


def test_nnforge_state_dict_loads_into_pytorch():
    torch = pytest.importorskip("torch")
    nf.manual_seed(0)
    nf_model = _mlp(nn)
    t_model = _mlp(torch.nn)
    sd = {k: torch.from_numpy(v.numpy().copy()) for k, v in nf_model.state_dict().items()}
    t_model.load_state_dict(sd)
    _check_same_outputs_and_grads(torch, nf_model, t_model, seed=2)


def test_pytorch_tensors_load_directly():
    torch = pytest.importorskip("torch")
    t_lin = torch.nn.Linear(3, 2)
    lin = nn.Linear(3, 2)
    lin.load_state_dict(t_lin.state_dict())  # CPU torch tensors convert through __array__
    np.testing.assert_array_equal(as_np(lin.weight), t_lin.weight.detach().numpy())
    with pytest.raises(RuntimeError, match='While copying the parameter named "weight"'):
        lin.load_state_dict(dict(t_lin.named_parameters()))  # they require grad
