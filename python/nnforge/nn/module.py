"""``Module``: the base class of every layer and model, with PyTorch's semantics.

A module owns three kinds of state, each kept in its own ordered dict so that
names, order and ``state_dict`` keys match PyTorch's exactly:

- ``_parameters``: Parameters (trainable weights), registered by assigning a
  ``Parameter`` attribute or by ``register_parameter``;
- ``_buffers``: tensors that are state but not trained (running statistics),
  registered by ``register_buffer``; non-persistent ones stay out of
  ``state_dict``;
- ``_modules``: child modules, registered by assigning a Module attribute.

Names are dotted paths through the tree (``"encoder.0.weight"``), in the order
the attributes were assigned.
"""
from __future__ import annotations

import itertools
from collections import OrderedDict, namedtuple
from typing import Any, Callable, Iterator

from .. import dtypes as _dt
from ..autograd.grad_mode import no_grad
from ..device import as_device
from ..ops import creation
from ..tensor import Tensor
from .parameter import Parameter

__all__ = ["Module", "RemovableHandle"]


class _IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What ``load_state_dict`` returns: the keys it missed and the keys it did not use."""

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


class RemovableHandle:
    """Returned by the ``register_*_hook`` methods; ``remove()`` unregisters the hook."""

    _next_id = itertools.count()

    def __init__(self, *hook_dicts: dict):
        self.id = next(RemovableHandle._next_id)
        self._dicts = hook_dicts

    def remove(self) -> None:
        for d in self._dicts:
            d.pop(self.id, None)

    def __enter__(self) -> "RemovableHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def _addindent(text: str, spaces: int) -> str:
    """Indents every line of ``text`` but the first (for nested reprs)."""
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    pad = " " * spaces
    return lines[0] + "\n" + "\n".join(pad + line for line in lines[1:])


def _check_name(kind: str, name, owner: "Module") -> None:
    if not isinstance(name, str):
        raise TypeError(f"{kind} name should be a string, got {type(name).__name__}")
    if name == "":
        raise KeyError(f'{kind} name can\'t be empty string ""')
    if "." in name:
        raise KeyError(f'{kind} name can\'t contain ".", got: {name}')


class Module:
    """Base class for all neural-network modules.

    Subclasses call ``super().__init__()`` first, assign their layers and
    Parameters as attributes, and implement ``forward``:

    >>> import nnforge as nf
    >>> from nnforge import nn
    >>> class MLP(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc1 = nn.Linear(4, 8)
    ...         self.fc2 = nn.Linear(8, 2)
    ...     def forward(self, x):
    ...         return self.fc2(self.fc1(x).relu())
    >>> model = MLP()
    >>> [name for name, _ in model.named_parameters()]
    ['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias']
    >>> tuple(model(nf.randn(3, 4)).shape)
    (3, 2)
    """

    training: bool
    _version = 1  # of the state_dict layout, for modules that change it later

    def __init__(self, *args, **kwargs):
        if args or kwargs:
            raise TypeError(f"{type(self).__name__}.__init__() got unexpected arguments: "
                            f"{args!r} {kwargs!r}")
        set_ = object.__setattr__
        set_(self, "training", True)
        set_(self, "_parameters", OrderedDict())
        set_(self, "_buffers", OrderedDict())
        set_(self, "_non_persistent_buffers_set", set())
        set_(self, "_modules", OrderedDict())
        set_(self, "_forward_pre_hooks", OrderedDict())
        set_(self, "_forward_pre_hooks_with_kwargs", set())
        set_(self, "_forward_hooks", OrderedDict())
        set_(self, "_forward_hooks_with_kwargs", set())

    # ------------------------------------------------------------------ forward
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required '
                                  '"forward" function')

    def __call__(self, *args, **kwargs):
        pre, post = self._forward_pre_hooks, self._forward_hooks
        if not pre and not post:
            return self.forward(*args, **kwargs)
        for hook_id, hook in list(pre.items()):
            if hook_id in self._forward_pre_hooks_with_kwargs:
                result = hook(self, args, kwargs)
                if result is not None:
                    if not (isinstance(result, tuple) and len(result) == 2):
                        raise RuntimeError("a forward pre-hook registered with with_kwargs=True "
                                           f"must return None or (args, kwargs), got {result!r}")
                    args, kwargs = result
            else:
                result = hook(self, args)
                if result is not None:
                    args = result if isinstance(result, tuple) else (result,)
        output = self.forward(*args, **kwargs)
        for hook_id, hook in list(post.items()):
            if hook_id in self._forward_hooks_with_kwargs:
                result = hook(self, args, kwargs, output)
            else:
                result = hook(self, args, output)
            if result is not None:
                output = result
        return output

    def register_forward_pre_hook(self, hook: Callable, *, prepend: bool = False,
                                  with_kwargs: bool = False) -> RemovableHandle:
        """Calls ``hook(module, args)`` before ``forward``; a returned value replaces
        the positional arguments (a non-tuple is wrapped in a 1-tuple). With
        ``with_kwargs=True`` the hook is ``hook(module, args, kwargs)`` and may
        return ``(args, kwargs)``."""
        handle = RemovableHandle(self._forward_pre_hooks)
        self._forward_pre_hooks[handle.id] = hook
        if with_kwargs:
            self._forward_pre_hooks_with_kwargs.add(handle.id)
        if prepend:
            self._forward_pre_hooks.move_to_end(handle.id, last=False)
        return handle

    def register_forward_hook(self, hook: Callable, *, prepend: bool = False,
                              with_kwargs: bool = False) -> RemovableHandle:
        """Calls ``hook(module, args, output)`` after ``forward``; a returned value
        replaces the output. With ``with_kwargs=True``: ``hook(module, args, kwargs, output)``."""
        handle = RemovableHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = hook
        if with_kwargs:
            self._forward_hooks_with_kwargs.add(handle.id)
        if prepend:
            self._forward_hooks.move_to_end(handle.id, last=False)
        return handle

    # ------------------------------------------------------------------ registration
    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Adds ``param`` under ``name`` (``None`` registers an absent parameter, as
        ``Linear(bias=False)`` does for ``bias``)."""
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign parameter before Module.__init__() call")
        _check_name("parameter", name, self)
        if hasattr(self, name) and name not in self._parameters:
            raise KeyError(f"attribute '{name}' already exists")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign '{type(param).__module__}.{type(param).__name__}' "
                            f"object to parameter '{name}' (nnforge.nn.Parameter or None required)")
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Adds a tensor that is module state but not a parameter (e.g. running
        statistics). Persistent buffers are saved in ``state_dict``."""
        if "_buffers" not in self.__dict__:
            raise AttributeError("cannot assign buffer before Module.__init__() call")
        _check_name("buffer", name, self)
        if hasattr(self, name) and name not in self._buffers:
            raise KeyError(f"attribute '{name}' already exists")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign '{type(tensor).__name__}' object to buffer '{name}' "
                            "(nnforge Tensor or None required)")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def add_module(self, name: str, module: "Module | None") -> None:
        """Adds a child module, reachable as the attribute ``name``."""
        if "_modules" not in self.__dict__:
            raise AttributeError("cannot assign module before Module.__init__() call")
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        _check_name("module", name, self)
        if hasattr(self, name) and name not in self._modules:
            raise KeyError(f"attribute '{name}' already exists")
        self._modules[name] = module

    register_module = add_module

    def __setattr__(self, name: str, value: Any) -> None:
        d = self.__dict__
        params = d.get("_parameters")
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            self._forget(name, keep="_parameters")
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as parameter '{name}' "
                                "(nnforge.nn.Parameter or None expected)")
            params[name] = None
        elif isinstance(value, Module):
            if d.get("_modules") is None:
                raise AttributeError("cannot assign module before Module.__init__() call")
            self._forget(name, keep="_modules")
            d["_modules"][name] = value
        elif d.get("_modules") is not None and name in d["_modules"]:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as child module "
                                f"'{name}' (nnforge.nn.Module or None expected)")
            d["_modules"][name] = None
        elif d.get("_buffers") is not None and name in d["_buffers"]:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{type(value).__name__}' as buffer '{name}' "
                                "(nnforge Tensor or None expected)")
            d["_buffers"][name] = value
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name: str, keep: str) -> None:
        """Removes ``name`` from every store but ``keep`` (an attribute changes kind)."""
        d = self.__dict__
        d.pop(name, None)
        for store in ("_parameters", "_buffers", "_modules"):
            if store != keep:
                d[store].pop(name, None)
        d["_non_persistent_buffers_set"].discard(name)

    def __getattr__(self, name: str):
        # Only called when normal lookup fails: look in the three stores.
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            if store in d and name in d[store]:
                return d[store][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for store in ("_parameters", "_buffers", "_modules"):
            if name in self.__dict__.get(store, ()):
                del self.__dict__[store][name]
                self._non_persistent_buffers_set.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        keys = list(super().__dir__())
        for store in ("_parameters", "_buffers", "_modules"):
            keys += list(self.__dict__.get(store, {}))
        return sorted(k for k in set(keys) if not k[0].isdigit())

    # ------------------------------------------------------------------ traversal
    def named_modules(self, memo: set | None = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[tuple[str, "Module"]]:
        """Pre-order walk over this module and all below it, as (dotted name, module);
        a module reachable twice is yielded once unless ``remove_duplicate=False``."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            sub = prefix + ("." if prefix else "") + name
            yield from module.named_modules(memo, sub, remove_duplicate)

    def modules(self) -> Iterator["Module"]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self) -> Iterator["Module"]:
        for _, m in self.named_children():
            yield m

    def _named_members(self, store: str, prefix: str, recurse: bool, remove_duplicate: bool):
        seen = set()
        mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) \
            if recurse else [(prefix, self)]
        for mod_prefix, module in mods:
            for name, value in module.__dict__[store].items():
                if value is None:
                    continue
                if remove_duplicate:
                    if id(value) in seen:
                        continue
                    seen.add(id(value))
                yield mod_prefix + ("." if mod_prefix else "") + name, value

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, Parameter) pairs; a shared Parameter is yielded once, under
        the first name it is reached by."""
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Tensor]]:
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def get_submodule(self, target: str) -> "Module":
        """The module at a dotted path (``"encoder.layers.0"``); ``""`` is this module."""
        if target == "":
            return self
        mod = self
        walked = []
        for item in target.split("."):
            if mod._modules.get(item) is None:
                where = ".".join(walked) or type(self).__name__
                raise AttributeError(f"get_submodule: {where} has no submodule '{item}' "
                                     f"(looking for '{target}')")
            mod = mod._modules[item]
            walked.append(item)
        return mod

    def _get_member(self, target: str, store: str, kind: str):
        mod_path, _, name = target.rpartition(".")
        mod = self.get_submodule(mod_path)
        value = mod.__dict__[store].get(name)
        if value is None:
            raise AttributeError(f"get_{kind}: '{mod_path or type(self).__name__}' has no "
                                 f"{kind} '{name}'")
        return value

    def get_parameter(self, target: str) -> Parameter:
        return self._get_member(target, "_parameters", "parameter")

    def get_buffer(self, target: str) -> Tensor:
        return self._get_member(target, "_buffers", "buffer")

    # ------------------------------------------------------------------ state dict
    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:
        """Writes this module's own parameters and persistent buffers (not its
        children's). Override to change how a module saves itself."""
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = b if keep_vars else b.detach()

    def state_dict(self, *, destination: dict | None = None, prefix: str = "",
                   keep_vars: bool = False) -> "OrderedDict[str, Tensor]":
        """Every parameter and persistent buffer by dotted name, as tensors that share
        storage with the module but are detached from the graph (``keep_vars=True``
        gives the Parameters themselves). A shared Parameter appears under each name."""
        if destination is None:
            destination = OrderedDict()
        self._save_to_state_dict(destination, prefix, keep_vars)
        for name, module in self._modules.items():
            if module is not None:
                module.state_dict(destination=destination, prefix=prefix + name + ".",
                                  keep_vars=keep_vars)
        return destination

    def _load_from_state_dict(self, state_dict, prefix: str, local_metadata: dict, strict: bool,
                              missing_keys: list, unexpected_keys: list, error_msgs: list,
                              assign: bool = False) -> None:
        """Loads this module's own entries (keys ``prefix + name``), recording what
        is missing, what is not used, and size mismatches. Override to accept old
        checkpoint layouts."""
        local = {name: p for name, p in self._parameters.items() if p is not None}
        local.update((name, b) for name, b in self._buffers.items()
                     if b is not None and name not in self._non_persistent_buffers_set)
        for name, current in local.items():
            key = prefix + name
            if key not in state_dict:
                missing_keys.append(key)
                continue
            value = state_dict[key]
            try:
                src = _as_tensor(value)
            except TypeError as e:
                error_msgs.append(f'While copying the parameter named "{key}", {e}')
                continue
            if tuple(src.shape) != tuple(current.shape):
                error_msgs.append(f"size mismatch for {key}: copying a param with shape "
                                  f"{tuple(src.shape)} from checkpoint, the shape in current "
                                  f"model is {tuple(current.shape)}.")
                continue
            if assign:
                self._assign_loaded(name, current, src)
            else:
                with no_grad():
                    current.copy_(src)

        for key in state_dict:
            if not key.startswith(prefix):
                continue
            head = key[len(prefix):].split(".", 1)[0]
            if head not in self._modules and head not in local:
                unexpected_keys.append(key)

    def _assign_loaded(self, name: str, current: Tensor, src: Tensor) -> None:
        """``load_state_dict(assign=True)``: the loaded tensor replaces the old one."""
        if name in self._parameters:
            self._parameters[name] = Parameter(src.detach(), current.requires_grad)
        else:
            self._buffers[name] = src.detach()

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Copies values from ``state_dict`` (nnforge Tensors or numpy arrays, by
        dotted name) into this module's parameters and buffers, in place and cast to
        their dtypes.

        Shape mismatches always raise. With ``strict=True`` missing and unexpected
        keys raise too; the RuntimeError lists every problem. Returns
        ``(missing_keys, unexpected_keys)``. With ``assign=True`` the loaded
        tensors replace the module's instead of being copied into them.
        """
        if not hasattr(state_dict, "keys") or not hasattr(state_dict, "__getitem__"):
            raise TypeError(f"load_state_dict: expected a mapping of names to tensors, got "
                            f"{type(state_dict).__name__}")
        missing, unexpected, errors = [], [], []
        # A module shared under two names loads under both (its keys appear twice in
        # a state_dict); each key is checked only by the module its prefix leads to.
        for mod_prefix, module in self.named_modules(remove_duplicate=False):
            prefix = mod_prefix + "." if mod_prefix else ""
            module._load_from_state_dict(state_dict, prefix, {}, strict, missing, unexpected,
                                         errors, assign)
        if strict:
            if unexpected:
                errors.insert(0, "Unexpected key(s) in state_dict: {}. ".format(
                    ", ".join(f'"{k}"' for k in unexpected)))
            if missing:
                errors.insert(0, "Missing key(s) in state_dict: {}. ".format(
                    ", ".join(f'"{k}"' for k in missing)))
        if errors:
            raise RuntimeError("Error(s) in loading state_dict for {}:\n\t{}".format(
                type(self).__name__, "\n\t".join(errors)))
        return _IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------ modes and grads
    def train(self, mode: bool = True) -> "Module":
        """Sets training mode (dropout active, batch statistics) here and below."""
        if not isinstance(mode, bool):
            raise ValueError(f"train: mode is expected to be a bool, got {type(mode).__name__}")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> "Module":
        """Sets evaluation mode; same as ``train(False)``."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clears the ``.grad`` of every parameter (sets it to None, or to zeros)."""
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad = p.grad.detach()
                p.grad.zero_()

    def apply(self, fn: Callable[["Module"], None]) -> "Module":
        """Calls ``fn`` on every submodule (children first) and then on this module."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------------ device / dtype
    def _apply(self, fn: Callable[[Tensor], Tensor]) -> "Module":
        """Converts every parameter, gradient and buffer with ``fn``. Parameters keep
        their identity (optimizers hold them): their storage is replaced in place."""
        for module in self.modules():
            for p in module._parameters.values():
                if p is None:
                    continue
                with no_grad():
                    new = fn(p)
                    if new is not p:
                        p.data = new.data
                        p.device = new.device
                    if p.grad is not None:
                        p.grad = fn(p.grad).detach()
            for name, b in module._buffers.items():
                if b is not None:
                    with no_grad():
                        module._buffers[name] = fn(b)
        return self

    def to(self, *args, **kwargs) -> "Module":
        """``to(device)``, ``to(dtype)``, ``to(device, dtype)`` or ``to(tensor)``:
        moves parameters and buffers; a dtype applies to floating-point ones only."""
        device = kwargs.pop("device", None)
        dtype = kwargs.pop("dtype", None)
        kwargs.pop("non_blocking", None)
        if kwargs:
            raise TypeError(f"to: unexpected arguments {sorted(kwargs)}")
        for a in args:
            if isinstance(a, Tensor):
                device, dtype = a.device, a.dtype
            elif isinstance(a, _dt.dtype) or a in (float, int, bool):
                dtype = a
            else:
                device = a
        if dtype is not None:
            dtype = _dt.as_dtype(dtype)
            if not dtype.is_floating_point:
                raise TypeError(f"Module.to only accepts floating point dtypes, but got "
                                f"desired dtype={dtype}")
        if device is not None:
            device = as_device(device)

        def convert(t: Tensor) -> Tensor:
            out = t
            if dtype is not None and t.is_floating_point():
                out = out.to(dtype)
            if device is not None:
                out = out.to(device)
            return out

        return self._apply(convert)

    def float(self) -> "Module":
        return self.to(_dt.float32)

    def double(self) -> "Module":
        return self.to(_dt.float64)

    def half(self) -> "Module":
        return self.to(_dt.float16)

    def bfloat16(self) -> "Module":
        return self.to(_dt.bfloat16)

    def cpu(self) -> "Module":
        return self.to("cpu")

    def cuda(self, device: int | None = None) -> "Module":
        return self.to("cuda" if device is None else f"cuda:{int(device)}")

    # ------------------------------------------------------------------ printing
    def extra_repr(self) -> str:
        """The text inside this module's parentheses in ``repr`` (override it)."""
        return ""

    def _get_name(self) -> str:
        return type(self).__name__

    def _child_lines(self) -> list[str]:
        return [f"({name}): " + _addindent(module._repr_tree(), 2)
                for name, module in self._modules.items()]

    def __repr__(self) -> str:
        """PyTorch's tree of modules; a module with children adds one last line
        with its parameter counts (shared parameters counted once)."""
        tree = self._repr_tree()
        if not self._modules:
            return tree
        params = list(self.parameters())
        total = sum(p.numel() for p in params)
        trainable = sum(p.numel() for p in params if p.requires_grad)
        return f"{tree}\nTotal params: {total:,} (trainable: {trainable:,})"

    def _repr_tree(self) -> str:
        """The module tree exactly as PyTorch prints it."""
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = self._child_lines()
        lines = extra_lines + child_lines
        body = ""
        if len(extra_lines) == 1 and not child_lines:
            body = extra_lines[0]
        elif lines:
            body = "\n  " + "\n  ".join(lines) + "\n"
        return f"{self._get_name()}({body})"

    def summary(self) -> str:
        """A table of every module (dotted name, class, parameter count) with the
        total, trainable and non-trainable parameter counts; shared parameters
        count once.

        >>> from nnforge import nn
        >>> print(nn.Sequential(nn.Linear(4, 3), nn.ReLU()).summary())
        Name    Type        Params
        --------------------------
        (root)  Sequential      15
        0       Linear          15
        1       ReLU             0
        --------------------------
        Total params: 15
        Trainable params: 15
        Non-trainable params: 0
        """
        rows = [("Name", "Type", "Params")]
        for name, module in self.named_modules():
            n = sum(p.numel() for p in module.parameters())
            rows.append((name or "(root)", type(module).__name__, f"{n:,}"))
        w0 = max(len(r[0]) for r in rows)
        w1 = max(len(r[1]) for r in rows)
        w2 = max(len(r[2]) for r in rows)
        fmt = "{:<%d}  {:<%d}  {:>%d}" % (w0, w1, w2)
        rule = "-" * (w0 + w1 + w2 + 4)
        total = sum(p.numel() for p in self.parameters())
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        lines = [fmt.format(*rows[0]), rule] + [fmt.format(*r) for r in rows[1:]] + [
            rule, f"Total params: {total:,}", f"Trainable params: {trainable:,}",
            f"Non-trainable params: {total - trainable:,}"]
        return "\n".join(line.rstrip() for line in lines)


def _as_tensor(value) -> Tensor:
    """A state_dict value (Tensor, numpy array or anything array-like) as a Tensor."""
    if isinstance(value, Tensor):
        return value
    try:
        return creation.as_tensor(value)
    except Exception as e:  # whatever the foreign object raised, name the key and the type
        raise TypeError(f"expected an nnforge Tensor or a numpy array, got "
                        f"{type(value).__name__} ({e})") from None
