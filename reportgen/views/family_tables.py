"""The tables behind the built-in families' charts: each chart's text alternative.

Kept apart from :mod:`reportgen.views.html` so the page assembly stays short; a plug-in
family brings its own tables through :class:`reportgen.views.registry.FamilyView` instead.
"""

from __future__ import annotations

from typing import Any

from reportgen.core.tokentext import token_label
from reportgen.views import charts
from reportgen.views.tables import Column, Table

TOP_N = 20
#: Section.tables key of the tables that sit under no chart (shown after a section's figures)
LOOSE_TABLES = "_section"


def cand_key(comp: dict[str, Any]) -> str:
    """A row key for a candidate's column that no fixed column key can collide with."""
    return "candidate:" + comp["candidate"]








def top_and_all(top: str, everything: str, cols: list[Column],
                 rows: list[dict[str, Any]]) -> list[Table]:
    """The first TOP_N rows, plus all rows collapsed (HTML only) when there are more."""
    tables = [Table(top, cols, rows[:TOP_N])]
    if len(rows) > TOP_N:
        tables.append(Table(everything, cols, rows, collapsed=True))
    return tables




def neighbour_text(ns: list[dict[str, Any]], token: bool = False) -> str:
    lab = token_label if token else str
    return ", ".join(f"{lab(n['label'])} {n['similarity']:.2f}" for n in ns)


def per_candidate(comps: list[dict], table: str, figure: str, cols: list[Column],
                   title: str) -> dict[str, list[Table]]:
    """One collapsed table per candidate that has rows, under its figure ``figure-SLUG``."""
    return {f"{figure}-{charts.slug(c['candidate'])}": [
        Table(f"{title}: {c['candidate']}", cols, charts.table(c, table), collapsed=True)]
        for c in comps if charts.table(c, table)}
