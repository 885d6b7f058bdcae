"""Every example in nnforge's docstrings runs and prints what it says."""
import doctest
import importlib
import pkgutil

import pytest

import nnforge


def _modules():
    names = ["nnforge"]
    for info in pkgutil.walk_packages(nnforge.__path__, "nnforge."):
        if info.name.endswith("__main__"):
            continue
        names.append(info.name)
    return names


def _own_tests(module):
    """Doctests of objects defined in ``module`` (not re-exported from numpy and the like)."""
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = []
    return [t for t in finder.find(module, module.__name__)
            if t.examples and _defined_here(module, t.name)]


def _defined_here(module, qualified_name):
    obj = module
    for part in qualified_name.split(".")[len(module.__name__.split(".")):]:
        obj = getattr(obj, part, None)
        if obj is None:
            return True  # a docstring of a method or property: part of this module's class
    if obj is module:
        return True
    return getattr(obj, "__module__", None) == module.__name__


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in _own_tests(module):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
