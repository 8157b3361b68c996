"""The documentation site (mkdocs.yml, docs/): its examples run, it builds, and it agrees with the
code.

- Every ```python block of docs/**/*.md runs. A page's blocks run in order in one namespace, in
  a fresh Python process whose working directory is a temporary folder (so that examples may
  write files, start a Dask cluster or call ``gaussdiv.torch.register()`` without touching this
  test session), and tracebacks point at the page and line. A page whose blocks import a
  framework that is not installed is skipped (``pytest.importorskip``); so is a page that
  declares ``<!-- docs-test: requires MODULE, ... -->`` for a module it needs indirectly (the
  CLI run as a subprocess needs click). A block whose first line is ``# doc: no-run`` is shown
  but not run (a connection to a real cluster); ``<!-- docs-test: slow -->`` marks a page slow.
- ``mkdocs build --strict`` succeeds (skipped when the docs extra is not installed).
- Every equation number the code cites ("eq. (18)", "eqs. 8–10", …) in src/ and README.md,
  and every number ``gaussdiv derive`` prints, is a numbered identity of docs/derivation.md.
- The measured numbers in the docs' tables are quoted verbatim from README.md and
  benchmarks/RESULTS.md, the plot is the benchmarks' own, and the API page documents every name
  of ``gaussdiv.__all__``.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
DERIVATION = DOCS / "derivation.md"
PAGES = sorted(DOCS.rglob("*.md"))

#: Seconds a page's examples may take (JAX pages: below the 120 s pytest timeout they carry).
PAGE_TIMEOUT_S = 240
JAX_PAGE_TIMEOUT_S = 110

_FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
_DIRECTIVE = re.compile(r"<!--\s*docs-test:\s*(\w+)\s*(.*?)\s*-->")
_NO_RUN = "# doc: no-run"

# Runs a page's blocks (a JSON list of {page, line, code}) in one namespace; each block is
# compiled so that its line numbers are the page's.
_RUNNER = """
import json, sys
namespace = {"__name__": "__main__"}
for block in json.load(open(sys.argv[1], encoding="utf-8")):
    code = "\\n" * (block["line"] - 1) + block["code"]
    exec(compile(code, block["page"], "exec"), namespace)
"""


@dataclass(frozen=True)
class Block:
    page: str  # relative to the repository root
    line: int  # the page's line of the block's first code line
    code: str

    @property
    def runs(self) -> bool:
        return not self.code.lstrip().startswith(_NO_RUN)


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    return [Block(relative(page), text.count("\n", 0, m.start(1)) + 1, m.group(1))
            for m in _FENCE.finditer(text)]


def directives(page: Path) -> dict[str, str]:
    text = page.read_text(encoding="utf-8")
    return {m.group(1): m.group(2) for m in _DIRECTIVE.finditer(text)}


def required_modules(page: Path) -> list[str]:
    """The top-level modules a page's runnable blocks import, and those it declares."""
    names: list[str] = []
    for block in blocks(page):
        if not block.runs:
            continue
        for node in ast.walk(ast.parse(block.code)):
            if isinstance(node, ast.Import):
                names += [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.append(node.module.split(".")[0])
    declared = directives(page).get("requires", "")
    names += [name.strip() for name in declared.split(",") if name.strip()]
    return list(dict.fromkeys(names))


def page_params() -> list[object]:
    params = []
    for page in PAGES:
        if not any(b.runs for b in blocks(page)):
            continue
        marks = []
        if "slow" in directives(page):
            marks.append(pytest.mark.slow)
        if "jax" in required_modules(page):
            marks.append(pytest.mark.timeout(120))
        params.append(pytest.param(page, id=relative(page), marks=marks))
    return params


def source_env() -> dict[str, str]:
    """The environment for subprocesses: this checkout's src/ first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"),
                                                      env.get("PYTHONPATH")]))
    env.setdefault("MPLBACKEND", "Agg")
    env["NO_MKDOCS_2_WARNING"] = "1"
    return env


# -------------------------------------------------------------------------------- examples


def test_the_pages_have_examples() -> None:
    runnable = {relative(p): sum(b.runs for b in blocks(p)) for p in PAGES}
    assert runnable["docs/derivation.md"] >= 2
    assert runnable["docs/index.md"] >= 1
    assert sum(runnable.values()) >= 25
    for page in PAGES:
        for block in blocks(page):
            ast.parse(block.code)  # no-run blocks must at least be Python


@pytest.mark.parametrize("page", page_params())
def test_page_examples_run(page: Path, tmp_path: Path) -> None:
    for module in required_modules(page):
        pytest.importorskip(module, reason=f"{relative(page)} needs {module}")
    runnable = [b for b in blocks(page) if b.runs]
    script = tmp_path / "blocks.json"
    script.write_text(json.dumps([b.__dict__ for b in runnable]), encoding="utf-8")
    timeout = JAX_PAGE_TIMEOUT_S if "jax" in required_modules(page) else PAGE_TIMEOUT_S
    run = subprocess.run([sys.executable, "-c", _RUNNER, str(script)], cwd=tmp_path,
                         env=source_env(), capture_output=True, text=True, timeout=timeout)
    if run.returncode != 0:
        pytest.fail(f"{relative(page)}: its examples failed (exit {run.returncode})\n"
                    f"--- stdout ---\n{run.stdout[-4000:]}\n--- stderr ---\n"
                    f"{run.stderr[-8000:]}", pytrace=False)


# ------------------------------------------------------------------------------- the build


@pytest.mark.slow
def test_site_builds_strict(tmp_path: Path) -> None:
    for module, what in (("mkdocs", "mkdocs"), ("material", "mkdocs-material"),
                         ("mkdocstrings_handlers.python", "mkdocstrings[python]")):
        pytest.importorskip(module, reason=f"{what} is not installed: pip install -e '.[docs]'")
    site = tmp_path / "site"
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
                          str(ROOT / "mkdocs.yml"), "--site-dir", str(site)],
                         cwd=ROOT, env=source_env(), capture_output=True, text=True, timeout=280)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-8000:]
    assert "WARNING" not in output, output[-8000:]
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    assert 'id="gaussdiv.kl"' in api
    assert ":func:" not in api and ":class:" not in api  # Sphinx roles were rewritten


# ---------------------------------------------------------------------- equation numbers

_CITE = re.compile(r"\b[Ee]qs?\.\s*")
# "(18)", "(13) = d", "(18) = tr(Σ₂⁻¹Σ₁)"; or bare "8", "8–10" (not "2(x − μ)").
_PAREN_ITEM = re.compile(r"\((\d+[a-z]?)\)(?:\s*=\s*[^,;()]*(?:\([^()]*\))?[^,;()]*)?")
_BARE_ITEM = re.compile(r"(\d+)(?:\s*[–-]\s*(\d+))?(?![\w(])")
_SEPARATOR = re.compile(r"\s*(?:,\s*(?:and\s+)?|and\s+|/)\s*")


def cited_numbers(text: str) -> set[str]:
    """Every equation number cited in ``text``: eq. (N), eq. N, eqs. (N), (M) and (K),
    eqs. N–M (a range: each number in it), eq. (N)/(M)."""
    found: set[str] = set()
    for cite in _CITE.finditer(text):
        pos = cite.end()
        item = _PAREN_ITEM if text.startswith("(", pos) else _BARE_ITEM
        while (m := item.match(text, pos)) is not None:
            if item is _BARE_ITEM and m.group(2):
                found.update(str(n) for n in range(int(m.group(1)), int(m.group(2)) + 1))
            else:
                found.add(m.group(1))
            sep = _SEPARATOR.match(text, m.end())
            if sep is None:
                break
            pos = sep.end()
    return found


def citing_files() -> list[Path]:
    src = ROOT / "src" / "gaussdiv"
    return [ROOT / "README.md", *sorted(src.rglob("*.py")), *sorted(src.rglob("*.json"))]


def numbered_identities() -> set[str]:
    """The numbers of docs/derivation.md's identities: <div class="eq" id="eq-N">…(N)</div>."""
    text = DERIVATION.read_text(encoding="utf-8")
    found = re.findall(r'<div class="eq[^"]*" id="eq-(\w+)"[^>]*>.*?'
                       r'<span class="eqno">\((\w+)\)</span></div>', text)
    for anchor, shown in found:
        assert anchor == shown, f"identity #eq-{anchor} is shown as ({shown})"
    numbers = [anchor for anchor, _ in found]
    assert len(numbers) == len(set(numbers)), "an equation number is used twice"
    return set(numbers)


def test_citation_parser() -> None:
    assert cited_numbers("(eq. 8) and (eq. 10)") == {"8", "10"}
    assert cited_numbers("(eqs. 4, 8–10 of the note)") == {"4", "8", "9", "10"}
    assert cited_numbers("eq. (3)/(11): KL") == {"3", "11"}
    assert cited_numbers("Eqs. (13) = d, (18) = tr(Σ₂⁻¹Σ₁), (19) = 0, (20), (11) and (23) of"
                         ) == {"13", "18", "19", "20", "11", "23"}
    assert cited_numbers("eq. (19), 2(x−μ₁)ᵀΣ₂⁻¹(μ₁−μ₂), is read off eq. (16)") == {"19", "16"}
    assert cited_numbers("frequency, sequence, eq.") == set()


def test_cited_equations_are_on_the_derivation_page() -> None:
    on_page = numbered_identities()
    cited: dict[str, list[str]] = {}
    for path in citing_files():
        for number in cited_numbers(path.read_text(encoding="utf-8")):
            cited.setdefault(number, []).append(relative(path))
    assert {"8", "10", "11", "13", "23"} <= set(cited)  # the parser still finds the citations
    missing = {n: files for n, files in cited.items() if n not in on_page}
    assert not missing, f"cited but not numbered on docs/derivation.md: {missing}"


def test_derive_numbers_are_on_the_derivation_page(tmp_path: Path) -> None:
    pytest.importorskip("click", reason="gaussdiv derive needs the cli extra")
    run = subprocess.run([sys.executable, "-m", "gaussdiv", "derive", "-n", "200", "--json"],
                         cwd=tmp_path, env=source_env(), capture_output=True, text=True,
                         timeout=120)
    assert run.returncode in (0, 1), run.stderr[-4000:]
    names = [r["name"] for r in json.loads(run.stdout)["results"]]
    numbers = {m.group(1) for name in names if (m := re.fullmatch(r"\((\w+)\)", name))}
    assert {"13", "18", "19", "20", "11", "23"} <= numbers
    assert numbers <= numbered_identities()


# ------------------------------------------------------------------ quoted measurements

#: Pages whose tables report measurements, each row quoted from README.md or RESULTS.md.
MEASURED_PAGES = ("accuracy.md", "performance.md", "compare.md", "divergences.md")
_MEASURED = re.compile(r"\d\.\d|\d ?%|\de[-+]?\d|\d ?(?:ns|µs|ms|s|MiB|MB)\b|\d×")


def test_measured_numbers_are_quoted_verbatim() -> None:
    sources = set()
    for path in (ROOT / "README.md", ROOT / "benchmarks" / "RESULTS.md"):
        sources |= {line.rstrip() for line in path.read_text(encoding="utf-8").splitlines()}
    for name in MEASURED_PAGES:
        rows = [line.rstrip() for line in (DOCS / name).read_text(encoding="utf-8").splitlines()
                if line.startswith("|") and _MEASURED.search(line)]
        stray = [row for row in rows if row not in sources]
        assert not stray, (f"docs/{name}: table rows with measurements that README.md and "
                           f"benchmarks/RESULTS.md do not contain: {stray}")


def test_plot_is_the_benchmarks_plot() -> None:
    copy = DOCS / "images" / "kl_scaling.png"
    assert copy.read_bytes() == (ROOT / "benchmarks" / "kl_scaling.png").read_bytes(), (
        "benchmarks/kl_scaling.png changed: cp benchmarks/kl_scaling.png docs/images/")


def test_api_page_documents_every_public_name() -> None:
    import gaussdiv

    documented = set(re.findall(r"^::: gaussdiv\.(\w+)\s*$", (DOCS / "api.md").read_text(
        encoding="utf-8"), re.M))
    assert set(gaussdiv.__all__) <= documented, set(gaussdiv.__all__) - documented
