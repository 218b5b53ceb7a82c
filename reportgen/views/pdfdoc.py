"""The certificate PDF's content as plain data for ``templates/certificate.typ``.

Why data and not markup: every string here (a concept term, a model name, a check message)
may come from a vendor's files. The Typst template reads this document with ``json()`` and
places each string as text, so nothing in it is ever parsed as Typst markup or code.

The content is :func:`reportgen.views.html.page_context` in 'pdf' mode, the same the HTML
page shows, written with the page's own number filters. A run of text is ``[style, text]``
(styles: :data:`STYLES`); a cell or a paragraph is a list of runs.
"""

from __future__ import annotations

import re
from typing import Any

from reportgen.core import numfmt
from reportgen.core.tokentext import token_label
from reportgen.views.filters import fmt_metric

#: how the template draws a run: plain, bold, monospace, muted, on its own muted line
#: ("sub"), an error line, a status pill, a line break
STYLES = ("", "b", "code", "muted", "sub", "err", "status", "br")
ICONS = {"PASS": "✓", "WARN": "!", "FAIL": "✗", "ERROR": "?"}
ZWSP = "\u200b"
_LONG = re.compile(r"\S{18,}")
_BREAK_AFTER = re.compile(r"([._/,=:;)\]|-])(?=\S)")

Run = list[str]


def breakable(text: str) -> str:
    """Long words get break opportunities (zero-width spaces) after dots, underscores and
    the like, and every 16 characters where there are none, so a metric name or a message
    wraps inside its column instead of running into the next one (Typst breaks words only
    at spaces and hyphens)."""
    def split(m: re.Match[str]) -> str:
        word = _BREAK_AFTER.sub(r"\1" + ZWSP, m.group(0))
        return ZWSP.join(re.sub(r"([^\u200b]{16})(?=[^\u200b])", r"\1" + ZWSP, part)
                         for part in word.split(ZWSP))
    return _LONG.sub(split, text)


def run(text: Any, style: str = "") -> Run:
    return [style, breakable(str(text)) if style not in ("status", "br") else str(text)]


def status_run(status: str) -> Run:
    return ["status", str(status)]


def cell(value: Any, kind: str) -> list[Run]:
    """One table cell as the HTML's ``ui.cell`` writes it."""
    if kind == "metric":
        return metric_cell(value)
    if value is None:
        return [run("—", "muted")]
    text = {"num": numfmt.num, "ratio": numfmt.ratio, "pct": numfmt.pct,
            "token": token_label}.get(kind, str)(value)
    return [run(text, "code" if kind in ("code", "token") else "")]


def metric_cell(m: dict[str, Any] | None) -> list[Run]:
    if m is None:
        return [run("—", "muted")]
    if m.get("value") is None:
        return [run("n/a", "muted"), run(m.get("error") or "not computed", "err")]
    out = [run(fmt_metric(m))]
    if m.get("ci"):
        out.append(run(f"CI {numfmt.num(m['ci'][0])} – {numfmt.num(m['ci'][1])}", "sub"))
    return out


ALIGN = {"num": "right", "ratio": "right", "pct": "right", "int": "right", "metric": "right"}


def table(t: Any, size: float = 7.5) -> dict[str, Any]:
    """A :class:`reportgen.views.tables.Table` (rendered unless collapsed: HTML-only)."""
    return {"t": "table", "caption": breakable(t.caption), "size": size,
            "columns": [{"label": breakable(c.label), "align": ALIGN.get(c.kind, "left")}
                        for c in t.columns],
            "rows": [{"cells": [cell(r.get(c.key), c.kind) for c in t.columns]}
                     for r in t.rows]}


def tables(ts: list[Any], size: float = 7.5) -> list[dict[str, Any]]:
    return [table(t, size) for t in ts if not t.collapsed]


def figure(f: Any) -> dict[str, Any]:
    return {"t": "figure", "id": f.id, "alt": f.alt,
            "caption": [run("How to read this chart. ", "b"), run(f.caption)]}


def heading(level: int, text: str) -> dict[str, Any]:
    return {"t": "heading", "level": level, "text": text}


def par(*runs: Run, note: bool = False) -> dict[str, Any]:
    return {"t": "note" if note else "par", "runs": list(runs)}


def items(kind: str, lines: list[Any]) -> dict[str, Any]:
    return {"t": kind, "items": [[run(x)] for x in lines]}
