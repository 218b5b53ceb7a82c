"""The concept-drift section: the most-moved concepts, drift by category and by layer, the
layer × category heatmaps, the tables behind them, and the concept explorer.
"""

from __future__ import annotations

from typing import Any

from reportgen.core.family import View
from reportgen.core.numfmt import plural
from reportgen.families.concepts.collapse import COLLAPSED
from reportgen.families.concepts.view_charts import (
    category_chart,
    layer_category_heatmap,
    layer_chart,
    no_concept_moved,
    top_concepts_chart,
)
from reportgen.families.concepts.view_explorer import explorer
from reportgen.views import charts
from reportgen.views.charts import Figure, comparisons, slug, table
from reportgen.views.family_tables import TOP_N, cand_key, top_and_all
from reportgen.views.summary import join_words, num3, ratio_text, value
from reportgen.views.tables import Column, Table


def concept_tables(data: dict[str, Any]) -> dict[str, list[Table]]:
    """The tables behind each concept chart (their text alternative)."""
    cols = [Column("rank", "rank", "int"), Column("term", "term"),
            Column("category", "category"), Column("cosine_distance", "cosine distance", "num"),
            Column("cosine_distance_mean_pooled", "mean-pooled", "num"),
            Column("noise_floor_ratio", "× noise floor", "ratio")]
    out: dict[str, list[Table]] = {}
    comps = [c for c in charts.comparisons(data) if charts.table(c, "concepts")]
    if not comps:
        return out
    for c in comps:
        rows = sorted(charts.table(c, "concepts"), key=lambda r: r["rank"])
        name = c["candidate"]
        if no_concept_moved(c):
            continue  # concept_notes says so
        out[f"top-concepts-{charts.slug(name)}"] = top_and_all(
            f"Top {plural(min(TOP_N, len(rows)), 'concept')} by drift: {name}",
            f"All {len(rows)} concepts: {name}", cols + _piece_columns(rows, name), rows)
    cat_rows = [{**r, "candidate": c["candidate"]} for c in comps
                for r in charts.table(c, "categories")]
    cat_rows.sort(key=lambda r: r["category"])
    out["concept-categories"] = [Table("Drift by category", [
        Column("category", "category"), Column("candidate", "candidate"),
        Column("count", "concepts", "int"), Column("mean", "mean", "num"),
        Column("std", "std", "num"), Column("top_quartile_share", "in top quartile", "pct"),
        Column("noise_floor_ratio", "× noise floor", "ratio")], cat_rows)]
    layers: dict[int, dict[str, Any]] = {}
    for c in comps:
        for r in charts.table(c, "layers"):
            layers.setdefault(r["layer"], {"layer": r["layer"]})[cand_key(c)] = \
                r["cosine_distance_mean"]
    out["concept-layers"] = [Table(
        "Mean concept drift (last-token hidden state) by layer",
        [Column("layer", "layer", "int")] + [Column(cand_key(c), c["candidate"], "num")
                                             for c in comps],
        [layers[k] for k in sorted(layers)])]
    return out

def concept_notes(data: dict[str, Any]) -> list[str]:
    """What the concept section says in words: candidates in which no concept moved, and the
    certificate's warning for each candidate whose concept states collapsed (repeated where
    its drift numbers are read)."""
    still = [f"{c['candidate']}: no concept moved (every concept's last-layer state is the "
             "base's), so there is no ranking to show." for c in charts.comparisons(data)
             if charts.table(c, "concepts") and no_concept_moved(c)]
    return still + [str(w) for w in data.get("warnings") or [] if COLLAPSED in str(w)]

def _piece_columns(rows: list[dict[str, Any]], name: str) -> list[Column]:
    """How many tokens the base tokenizer cut each term into (more than 1: a multi-token
    term); the candidate's count too where its tokenizer cuts some term otherwise."""
    cols = []
    if any("pieces" in r for r in rows):
        cols.append(Column("pieces", "term tokens", "int"))
    if any(r.get("candidate_pieces", r.get("pieces")) != r.get("pieces") for r in rows):
        cols.append(Column("candidate_pieces", f"term tokens in {name}", "int"))
    return cols


def figures(data: dict[str, Any]) -> list[Figure]:
    out: list[Figure] = []
    comps = [c for c in comparisons(data) if table(c, "concepts")]
    for c in comps:
        name = c["candidate"]
        if no_concept_moved(c):
            continue  # the section says so in words
        out.append(Figure(
            f"top-concepts-{slug(name)}", "concepts", f"Most-moved concepts: {name}",
            "Each bar is one concept term; longer bars moved further from the base model. "
            "Colour is the concept's category. "
            "The dashed line, when shown, is the mean drift of the noise floor: bars near it "
            "moved no more than the noise floor did.",
            f"Bar chart of the {plural(min(20, len(table(c, 'concepts'))), 'concept')} with "
            "the largest "
            f"drift between base and {name}; the table below lists the same values.",
            top_concepts_chart(data, name), name, "Most-moved concepts"))
    if any(table(c, "categories") for c in comps):
        out.append(Figure(
            "concept-categories", "concepts", "Concept drift by category",
            "Bars are the mean drift of a category's concepts for each candidate; whiskers "
            "span one standard deviation."
            + (" Black ticks mark the noise floor: a bar far to the right of its tick moved "
               "well beyond it." if charts.noise_floor(data) else ""),
            "Grouped bar chart of mean concept drift per category and candidate; the category "
            "table below has the same numbers.",
            category_chart(data), heading="Drift by category"))
    if any(table(c, "layers") for c in comps):
        out.append(Figure(
            "concept-layers", "concepts", "Concept drift by layer",
            "Each line follows one compared model through the network, from the embedding "
            "output (layer 0) to the last block. A line that rises late means the change sits "
            "in the upper layers.",
            "Line chart of mean concept drift at each layer for each compared model; the layer "
            "table below has the same numbers.",
            layer_chart(data), heading="Drift by layer"))
    for c in comps:
        if table(c, "concept_layers") and c.get("role") != "noise_floor":
            name = c["candidate"]
            out.append(Figure(
                f"layer-heatmap-{slug(name)}", "concepts",
                f"Concept drift by layer and category: {name}",
                "Rows are concept categories, columns are layers; a cell's colour is the mean "
                "drift of the category's concepts at that layer. A dark cell shows where in "
                "the network a category moved.",
                f"Heatmap of mean concept drift per layer and category for {name}.",
                layer_category_heatmap(data, name), name, "Drift by layer"))
    return out


def tables(data: dict[str, Any]) -> tuple[dict[str, list[Table]], list[str]]:
    return concept_tables(data), concept_notes(data)


def view() -> View:
    return View(figures=figures, tables=tables, explorer=explorer)


def summary_clause(comp: dict[str, Any]) -> list[str]:
    """The mean drift against the floor, the most moved concepts, the category that moved
    most: one finding each."""
    mean = value(comp, "concepts.cosine_distance.mean")
    if mean is None:
        return []
    out = [f"concept drift {num3(mean)} ({ratio_text(comp, 'concepts.cosine_distance')})"]
    tables = comp.get("tables") or {}
    top = [r["term"] for r in sorted(tables.get("concepts") or [], key=lambda r: r["rank"])]
    if top:
        out.append(f"the most moved concepts are {join_words(top[:3])}")
    cats = tables.get("categories") or []
    if len(cats) > 1:
        worst = max(cats, key=lambda r: r["mean"])
        out.append(f"the {worst['category']} category moved most "
                   f"(mean {num3(worst['mean'])} against {num3(mean)} overall)")
    return out


def floor_clause(comp: dict[str, Any]) -> str:
    v = value(comp, "concepts.cosine_distance.mean")
    return "" if v is None else f"concept drift {num3(v)}"
