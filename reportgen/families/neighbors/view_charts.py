"""The neighbourhood chart: how many of its k nearest concepts each concept kept."""

from __future__ import annotations

from typing import Any

import altair as alt

from reportgen.views.charts import (
    WIDTH,
    ChartLike,
    candidate_colours,
    comparisons,
    faded,
    finish,
    legend_pick,
    table,
)


def jaccard_distribution_chart(data: dict[str, Any]) -> ChartLike:
    """How many concepts keep 0 … k of their k neighbours, per compared model."""
    rows = [{**r, "candidate": c["candidate"], "jaccard_label": f"{r['jaccard']:.2f}"}
            for c in comparisons(data) for r in table(c, "neighbors_concepts_distribution")]
    domain, colours = candidate_colours(data)
    pick = legend_pick("pick_jaccard", "candidate")
    chart = alt.Chart(alt.Data(values=rows)).mark_bar().encode(
        x=alt.X("shared:O", title="neighbours kept (of k); Jaccard = kept / (2k − kept)"),
        xOffset=alt.XOffset("candidate:N", sort=domain),
        y=alt.Y("count:Q", title="concepts"),
        color=alt.Color("candidate:N", title="candidate",
                        scale=alt.Scale(domain=domain, range=colours)),
        opacity=faded(pick),
        tooltip=[alt.Tooltip("candidate:N"), alt.Tooltip("shared:Q", title="kept"),
                 alt.Tooltip("jaccard_label:N", title="Jaccard"),
                 alt.Tooltip("count:Q", title="concepts")],
    ).add_params(pick).properties(
        width=WIDTH, height=220,
        title=alt.Title("Concept neighbourhoods: how many neighbours each concept kept",
                        subtitle="Bars to the left: concepts whose neighbourhood was rewired"))
    return finish(chart)
