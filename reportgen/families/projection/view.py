"""The projection section: one UMAP of every variant's concepts, with arrows from the base."""

from __future__ import annotations

from typing import Any

from reportgen.core.family import View
from reportgen.families.projection.view_charts import (
    projection_category_chart,
    projection_chart,
    projection_rows,
)
from reportgen.views.charts import Figure, comparisons, slug
from reportgen.views.tables import Column, Table


def figures(data: dict[str, Any]) -> list[Figure]:
    if not projection_rows(data):
        return []
    out = []
    for c in comparisons(data):
        if c.get("role") == "noise_floor":
            continue
        name = c["candidate"]
        out.append(Figure(
            f"umap-{slug(name)}", "projection", f"Joint UMAP: base → {name}",
            "One UMAP fitted on every variant's concept representations together, so all "
            "share one map. A line joins a concept's base point to its candidate point; "
            "red lines moved most in the original space. UMAP distorts distances: read "
            "neighbourhoods, not lengths.",
            f"Scatter plot of concepts in the base and {name} with lines between them.",
            projection_chart(data, name), name, "Joint projection (UMAP)"))
    out.append(Figure(
        "umap-categories", "projection", "Joint UMAP by category",
        "The same map, every variant, coloured by concept category.",
        "Scatter plot of every variant's concepts in the joint UMAP, coloured by category.",
        projection_category_chart(data), heading="Joint projection (UMAP)"))
    return out


def tables(data: dict[str, Any]) -> tuple[dict[str, list[Table]], list[str]]:
    rows = projection_rows(data)
    if not rows:
        return {}, []
    return {"umap-categories": [Table("UMAP coordinates", [
        Column("term", "term"), Column("category", "category"),
        Column("variant", "variant"), Column("x", "x", "num"), Column("y", "y", "num"),
        Column("drift", "cosine distance", "num")], rows, collapsed=True)]}, []


def view() -> View:
    return View(figures=figures, tables=tables)
