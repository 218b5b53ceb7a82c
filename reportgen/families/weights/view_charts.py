"""The weight-drift heatmap: relative change per block and module type, one shared scale."""

from __future__ import annotations

from typing import Any

import altair as alt

from reportgen.views.charts import (
    WIDTH,
    ChartLike,
    comparison,
    comparisons,
    finish,
    metric_value,
    shared_top,
    table,
)


def no_weight_changed(comp: dict[str, Any]) -> bool:
    """Every compared tensor equals the base's: a heatmap of zeros would show nothing."""
    top = metric_value(comp, "weights.relative_drift.max")
    return top is not None and top <= 0

def weights_chart(data: dict[str, Any], candidate: str) -> ChartLike:
    rows = [{**r, "block_label": "outside blocks" if r["block"] is None else str(r["block"])}
            for r in table(comparison(data, candidate), "weights_blocks")
            if r.get("relative_drift") is not None]
    blocks = sorted({r["block"] for r in rows if r["block"] is not None})
    order = [str(b) for b in blocks] + (["outside blocks"] if any(
        r["block"] is None for r in rows) else [])
    top = shared_top([r["relative_drift"] for c in comparisons(data)
                       for r in table(c, "weights_blocks") if r.get("relative_drift") is not None])
    chart = alt.Chart(alt.Data(values=rows)).mark_rect().encode(
        x=alt.X("block_label:N", title="transformer block", sort=order),
        y=alt.Y("module:N", title=None),
        color=alt.Color("relative_drift:Q", title="‖ΔW‖/‖W‖",
                        scale=alt.Scale(scheme="oranges", domain=[0.0, top])),
        tooltip=[alt.Tooltip("block_label:N", title="block"), alt.Tooltip("module:N"),
                 alt.Tooltip("relative_drift:Q", title="relative drift", format=".4g"),
                 alt.Tooltip("tensors:Q"), alt.Tooltip("parameters:Q", format=",")],
    ).properties(width=WIDTH, title=alt.Title(
        f"Weight drift by block and module type: {candidate}",
        subtitle="‖W_candidate − W_base‖_F / ‖W_base‖_F over each group's tensors; one "
                 "colour scale for every compared model"))
    return finish(chart)
