"""The API reference's source: every public docstring is complete, and its examples run.

- Every ``>>>`` example in a docstring of ``src/gaussdiv`` runs (doctest, one test per module;
  modules of an extra that is not installed are skipped). Examples run in this process, so one
  that changes global state (``gaussdiv.torch.register()``) is marked ``+SKIP`` and shown run
  on a docs page instead, where tests/test_docs.py runs it in a subprocess.
- Every public function (``gaussdiv.__all__`` and ``gaussdiv.torch.register``) says what it
  takes (``Args:``), what it gives (``Returns:``), what it refuses (``Raises:``) and shows it
  (``>>>``), and its return annotation names a type (not ``Any``: array results are
  :data:`gaussdiv.types.Array`). Public classes show an example; result records document each
  field under ``Attributes:``.
"""

from __future__ import annotations

import dataclasses
import doctest
import importlib
import inspect
import pkgutil
from pathlib import Path

import numpy as np
import pytest

import gaussdiv

SRC = Path(gaussdiv.__file__).parent

#: Modules importable only with an extra: (module prefix, the extra's import).
_NEEDS = (("gaussdiv.torch", "torch"), ("gaussdiv.backends.torch_backend", "torch"),
          ("gaussdiv.backends.jax_backend", "jax"), ("gaussdiv.lazy", "dask"),
          ("gaussdiv.cli", "click"))

_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _modules_with_examples() -> list[str]:
    names = ["gaussdiv"] + [m.name for m in pkgutil.walk_packages([str(SRC)], "gaussdiv.")]
    found = []
    for name in names:
        relative = name.split(".")[1:]
        path = SRC.joinpath(*relative)
        source = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        if source.exists() and ">>>" in source.read_text(encoding="utf-8"):
            found.append(name)
    return sorted(found)


@pytest.mark.parametrize("module_name", _modules_with_examples())
def test_docstring_examples_run(module_name: str) -> None:
    for prefix, extra in _NEEDS:
        if module_name.startswith(prefix):
            pytest.importorskip(extra)
    module = importlib.import_module(module_name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=_FLAGS)
    tests = [t for t in finder.find(module, module_name) if t.examples]
    assert tests, f"{module_name} has '>>>' in its source but no doctest was found"
    with np.errstate(all="raise"), np.printoptions(legacy=False):
        for test in tests:
            runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in " \
                               f"{module_name} (the report is above)"


def _public() -> list[tuple[str, object]]:
    objects = [(name, getattr(gaussdiv, name)) for name in gaussdiv.__all__]
    torch_module = pytest.importorskip("gaussdiv.torch") if _has("torch") else None
    if torch_module is not None:
        objects.append(("torch.register", torch_module.register))
    return objects


def _has(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


_FUNCTIONS = [(n, o) for n, o in _public() if inspect.isfunction(o)]
_CLASSES = [(n, o) for n, o in _public()
            if inspect.isclass(o) and not issubclass(o, BaseException | Warning)]


@pytest.mark.parametrize("name,function", _FUNCTIONS, ids=[n for n, _ in _FUNCTIONS])
def test_public_function_docstring_is_complete(name: str, function: object) -> None:
    doc = inspect.getdoc(function) or ""
    takes_arguments = bool(inspect.signature(function).parameters)  # type: ignore[arg-type]
    wanted = (["Args:"] if takes_arguments else []) + ["Returns:", "Raises:", ">>>"]
    missing = [section for section in wanted if section not in doc]
    assert not missing, f"gaussdiv.{name}'s docstring lacks {missing}"
    returned = inspect.signature(function).return_annotation  # type: ignore[arg-type]
    assert returned not in ("Any", inspect.Signature.empty), \
        f"gaussdiv.{name} is annotated to return {returned!r}"


@pytest.mark.parametrize("name,cls", _CLASSES, ids=[n for n, _ in _CLASSES])
def test_public_class_docstring_is_complete(name: str, cls: type) -> None:
    doc = inspect.getdoc(cls) or ""
    assert ">>>" in doc, f"gaussdiv.{name}'s docstring shows no example"
    if dataclasses.is_dataclass(cls) or issubclass(cls, tuple):
        fields = ([f.name for f in dataclasses.fields(cls)] if dataclasses.is_dataclass(cls)
                  else list(cls._fields))  # type: ignore[attr-defined]
        attributes = doc.split("Attributes:", 1)[1] if "Attributes:" in doc else ""
        undocumented = [f for f in fields if f"{f}:" not in attributes]
        assert not undocumented, f"gaussdiv.{name} does not document {undocumented} " \
                                 "under Attributes:"
