"""The generic table every section renders: columns with a display kind, rows of values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Column:
    key: str
    label: str
    kind: str = "text"  # text | code | num | ratio | pct | int | token | metric


@dataclass
class Table:
    """A table the template renders generically; ``collapsed`` ones are HTML-only details."""

    caption: str
    columns: list[Column]
    rows: list[dict[str, Any]]
    collapsed: bool = False
    #: one candidate's detail behind a chart of every candidate: folded in the HTML, in the
    #: PDF's annex (views.annex)
    detail: bool = False
