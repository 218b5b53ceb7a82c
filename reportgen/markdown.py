"""Markdown for text that comes from a certificate: nothing in it can become markup.

A certificate field may hold anything (``<script>``, a pipe that splits a table cell, a
backtick that closes a code span, one of the model card's own markers). :func:`md` escapes
text for a table cell, :func:`code` builds a code span no content can leave.
"""

from __future__ import annotations

import re
from typing import Any

from . import numfmt


def table(head: list[str], rows: list[list[str]], numeric_from: int | None = None,
          numeric_to: int | None = None) -> list[str]:
    """A GitHub-flavoured Markdown table; numeric columns right-aligned."""

    def align(i: int) -> str:
        hi = len(head) if numeric_to is None else numeric_to
        return "---:" if numeric_from is not None and numeric_from <= i < hi else "---"

    return ["| " + " | ".join(head) + " |",
            "|" + "|".join(align(i) for i in range(len(head))) + "|",
            *("| " + " | ".join(r) + " |" for r in rows)]


def fmt_number(v: Any) -> str:
    return md(numfmt.num(v))


def fmt_metric(m: dict[str, Any] | None) -> str:
    """A metric cell: '57.8×', '87.5 %', '0.1342', '1 tensor', or '—' when it was not
    computed (written as the page writes it: :mod:`reportgen.numfmt`)."""
    if not m or m.get("value") is None:
        return "—"
    return md(numfmt.with_unit(m["value"], m.get("unit", "")))


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#])")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def md(text: Any) -> str:
    """Text safe in a Markdown table cell: no HTML, no emphasis, no cell breaks."""
    s = _CONTROL.sub("\ufffd", " ".join(str(text).split()))
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", s)


def code(text: Any) -> str:
    """A code span that ``text`` cannot leave: its fence is one backtick longer than the
    longest run inside, and a pipe is escaped for the table. Text with ``<`` or ``>`` (which
    a code span would show raw, e.g. as one of our markers) becomes plain escaped text."""
    s = _CONTROL.sub("\ufffd", " ".join(str(text).split()))
    if not s or "<" in s or ">" in s:
        return md(s)
    s = s.replace("|", "\\|")
    fence = "`" * (max((len(r) for r in re.findall("`+", s)), default=0) + 1)
    pad = " " if s[0] == "`" or s[-1] == "`" else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def url(link: str) -> str:
    return link.replace(" ", "%20").replace("(", "%28").replace(")", "%29").replace("<", "%3C")


