"""The weight-drift section: a block × module heatmap per candidate, read from the files."""

from __future__ import annotations

from typing import Any

from reportgen.core.family import View
from reportgen.core.numfmt import plural
from reportgen.families.weights.view_charts import no_weight_changed, weights_chart
from reportgen.views import charts
from reportgen.views.charts import Figure, comparisons, slug, table
from reportgen.views.family_tables import (
    per_candidate,
)
from reportgen.views.tables import Column, Table


def figures(data: dict[str, Any]) -> list[Figure]:
    out = []
    for c in comparisons(data):
        if table(c, "weights_blocks") and not no_weight_changed(c):
            name = c["candidate"]
            out.append(Figure(
                f"weights-{slug(name)}", "weights", f"Weight drift: {name}",
                "Each cell is the relative Frobenius change of the weights of one module type "
                "in one transformer block, read from the checkpoint files.",
                f"Heatmap of relative weight drift per block and module type for {name}.",
                weights_chart(data, name), name, "Weight drift by block and module"))
    return out


def view() -> View:
    return View(figures=figures, tables=tables)


def tables(data: dict[str, Any]) -> tuple[dict[str, list[Table]], list[str]]:
    comps = charts.comparisons(data)
    out: dict[str, list[Table]] = {}
    notes: list[str] = []
    cols = [Column("block", "block", "int"), Column("module", "module"),
            Column("tensors", "tensors", "int"), Column("parameters", "parameters", "int"),
            Column("relative_drift", "relative drift", "num")]
    out.update(per_candidate(comps, "weights_blocks", "weights", cols,
                              "Weight drift by block and module type"))
    for c in comps:
        if no_weight_changed(c):
            notes.append(f"{c['candidate']}: no weight changed (every compared tensor "
                         "equals the base's).")
        unmatched = charts.table(c, "weights_unmatched")
        if unmatched:
            shown = ", ".join(u["name"] for u in unmatched[:10])
            notes.append(f"{c['candidate']}: {plural(len(unmatched), 'tensor')} not compared "
                         f"(absent on one side or reshaped): {shown}.")
    return out, notes
