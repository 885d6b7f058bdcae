"""Whether operations record a graph: ``no_grad``, ``enable_grad``, ``set_grad_enabled``."""
from __future__ import annotations

import functools
import inspect
import threading

class _State(threading.local):
    enabled = True  # every thread starts with grad enabled


_state = _State()


def is_grad_enabled() -> bool:
    return _state.enabled


def _set(mode: bool) -> None:
    _state.enabled = bool(mode)


class _GradMode:
    _mode = True

    def __new__(cls, *args):
        # ``@no_grad`` without parentheses: called with the function itself.
        if cls is not set_grad_enabled and len(args) == 1 and callable(args[0]):
            return object.__new__(cls)(args[0])
        return object.__new__(cls)

    def __enter__(self):
        self._prev = is_grad_enabled()
        _set(self._mode)
        return self

    def __exit__(self, *exc):
        _set(self._prev)
        return False

    def __call__(self, fn):
        """Use as a decorator: the function (or each step of a generator) runs in this mode."""
        mode = self.__class__
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def gen_wrapper(*args, **kwargs):
                gen = fn(*args, **kwargs)
                send, value = gen.send, None
                while True:
                    try:
                        with mode():
                            out = send(value)
                    except StopIteration as stop:
                        return stop.value
                    try:
                        value, send = (yield out), gen.send
                    except GeneratorExit:
                        gen.close()
                        raise
                    except BaseException as e:  # thrown into us: pass it on inside the mode
                        value, send = e, gen.throw
            return gen_wrapper

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with mode():
                return fn(*args, **kwargs)
        return wrapper


class no_grad(_GradMode):
    """Context manager (or decorator) in which no graph is recorded.

    >>> import nnforge as nf
    >>> x = nf.ones(2, requires_grad=True)
    >>> with nf.no_grad():
    ...     y = x * 2
    >>> y.requires_grad
    False
    """
    _mode = False


class enable_grad(_GradMode):
    """Context manager (or decorator) that records a graph, even inside no_grad."""
    _mode = True


class set_grad_enabled(_GradMode):
    """Sets grad mode at once; also usable as a context manager that restores it."""

    def __init__(self, mode: bool):
        self._prev = is_grad_enabled()
        self._mode = bool(mode)
        _set(self._mode)

    def __enter__(self):
        return self

    def __call__(self, fn):
        raise TypeError("set_grad_enabled is not a decorator; use no_grad or enable_grad")
