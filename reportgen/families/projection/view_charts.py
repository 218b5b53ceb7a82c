"""The projection's charts: each candidate's concepts joined to their base points on the joint
UMAP map, and every variant on one map coloured by category."""

from __future__ import annotations

from typing import Any

import altair as alt

from reportgen.views.charts import (
    WIDTH,
    ChartLike,
    categories,
    category_range,
    faded,
    finish,
    legend_pick,
)


def projection_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    return list(((data.get("analysis") or {}).get("projection") or {}).get("rows") or [])

def projection_chart(data: dict[str, Any], candidate: str) -> ChartLike:
    """Base and candidate points in the joint UMAP, a rule from each base point to the same
    concept in the candidate, coloured by the concept's drift."""
    rows = projection_rows(data)
    base = {r["term"]: r for r in rows if r["variant"] == "base"}
    pairs = [{"term": r["term"], "category": r["category"], "drift": r["drift"],
              "x": base[r["term"]]["x"], "y": base[r["term"]]["y"], "x2": r["x"], "y2": r["y"]}
             for r in rows if r["variant"] == candidate and r["term"] in base]
    pts = [r for r in rows if r["variant"] in ("base", candidate)]
    tip = [alt.Tooltip("term:N"), alt.Tooltip("category:N"),
           alt.Tooltip("drift:Q", title="cosine distance", format=".4~g")]
    rules = alt.Chart(alt.Data(values=pairs)).mark_rule(strokeWidth=1.5).encode(
        x=alt.X("x:Q", title="UMAP 1", axis=alt.Axis(labels=False, ticks=False)),
        y=alt.Y("y:Q", title="UMAP 2", axis=alt.Axis(labels=False, ticks=False)),
        x2="x2:Q", y2="y2:Q",
        color=alt.Color("drift:Q", title="drift", scale=alt.Scale(scheme="reds")),
        tooltip=tip)
    points = alt.Chart(alt.Data(values=pts)).mark_point(filled=True, size=30).encode(
        x="x:Q", y="y:Q",
        shape=alt.Shape("variant:N", title="variant", scale=alt.Scale(
            domain=["base", candidate], range=["circle", "triangle"])),
        fill=alt.value("#333"), opacity=alt.value(0.7),
        tooltip=[alt.Tooltip("variant:N"), *tip])
    chart = alt.layer(rules, points).resolve_scale(color="independent").properties(
        width=WIDTH, height=420, title=alt.Title(
            f"Joint UMAP of the concepts: base → {candidate}",
            subtitle="Circles: base; triangles: candidate; lines join a concept's two points"))
    return finish(chart)

def projection_category_chart(data: dict[str, Any]) -> ChartLike:
    rows = projection_rows(data)
    cats = categories(data) or sorted({r["category"] for r in rows})
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    shapes = ["circle", "triangle", "square", "diamond", "cross", "triangle-down"]
    pick = legend_pick("pick_umap_category", "category")
    chart = alt.Chart(alt.Data(values=rows)).mark_point(filled=True, size=30).encode(
        x=alt.X("x:Q", title="UMAP 1", axis=alt.Axis(labels=False, ticks=False)),
        y=alt.Y("y:Q", title="UMAP 2", axis=alt.Axis(labels=False, ticks=False)),
        color=alt.Color("category:N", title="category",
                        scale=alt.Scale(domain=cats, range=category_range(cats))),
        shape=alt.Shape("variant:N", title="variant", scale=alt.Scale(
            domain=variants, range=[shapes[i % len(shapes)] for i in range(len(variants))])),
        opacity=faded(pick),
        tooltip=[alt.Tooltip("term:N"), alt.Tooltip("category:N"), alt.Tooltip("variant:N"),
                 alt.Tooltip("drift:Q", title="cosine distance", format=".4~g")],
    ).add_params(pick).properties(width=WIDTH, height=420, title=alt.Title(
        "Joint UMAP of the concepts, by category",
        subtitle="Every variant in one coordinate system; shape: variant"))
    return finish(chart)
