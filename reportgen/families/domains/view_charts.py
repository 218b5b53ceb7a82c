"""The domain chart: per candidate, each domain's mean-pooled drift layer by layer."""

from __future__ import annotations

from typing import Any

import altair as alt

from reportgen.views.charts import (
    DRIFT_AXIS,
    WIDTH,
    ChartLike,
    category_range,
    comparison,
    comparisons,
    faded,
    finish,
    legend_pick,
    shared_top,
    table,
)


def domains_chart(data: dict[str, Any], candidate: str) -> ChartLike:
    rows = table(comparison(data, candidate), "domains")
    names = sorted({r["domain"] for r in rows})
    top = shared_top([r["cosine_distance_mean"] for c in comparisons(data)
                       for r in table(c, "domains") if r.get("cosine_distance_mean") is not None])
    pick = legend_pick("pick_domain", "domain")
    chart = alt.Chart(alt.Data(values=rows)).mark_line(point=True, strokeWidth=2).encode(
        x=alt.X("layer:Q", title="layer (0 = embedding output)",
                axis=alt.Axis(tickMinStep=1, format="d")),
        y=alt.Y("cosine_distance_mean:Q", title=f"mean {DRIFT_AXIS}",
                scale=alt.Scale(domain=[0.0, top])),
        color=alt.Color("domain:N", title="domain",
                        scale=alt.Scale(domain=names, range=category_range(names))),
        opacity=faded(pick),
        tooltip=[alt.Tooltip("domain:N"), alt.Tooltip("layer:Q"),
                 alt.Tooltip("cosine_distance_mean:Q", title="mean drift", format=".4~g"),
                 alt.Tooltip("cka:Q", title="linear CKA", format=".4~g")],
    ).add_params(pick).properties(width=WIDTH, height=240, title=alt.Title(
        f"Domain drift by layer: {candidate}",
        subtitle="Mean-pooled hidden states of each domain's texts; one y axis for every "
                 "compared model"))
    return finish(chart)
