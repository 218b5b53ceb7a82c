"""The CKA section: linear CKA of the concept prompts, layer by layer."""

from __future__ import annotations

from typing import Any

from reportgen.core.family import View
from reportgen.families.cka.view_charts import cka_chart
from reportgen.views import charts
from reportgen.views.charts import Figure, comparisons, table
from reportgen.views.family_tables import (
    cand_key,
)
from reportgen.views.tables import Column, Table


def figures(data: dict[str, Any]) -> list[Figure]:
    if not any(table(c, "cka") for c in comparisons(data)):
        return []
    return [Figure(
        "cka-layers", "cka", "Linear CKA by layer",
        "Linear CKA compares the geometry of all concepts at once, per layer: 1 means the "
        "candidate's concept representations are an orthogonal transform and rescaling of "
        "the base's; lower means the geometry changed there.",
        "Line chart of linear CKA per layer for each compared model; the table below has "
        "the same numbers.", cka_chart(data), heading="Where in the network")]


def view() -> View:
    return View(figures=figures, tables=tables, intro=intro)


def tables(data: dict[str, Any]) -> tuple[dict[str, list[Table]], list[str]]:
    comps = charts.comparisons(data)
    out: dict[str, list[Table]] = {}
    notes: list[str] = []
    layers: dict[int, dict[str, Any]] = {}
    for c in comps:
        for r in charts.table(c, "cka"):
            layers.setdefault(r["layer"], {"layer": r["layer"]})[cand_key(c)] = r["cka"]
    if not layers:  # no concept CKA (no concept probes): the domains' CKA is theirs
        return out, notes
    out["cka-layers"] = [Table(
        "Linear CKA of the concept prompts by layer (— : undefined, no variance)",
        [Column("layer", "layer", "int")] + [Column(cand_key(c), c["candidate"], "num")
                                             for c in comps],
        [layers[k] for k in sorted(layers)])]
    return out, notes


WITHOUT_CONCEPTS = (
    "Linear CKA (Kornblith et al. 2019) compares the geometry of each domain's texts "
    "(hidden states mean-pooled over tokens) at once, layer by layer: 1 means the same "
    "geometry up to rotation and scale. The per-layer values are in the domain section's "
    "tables.")


def intro(data: dict[str, Any]) -> str | None:
    """Without concept probes the section measured no concept: say what it did measure."""
    names = {n for c in comparisons(data) for n in c.get("metrics") or {}}
    return None if any(n.startswith("cka.concepts.") for n in names) else WITHOUT_CONCEPTS
