"""A fuzzer of the command line: hypothesis writes the input files and picks the options of
each command, and every run must end the way the CLI promises (gaussdiv.cli.common):

* exit status 0, 1 or 2 — never a Python exception, never a traceback;
* on success, no Python warning (raised, or as a ``...Warning:`` line on stderr);
* with --json and status 0 or 1, stdout is strict JSON that follows the output schema;
* with status 2, exactly one ``Error: ...`` line on stderr, the last one (click's usage lines
  and the commands' notes may come before it);
* a failed command leaves no output file (pairwise -o / --heatmap, demo --out), a file it
  would have replaced unchanged, and never a temporary ``.partial`` file.

A run that breaks a promise only through a known library bug (KNOWN_ISSUES: an exception or
RuntimeWarnings from one library module, each with its strict-xfail reproducer in
test_cli_library_issues.py) is counted under that bug, and every other promise still holds.

Profiles: ``ci`` (the default: a few hundred examples, derandomized so that CI runs are
reproducible, under a minute) and ``large`` (twenty times as many, fresh random examples each
run), chosen with the environment variable GAUSSDIV_FUZZ, e.g.
``GAUSSDIV_FUZZ=large pytest tests/cli/test_cli_fuzz.py``. The number of examples run is
printed in the terminal summary ("CLI fuzz: ...").
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_helpers import FUZZ_EXAMPLES, FUZZ_KNOWN, parse_output, runner
from click.testing import Result
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from gaussdiv.cli.app import cli
from gaussdiv.cli.fitting import ESTIMATORS

PROFILES = {"ci": 1, "large": 20}
PROFILE = os.environ.get("GAUSSDIV_FUZZ", "ci")
if PROFILE not in PROFILES:
    raise ValueError(f"GAUSSDIV_FUZZ={PROFILE!r}: use one of {', '.join(PROFILES)}")

def fuzz(examples: int) -> Callable[[Any], Any]:
    """Hypothesis settings of one fuzz test: ``examples`` in the ci profile (scaled in the
    large one); a deadline far above a run's time (tens of ms) that still catches a hang. CI
    reports a failing example as found: shrinking it can take minutes (each run reads files
    and fits), so only the large profile shrinks."""
    ci = PROFILE == "ci"
    return settings(max_examples=examples * PROFILES[PROFILE], deadline=timedelta(seconds=20),
                    derandomize=ci, database=None, print_blob=True,
                    phases=[Phase.explicit, Phase.generate] if ci else list(Phase),
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


# ---------------------------------------------------------------- running and checking

#: A Python warning printed on stderr (``file.py:12: RuntimeWarning: ...``).
WARNING_LINE = re.compile(r"\b[A-Z]\w*Warning\b")


@dataclass(frozen=True)
class KnownIssue:
    """A library bug generated examples hit, tolerated until it is fixed: an exception of type
    ``exception`` that passed through ``module``, or (``exception`` None) RuntimeWarnings
    raised in ``module``. ``reproducers``: its strict-xfail tests in
    test_cli_library_issues.py, which fail once the bug is gone — then delete them and it."""

    module: str
    reproducers: tuple[str, ...]
    exception: str | None = None

    def explains(self, result: Result, raised: list[warnings.WarningMessage]) -> bool:
        if self.exception is None:
            return bool(raised) and all(issubclass(w.category, RuntimeWarning)
                                        and self.module in w.filename for w in raised)
        exc = result.exception
        return (type(exc).__name__ == self.exception and exc.__traceback__ is not None and
                any(self.module in frame.filename
                    for frame in traceback.extract_tb(exc.__traceback__)))


KNOWN_ISSUES: list[KnownIssue] = []  # none open now: every reproducer passes


def run(args: list[Any], stdin: str | None = None
        ) -> tuple[Result, list[warnings.WarningMessage]]:
    """``gaussdiv ARGS`` in-process, and the warnings it raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = runner().invoke(cli, [str(a) for a in args], input=stdin,
                                 catch_exceptions=True)
    return result, caught


def check(result: Result, raised: list[warnings.WarningMessage], args: list[Any],
          folder: Path, outputs: dict[Path, bytes | None] | None = None) -> None:
    """Every promise of the module docstring; ``outputs``: the files the command may write,
    with the content each had before (None: absent). A run that only breaks a promise by a
    known library issue is counted under it instead."""
    where = (f"\n$ gaussdiv {' '.join(map(str, args))}\nexit {result.exit_code}\n"
             f"stdout: {result.stdout[-1500:]}\nstderr: {result.stderr[-3000:]}")
    escaped = result.exception is not None and not isinstance(result.exception, SystemExit)
    if escaped or (raised and result.exit_code == 0):
        known = next((k for k in KNOWN_ISSUES if k.explains(result, raised)), None)
        if known is not None:
            FUZZ_KNOWN[known.module] += 1
            if escaped:
                return
            raised = []
    if escaped:
        stack = "".join(traceback.format_exception(result.exception))
        raise AssertionError(f"an exception escaped:{where}\n{stack}")
    assert result.exit_code in (0, 1, 2), where
    assert "Traceback" not in result.stderr, where
    if result.exit_code == 0:
        assert not raised, [f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})"
                            for w in raised] + [where]
        assert not WARNING_LINE.search(result.stderr), where
    if "--json" in args and result.exit_code in (0, 1):
        parse_output(result.stdout)
    if result.exit_code == 2:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("Error:")]
        assert len(errors) == 1 and lines[-1] == errors[0], where
    for path, before in (outputs or {}).items():
        if result.exit_code != 0:
            now = path.read_bytes() if path.is_file() else None
            assert now == before, f"{path} changed by a failed command{where}"
    assert not list(folder.rglob("*.partial")), where


def counted(name: str) -> None:
    FUZZ_EXAMPLES[name] += 1


# ---------------------------------------------------------------- numbers

#: Whether an example is clean — every file and option one the command accepts, so that the
#: run reaches the numerics (extreme values included) — or has faults: two in three are clean.
cleanliness = st.sampled_from([True, True, False])

#: Finite values that break naive arithmetic: overflow when squared, underflow, subnormal.
LARGE_AND_SMALL = [0.0, -0.0, 1e300, -1e300, 1e-300, 5e-324, 1e154, 1e-154, 1.7e308, 1e16,
                   -1e-16]
#: ... and the non-finite ones.
EXTREME = [*LARGE_AND_SMALL, math.nan, math.inf, -math.inf]
finite = st.one_of(st.floats(-10, 10), st.integers(-3, 3).map(float),
                   st.sampled_from(LARGE_AND_SMALL))
numbers = st.one_of(finite, st.sampled_from(EXTREME))
positive = st.one_of(st.floats(1e-3, 10), st.sampled_from([1.0, 1e-300, 1e300, 1e-12, 1e12]))
#: Log-variances up to where exp() over- and underflows (±709, ±745) and beyond.
logvars = st.one_of(st.floats(-5, 5), st.sampled_from([-1500.0, 1500.0, 709.0, 710.0, -745.0,
                                                      -746.0, 0.0]))


def vector(d: int, values: st.SearchStrategy[float] = numbers) -> st.SearchStrategy[Any]:
    return st.lists(values, min_size=d, max_size=d).map(np.array)


@st.composite
def matrix(draw: st.DrawFn, d: int, clean: bool = False) -> np.ndarray:
    """A d×d matrix: positive definite (at any scale), near-singular, or a positive diagonal
    when ``clean``; else maybe also indefinite, not symmetric, or of the wrong shape."""
    kinds = ["spd", "spd", "spd", "near-singular", "diagonal"]
    kind = draw(st.sampled_from(kinds if clean else [*kinds, "symmetric", "raw", "shape"]))
    a = draw(st.lists(st.floats(-3, 3), min_size=d * d, max_size=d * d).map(
        lambda v: np.array(v).reshape(d, d)))
    with np.errstate(all="ignore"):
        if kind == "spd":
            return a @ a.T + draw(st.sampled_from([1.0, 1e-3, 1e-12, 1e6, 1e300])) * np.eye(d)
        if kind == "near-singular":
            v = a[:, :1]
            return v @ v.T + draw(st.sampled_from([0.0, 1e-14, 1e-300])) * np.eye(d)
        if kind == "symmetric":
            return (a + a.T) / 2
        if kind == "raw":
            return a
        if kind == "diagonal":
            return np.diag(draw(vector(d, positive if clean else numbers)))
    return np.eye(draw(st.sampled_from([d + 1, max(d - 1, 1)])))


def lower(a: np.ndarray) -> np.ndarray:
    """A lower-triangular factor from a matrix: its lower triangle, diagonal made positive."""
    t = np.tril(a)
    np.fill_diagonal(t, np.abs(np.diag(t)) + 0.5)
    return t


# ---------------------------------------------------------------- Gaussian files

def nested(depth: int) -> Any:
    return [nested(depth - 1)] if depth else 0.5


JUNK = st.one_of(st.text(max_size=5), st.booleans(), st.none(), st.just({"a": [1]}),
                 st.just([[1, 2], [3]]), st.just([]), st.just(10**400), st.just([[[0.5]]]),
                 st.just(nested(40)), st.just(["1", "2"]), st.just([True, 0]))


@st.composite
def gaussian(draw: st.DrawFn, d: int, clean: bool) -> dict[str, Any]:
    """The arrays of a Gaussian in d dimensions, in one of the layouts gaussian_io reads —
    with finite values of the right shapes when ``clean`` —, or junk."""
    layouts = ["cov", "precision", "scale_tril", "precision_tril", "var", "std", "logvar",
               "isotropic", "lowrank", "kronecker"] + ([] if clean else ["junk", "keys"])
    layout = draw(st.sampled_from(layouts))
    values = finite if clean else numbers
    mean: Any = draw(vector(d if clean else draw(st.sampled_from([d, d, d + 1])), values))
    if d == 1 and draw(st.booleans()):
        mean = float(mean[0])
    if layout in ("cov", "precision"):
        return {"mean": mean, layout: draw(matrix(d, clean))}
    if layout in ("scale_tril", "precision_tril"):
        a = draw(matrix(d, clean))
        return {"mean": mean, layout: lower(a) if clean or draw(st.booleans()) else a}
    if layout in ("var", "std"):
        return {"mean": mean, layout: draw(vector(d, positive if clean else numbers))}
    if layout == "logvar":
        return {"mean": mean, "logvar": draw(vector(d, logvars if clean else numbers))}
    if layout == "isotropic":
        return {"mean": mean, "var": draw(positive if clean else numbers)}
    if layout == "lowrank":
        k = draw(st.integers(1, 3))
        factor = draw(vector(d * k, st.floats(-3, 3))).reshape(d, k)
        return {"mean": mean, "factor": factor, "var": draw(vector(d, positive))}
    if layout == "kronecker":
        d1 = draw(st.sampled_from([k for k in range(1, d + 1) if d % k == 0]))
        d2 = d // d1
        return {"mean": draw(vector(d1 * d2, values)), "a": draw(matrix(d1, clean)),
                "b": draw(matrix(d2, clean))}
    if layout == "keys":
        keys = draw(st.lists(st.sampled_from(["cov", "var", "precision", "factor", "x"]),
                             min_size=0, max_size=3, unique=True))
        return {"mean": mean, **{k: np.eye(d) for k in keys}}
    return {draw(st.sampled_from(["mean", "cov", "var"])): draw(JUNK),
            **draw(st.sampled_from([{}, {"mean": [0.0]}, {"cov": [[1.0]]}]))}


def to_json(value: Any) -> Any:
    return value.tolist() if isinstance(value, np.ndarray) else value


@st.composite
def gaussian_file(draw: st.DrawFn, folder: Path, name: str, d: int, clean: bool) -> Path:
    """A Gaussian file in ``folder``: JSON or .npz of :func:`gaussian`, or broken bytes."""
    arrays = draw(gaussian(d, clean))
    kind = draw(st.sampled_from(["json", "json", "npz"] + ([] if clean else ["bytes"])))
    if kind == "bytes":
        path = folder / f"{name}{draw(st.sampled_from(['.json', '.npz', '.txt']))}"
        path.write_bytes(draw(st.sampled_from([
            b"", b"{", b"[1, 2]", b"\xff\xfe{}", b"PK\x03", b"null",
            b'{"mean": [1e999], "cov": [[1]]}', b'{"mean": ' + b"[" * 5000 + b"]" * 5000 + b"}",
            b'{"mean": [0], "var": [' + b"9" * 500 + b"]}"])))
        return path
    if kind == "json":
        path = folder / f"{name}.json"
        path.write_text(json.dumps({k: to_json(v) for k, v in arrays.items()}),
                        encoding="utf-8")
        return path
    path = folder / f"{name}.npz"
    dtype = None if clean else draw(st.sampled_from([None, np.complex128, np.int64, np.float32,
                                                     np.bool_, np.str_]))
    saved = {}
    for k, v in arrays.items():
        try:
            a = np.asarray(v)
            with np.errstate(all="ignore"):
                saved[k] = a.astype(dtype) if dtype is not None and a.dtype.kind == "f" else a
        except (ValueError, TypeError, OverflowError):
            saved[k] = np.asarray(str(v))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.savez(path, **saved)
    return path


DIVERGENCES = ["kl", "kl", "jeffreys", "renyi:0.5", "renyi:2", "renyi:1", "bhattacharyya",
               "hellinger", "wasserstein"]


@fuzz(70)
@given(data=st.data())
def test_fuzz_kl(data: st.DataObject) -> None:
    counted("kl")
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        d = data.draw(st.integers(1, 4), label="d")
        p = data.draw(gaussian_file(folder, "p", d, data.draw(cleanliness)), label="P")
        q = data.draw(gaussian_file(folder, "q", d, data.draw(cleanliness)), label="Q")
        args: list[Any] = ["kl", p, q]
        if data.draw(st.booleans()):
            args += ["--divergence", data.draw(st.sampled_from(DIVERGENCES))]
        if data.draw(st.booleans()):
            args.append("--json")
        check(*run(args), args, folder)


# ---------------------------------------------------------------- sample files

#: Cells a data file may hold besides plain numbers.
ODD_CELLS = ["", "NA", "nan", "-nan", "null", "inf", "-Infinity", "abc", "1_000", "١٢٣", " 1.5 ",
             "1e400", "-1e-400", "0x10", "+.5", "5.", "1e5", '"2,5"', "\u00a01", "1.0.0", "−1",
             "1" * 400, "\x00", '"a\nb"', "１２"]
#: Scales of a column a covariance in float64 can hold, from ordinary to extreme ...
SCALES = [1.0, 1.0, 1.0, 1e-100, 1e100, 1e140, 1e-140]
#: ... and those it cannot (or a constant column).
BAD_SCALES = [0.0, 1e-200, 1e200, 1e300]


@st.composite
def columns(draw: st.DrawFn, n: int, d: int, clean: bool) -> np.ndarray:
    """An (n, d) data matrix: normal columns at random scales and shifts, maybe two nearly
    collinear; when not ``clean``, maybe a scale that float64 cannot hold."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scales = SCALES if clean else SCALES + BAD_SCALES
    with np.errstate(all="ignore"):
        x = rng.standard_normal((n, d)) * np.array(draw(st.lists(
            st.sampled_from(scales), min_size=d, max_size=d)))
        x += np.array(draw(st.lists(st.sampled_from([0.0, 0.0, 3.0, 1e8, -1e100]),
                                    min_size=d, max_size=d)))
        if d > 1 and draw(st.integers(0, 2)) == 0:
            x[:, 1] = x[:, 0] * 2 + rng.standard_normal(n) * draw(st.sampled_from([1e-6,
                                                                                  1e-13]))
    return x


@st.composite
def table(draw: st.DrawFn, names: list[str], clean: bool,
          group: str | None = None) -> list[list[str]]:
    """Rows of text cells under ``names``: :func:`columns`, and a ``group`` column of a few
    labels; when not ``clean``, maybe few rows, odd cells and ragged rows."""
    n = draw(st.sampled_from([12, 30, 60, 100] if clean else [0, 1, 2, 3, 5, 12, 30]))
    data = [name for name in names if name != group]
    x = draw(columns(n, len(data), clean))
    cells = {name: [repr(float(v)) for v in x[:, j]] for j, name in enumerate(data)}
    if group is not None:
        labels = draw(st.lists(st.sampled_from(["a", "b", "c", "10", "2"] if clean else
                                               ["a", "b", "1", "", "NA"]),
                               min_size=2 if clean else 1, max_size=3, unique=clean))
        cells[group] = [labels[i % len(labels)] for i in range(n)]
    rows = [[cells[name][i] for name in names] for i in range(n)]
    if clean or not rows or not names:
        return rows
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(rows) - 1))
        j = draw(st.integers(0, len(names) - 1))
        rows[i][j] = draw(st.sampled_from(ODD_CELLS))
    if draw(st.integers(0, 5)) == 0:
        i = draw(st.integers(0, len(rows) - 1))
        rows[i] = rows[i][:-1] if draw(st.booleans()) else [*rows[i], "1"]
    return rows


def delimited(names: list[str], rows: list[list[str]], delimiter: str,
              header: bool = True) -> str:
    lines = [delimiter.join(names)] if header else []
    lines += [delimiter.join(row) for row in rows]
    return "\n".join(lines) + ("\n" if lines else "")


def sample_file(folder: Path, name: str, names: list[str], rows: list[list[str]],
                kind: str) -> Path:
    """The rows as .csv, .tsv or .npy (the .npy from the cells that are numbers, else the
    text itself as a string array)."""
    if kind == "npy":
        path = folder / f"{name}.npy"
        try:
            array = np.array(rows, dtype=np.float64) if rows else np.zeros((0, len(names)))
        except ValueError:  # text cells, or ragged rows
            array = np.array([",".join(row) for row in rows])
        np.save(path, array)
        return path
    path = folder / f"{name}.{kind}"
    path.write_text(delimited(names, rows, "\t" if kind == "tsv" else ","), encoding="utf-8")
    return path


headers = st.lists(st.sampled_from(["x", "y", "z", "w"]), min_size=1, max_size=4,
                   unique=True)
odd_headers = st.sampled_from([["x", "x"], ["x", ""], [], ["0", "1"], ["x"], ["y", "x"]])


def options(draw: st.DrawFn, clean: bool, choices: dict[str, tuple[list[str], list[str]]],
            rarity: int = 3) -> list[str]:
    """Each option with a chance of 1 in ``rarity``: one of its good values, or when not
    ``clean`` also a bad one."""
    out = []
    for option, (good, bad) in choices.items():
        if draw(st.integers(0, rarity - 1)) == 0:
            out += [option, draw(st.sampled_from(good if clean else good + bad))]
    return out


#: compare's options: (accepted values, rejected values).
COMPARE_OPTIONS = {
    "--divergence": (DIVERGENCES, ["bogus", "renyi:0"]),
    "--fail-above": (["0.1", "-1", "1e308", "0"], ["nan", "inf"]),
    "--fail-p": (["0.05", "1", "0"], ["nan", "2"]),
    "--seed": (["0", "7", str(2**32 - 1)], ["-1", str(2**32), str(2**64)]),
    "--confidence": (["0.9", "0.5"], ["nan", "1"]),
}


@pytest.mark.slow  # 10-20 s: each example fits, resamples and permutes
@fuzz(50)
@given(data=st.data())
def test_fuzz_compare(data: st.DataObject) -> None:
    counted("compare")
    draw = data.draw
    clean = draw(cleanliness, label="clean")
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        odd = not clean and draw(st.integers(0, 3)) == 0
        names = draw(odd_headers if odd else headers, label="columns")
        other = names if clean or draw(st.integers(0, 3)) else draw(odd_headers)
        kinds = draw(st.lists(st.sampled_from(["csv", "csv", "tsv", "npy"]), min_size=2,
                              max_size=2))
        a = sample_file(folder, "a", names, draw(table(names, clean)), kinds[0])
        rows_b = draw(table(other, clean))
        b = sample_file(folder, "b", other, rows_b, kinds[1])
        stdin = None
        if draw(st.integers(0, 5)) == 0:
            b, stdin = Path("-"), delimited(other, rows_b, ",")
        if "npy" in kinds:  # columns named 0, 1, ... in both
            kinds = ["npy", "npy"]
            a = sample_file(folder, "a", names, draw(table(names, clean)), "npy")
            b = sample_file(folder, "b", other, rows_b, "npy")
        args = ["compare", a, b, "--bootstrap", draw(st.sampled_from([0, 5, 20])),
                "--permutations", draw(st.sampled_from([0, 5, 20])),
                "--estimator", draw(st.sampled_from(ESTIMATORS)), "--no-progress",
                *options(draw, clean, COMPARE_OPTIONS)]
        if "--fail-p" in args and "--permutations" in args:
            args[args.index("--permutations") + 1] = 5 if clean else args[
                args.index("--permutations") + 1]
        if draw(st.integers(0, 3)) == 0:
            args += ["--gate", draw(st.sampled_from(["jeffreys", "kl-ab", "ab", "ba"]))]
        if draw(st.integers(0, 3)) == 0:
            chosen = draw(st.lists(st.sampled_from(names or ["x"]), min_size=1, unique=True))
            args += ["--columns", ",".join(chosen if clean else [*chosen, "v"])]
        if draw(st.integers(0, 12)) == 0:
            args += ["--mixture", draw(st.sampled_from(["1", "2"]))]
        for flag in ("--strict", "--json"):
            if draw(st.booleans()):
                args.append(flag)
        check(*run(args, stdin), args, folder)


#: pairwise's options: (accepted values, rejected values).
PAIRWISE_OPTIONS = {
    "--divergence": (DIVERGENCES, ["bogus"]),
    "--top-k": (["1"], ["2", "5", "0"]),
    "--estimator": (list(ESTIMATORS), ["median"]),
}


@fuzz(35)
@given(data=st.data())
def test_fuzz_pairwise(data: st.DataObject) -> None:
    counted("pairwise")
    draw = data.draw
    clean = draw(cleanliness, label="clean")
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        names = ["g", *draw(headers, label="columns")]
        file = sample_file(folder, "data", names, draw(table(names, clean, group="g")),
                           draw(st.sampled_from(["csv", "csv", "tsv"])))
        args: list[Any] = ["pairwise", file, "--by",
                           "g" if clean else draw(st.sampled_from(["g", "g", "x", "v"])),
                           *options(draw, clean, PAIRWISE_OPTIONS)]
        outputs: dict[Path, bytes | None] = {}
        if "--top-k" not in args:
            for option, good, bad, rarity in (("-o", ["m.csv", "m.json"],
                                               ["m.txt", "nowhere/m.csv"], 3),
                                              ("--heatmap", ["h.png"], ["h.jpg"], 8)):
                if draw(st.integers(0, rarity - 1)) == 0:
                    path = folder / draw(st.sampled_from(good if clean else good + bad))
                    if draw(st.integers(0, 3)) == 0 and path.parent.is_dir():
                        path.write_bytes(b"before")
                    outputs[path] = path.read_bytes() if path.is_file() else None
                    args += [option, path]
        if draw(st.integers(0, 3)) == 0:
            args += ["--columns", draw(st.sampled_from(["x", "y,x"] if clean else ["g", "v"]))]
        for flag in ("--strict", "--json", "--force"):
            if draw(st.booleans()):
                args.append(flag)
        result, raised = run(args)
        check(result, raised, args, folder, outputs)
        if result.exit_code == 0:
            assert all(path.is_file() and path.read_bytes() != b"before" for path in outputs)


# ---------------------------------------------------------------- feature files

@st.composite
def feature_array(draw: st.DrawFn, d: int, clean: bool) -> np.ndarray:
    """An (n, d) array of :func:`columns`; when not ``clean``, maybe with few rows, an odd
    value, an odd dtype or another number of axes."""
    n = draw(st.sampled_from([3, 10, 40] if clean else [0, 1, 2, 10]))
    x = draw(columns(n, d, clean))
    if clean:
        return x
    if x.size and draw(st.integers(0, 2)) == 0:
        x[draw(st.integers(0, n - 1)), draw(st.integers(0, d - 1))] = draw(
            st.sampled_from(EXTREME))
    dtype = draw(st.sampled_from([np.float64, np.float64, np.float32, np.float16, np.int64,
                                  np.complex128, np.bool_, np.str_]))
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x = x.astype(dtype)
    shape = draw(st.sampled_from(["2d", "2d", "1d", "3d"]))
    return x.reshape(-1) if shape == "1d" else (x[None] if shape == "3d" else x)


def feature_file(folder: Path, name: str, x: np.ndarray, kind: str, header: bool) -> Path:
    path = folder / f"{name}.{kind}"
    if kind == "npy":
        np.save(path, x)
    elif kind == "npz":
        np.savez(path, **({"features": x} if header else {"a": x}))
    else:
        rows = [[repr(v.item()) if isinstance(v, np.floating) else str(v)
                 for v in np.atleast_1d(row)] for row in x]
        names = [f"f{j}" for j in range(len(rows[0]))] if rows else ["f0"]
        path.write_text(delimited(names, rows, "\t" if kind == "tsv" else ",", header),
                        encoding="utf-8")
    return path


@fuzz(40)
@given(data=st.data())
def test_fuzz_frechet(data: st.DataObject) -> None:
    counted("frechet")
    draw = data.draw
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        d = draw(st.integers(1, 4), label="d")
        files = []
        for label in ("a", "b"):
            clean = draw(cleanliness, label=f"{label} clean")
            x = draw(feature_array(d if clean else draw(st.sampled_from([d, d + 1])), clean),
                     label=label)
            kind = draw(st.sampled_from(["npy", "npy", "npz", "csv", "tsv"]))
            files.append(feature_file(folder, label, x, kind, clean or draw(st.booleans())))
        args: list[Any] = ["frechet", *files]
        if draw(st.booleans()):
            args.append("--json")
        check(*run(args), args, folder)


# ---------------------------------------------------------------- derive and demo

@fuzz(30)
@given(data=st.data())
def test_fuzz_derive(data: st.DataObject) -> None:
    counted("derive")
    draw = data.draw
    clean = draw(cleanliness, label="clean")
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        args: list[Any] = ["derive"]
        if draw(st.integers(0, 3)):
            d = draw(st.integers(1, 4), label="d")
            args += [draw(gaussian_file(folder, "p", d, clean), label="P"),
                     draw(gaussian_file(folder, "q", d, clean), label="Q")]
        args += ["-n", draw(st.sampled_from(["2", "50", "500", "500"] if clean else
                                            [str(10**9), str(10**14), "1e3", "1"]))]
        if draw(st.booleans()):
            args += ["--seed", draw(st.sampled_from(["0", "3"] if clean else
                                                    ["-1", str(2**32)]))]
        if draw(st.booleans()):
            args.append("--json")
        check(*run(args), args, folder)


@fuzz(6)
@given(data=st.data())
def test_fuzz_demo(data: st.DataObject) -> None:
    counted("demo")
    draw = data.draw
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        out = folder / "demo"
        state = draw(st.sampled_from(["new", "file", "foreign", "own"]))
        if state == "file":
            out.write_bytes(b"before")
        elif state != "new":
            out.mkdir()
            (out / ("notes.txt" if state == "foreign" else ".gaussdiv-demo")).write_text("x")
        before = {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()}
        args: list[Any] = ["demo", "--out", out, "-n",
                           draw(st.sampled_from(["2", "300", "300", str(10**9)])),
                           "--estimator", draw(st.sampled_from(ESTIMATORS))]
        for flag in ("--json", "--force"):
            if draw(st.booleans()):
                args.append(flag)
        result, raised = run(args)
        check(result, raised, args, folder)
        if result.exit_code != 0:
            after = {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()}
            assert after == before, f"a failed demo changed its --out folder: {args}"


def test_known_issues_have_their_reproducers():
    import test_cli_library_issues as issues

    for known in KNOWN_ISSUES:
        for name in known.reproducers:
            marks = [m for m in getattr(getattr(issues, name), "pytestmark", [])
                     if m.name == "xfail"]
            assert marks and marks[0].kwargs.get("strict"), (known.module, name)
