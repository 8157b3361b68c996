"""A Griffe extension for the API page, adapting three habits of gaussdiv's docstrings to
mkdocstrings' Google-style parser. Only the docs build loads it (mkdocs.yml); it changes no
source file, and can go once the docstrings follow the parser.

1. Cross-references are Sphinx roles (:func:`gaussdiv.kl`, :class:`~gaussdiv.GaussianError`,
   :mod:`gaussdiv.inference.wishart`), which Markdown renders literally. Each becomes a Markdown
   cross-reference when it names something the API page documents (a name in
   ``gaussdiv.__all__``, or ``gaussdiv.torch.register``), else a code span.
2. ``Returns:`` sections are prose. The parser reads the text before a first-line colon as the
   return type ("Array of shape broadcast(x.shape[:-1], B). Cost" became a type), so each
   Returns block is given an empty type (a leading ": "), and the type shown is the signature's.
3. Shapes are written ``(*batch, d)``, resampled values ``U*`` and samples ``x̄_a``: Markdown
   reads two such asterisks or underscores in a paragraph as emphasis. Outside code spans, the
   asterisk of ``*batch``, of ``(p, q, **options)`` and a trailing one (``U*``, ``se*``), and an
   underscore that could open emphasis (not preceded by a letter or digit), are escaped;
   ``**bold**``, the ``**options:`` items of an Args section and indented code blocks are
   kept, and so is every doctest (``>>>`` lines and their output).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import griffe

_INIT = Path(__file__).resolve().parents[2] / "src" / "gaussdiv" / "__init__.py"
_RETURNS = re.compile(r"^([ \t]*Returns:[ \t]*\n[ \t]+)(?![ \t:])", re.M)
# Code spans and the [text][identifier] references written by ``rewrite``: left as they are.
_VERBATIM = re.compile(r"(``.*?``|`[^`]*`|\]\[[^\]]*\])", re.S)
_EMPHASIS = re.compile(r"\*(?=batch)|\*\*(?=(?:options|kwargs)\))|(?<=[^\s*])\*(?![*\w])"
                       r"|(?<!\w)_(?=\S)")
_SECTION = re.compile(r"(Args|Arguments|Parameters|Returns|Raises|Attributes|Yields|Warns):\s*$")
_ROLE = re.compile(r":(?:py:)?(func|class|meth|mod|data|attr|exc|obj):`(~?)([^`]+)`")


def _public_names() -> set[str]:
    """``gaussdiv.__all__``, read from the source without importing the package."""
    for node in ast.parse(_INIT.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__"
                                                for t in node.targets):
            return set(ast.literal_eval(node.value))
    return set()


PUBLIC = _public_names()
DOCUMENTED = {f"gaussdiv.{name}" for name in PUBLIC} | {"gaussdiv.torch.register"}


def rewrite(text: str) -> str:
    """``text`` with its Sphinx roles, Returns blocks and asterisks adapted (see above)."""

    def replace(match: re.Match[str]) -> str:
        role, tilde, target = match.groups()
        target = target.strip().removesuffix("()")
        shown = target.rsplit(".", 1)[-1] if tilde else target
        full = target if target.startswith("gaussdiv.") else f"gaussdiv.{target}"
        if role in ("func", "class", "exc", "data", "obj") and full in DOCUMENTED:
            return f"[`{shown}`][{full}]"
        return f"`{shown}`"

    text = _RETURNS.sub(r"\1: ", _ROLE.sub(replace, text))
    runs: list[tuple[bool, list[str]]] = []  # (is a code block, lines)
    in_section, previous_blank, in_doctest = False, True, False
    for line in text.split("\n"):
        indent = len(line) - len(line.lstrip(" "))
        if line.strip() and indent == 0:
            in_section = bool(_SECTION.match(line))
        # A doctest (an Examples section's ``>>>`` lines and their output, up to a blank
        # line) is code wherever it stands.
        in_doctest = line.lstrip().startswith(">>>") or (in_doctest and bool(line.strip()))
        code = in_doctest or (bool(line.strip()) and indent >= 4 and not in_section
                              and (previous_blank or (runs and runs[-1][0])))
        if runs and runs[-1][0] == code:
            runs[-1][1].append(line)
        else:
            runs.append((code, [line]))
        previous_blank = not line.strip()
    return "\n".join("\n".join(lines) if code else _escape_emphasis("\n".join(lines))
                     for code, lines in runs)


def _escape_emphasis(text: str) -> str:
    return "".join(part if _VERBATIM.fullmatch(part) else
                   _EMPHASIS.sub(lambda m: "".join("\\" + c for c in m.group(0)), part)
                   for part in _VERBATIM.split(text))


class SphinxRoles(griffe.Extension):
    """Adapts every docstring as it is loaded (see the module docstring)."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rewrite(obj.docstring.value)
