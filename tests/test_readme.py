"""The Python examples of the README's "Example" section run as written, top to bottom, in one
namespace (each block may use what an earlier one defined, as a reader following along would).
Later sections show API shapes with names the reader supplies, and are not run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Example"):text.index("\n## ", text.index("## Example") + 1)]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_readme_has_the_examples() -> None:
    blocks = python_blocks()
    assert len(blocks) >= 4
    assert any("gaussdiv.compare(" in b for b in blocks)
    assert any("Gaussian.diag(mu, logvar=logvar)" in b and "import torch" in b for b in blocks)


def test_readme_examples_run(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("pandas")
    namespace: dict[str, object] = {}
    for block in python_blocks():
        exec(compile(block, str(README), "exec"), namespace)
    out = capsys.readouterr().out
    assert "(100,) True" in out
    assert out.strip().splitlines()[-1] == "c"  # the drifted column is named first
