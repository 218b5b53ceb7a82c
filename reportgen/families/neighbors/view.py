"""The neighbourhood section: how many neighbours each concept kept, and the most rewired
concepts and tokens with their neighbour lists side by side."""

from __future__ import annotations

from typing import Any

from reportgen.core.family import View
from reportgen.families.neighbors.view_charts import jaccard_distribution_chart
from reportgen.views import charts
from reportgen.views.charts import Figure, comparisons, table
from reportgen.views.family_tables import (
    LOOSE_TABLES,
    TOP_N,
    neighbour_text,
)
from reportgen.views.tables import Column, Table


def figures(data: dict[str, Any]) -> list[Figure]:
    if not any(table(c, "neighbors_concepts_distribution") for c in comparisons(data)):
        return []
    return [Figure(
        "neighbors-distribution", "neighbors", "Concept neighbourhoods kept",
        "For each concept, its k nearest concepts are found in the base and in the "
        "candidate separately. Bars count the concepts by how many of those k neighbours "
        "they kept; mass on the left means rewired neighbourhoods.",
        "Bar chart of the number of concepts keeping 0 to k neighbours, per compared "
        "model; the most rewired concepts are listed below with both neighbour lists.",
        jaccard_distribution_chart(data), heading="Concept neighbourhoods")]


def view() -> View:
    return View(figures=figures, tables=tables, intro=intro)


def tables(data: dict[str, Any]) -> tuple[dict[str, list[Table]], list[str]]:
    comps = charts.comparisons(data)
    real = [c for c in comps if c.get("role") != "noise_floor"]
    out: dict[str, list[Table]] = {}
    notes: list[str] = []
    tabs = []
    cols = [Column("rank", "rank", "int"), Column("term", "term"),
            Column("category", "category"), Column("jaccard", "Jaccard", "num"),
            Column("base", "base neighbours (cosine)"),
            Column("candidate", "candidate neighbours (cosine)")]
    for c in real:
        listed = charts.table(c, "rewired_concepts")
        rows = [{**r, "base": neighbour_text(r["base_neighbours"]),
                 "candidate": neighbour_text(r["candidate_neighbours"])}
                for r in listed if r["jaccard"] < 1]
        if rows:
            tabs.append(Table(f"Most rewired concepts, side by side: {c['candidate']}",
                              cols, rows[:TOP_N]))
        elif listed:
            notes.append(f"{c['candidate']}: every concept kept all of its nearest "
                         "neighbours (Jaccard 1), so no concept was rewired.")
    tcols = [Column("token", "token", "token"),
             Column("cosine_distance", "cosine distance", "num"),
             Column("jaccard", "Jaccard", "num"),
             Column("base", "base neighbours (cosine)"),
             Column("candidate", "candidate neighbours (cosine)")]
    for c in real:
        listed = charts.table(c, "neighbors_tokens")
        rows = [{**r, "base": neighbour_text(r["base_neighbours"], True),
                 "candidate": neighbour_text(r["candidate_neighbours"], True)}
                for r in listed if (r.get("cosine_distance") or 0) > 0]
        if rows:
            tabs.append(Table(f"Neighbourhoods of the top token movers: {c['candidate']}",
                              tcols, rows[:TOP_N]))
        elif listed:
            notes.append(f"{c['candidate']}: no token moved, so no token neighbourhood "
                         "is listed.")
    concepts = any(charts.table(c, "neighbors_concepts_distribution") for c in comps)
    if tabs:  # under the concept chart; without concepts there is none to sit under
        out["neighbors-distribution" if concepts else LOOSE_TABLES] = tabs
    return out, notes


WITHOUT_CONCEPTS = (
    "A token can keep its embedding nearly in place and still change what it sits "
    "next to. Each token's k nearest tokens in the input-embedding matrix (cosine, itself "
    "excluded) are found in the base and in each candidate separately; the Jaccard overlap of "
    "the two sets is 1 when the neighbourhood is unchanged and 0 when no neighbour was kept.")


def intro(data: dict[str, Any]) -> str | None:
    """Without concept probes the section measured no concept: say what it did measure."""
    names = {n for c in comparisons(data) for n in c.get("metrics") or {}}
    return None if any(n.startswith("neighbors.concepts.") for n in names) else WITHOUT_CONCEPTS
