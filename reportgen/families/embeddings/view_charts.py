"""The token charts: the top token movers, and drift over the whole vocabulary on shared bins."""

from __future__ import annotations

import math
from typing import Any

import altair as alt

from reportgen.core.numfmt import plural
from reportgen.core.tokentext import token_label
from reportgen.views.charts import (
    BAR_STEP,
    DRIFT_AXIS,
    WIDTH,
    ChartLike,
    candidate_colours,
    comparison,
    comparisons,
    drift_tooltip,
    faded,
    finish,
    legend_pick,
    metric_value,
    powers_of_ten,
    table,
    unique_labels,
)


def no_token_moved(comp: dict[str, Any]) -> bool:
    """Every shared token's input embedding is the base's (an adapter that leaves the
    embedding alone): there are no movers to rank and no distribution to draw."""
    top = metric_value(comp, "embeddings.cosine_distance.max")
    return top is not None and top <= 0

def moved_tokens(comp: dict[str, Any]) -> list[dict[str, Any]]:
    """The candidate's listed top movers that moved at all, by rank (older certificates
    listed unmoved tokens, at 0, after the movers)."""
    rows = [r for r in table(comp, "tokens") if (r.get("cosine_distance") or 0) > 0]
    return sorted(rows, key=lambda r: r["rank"])

def token_movers_chart(data: dict[str, Any], candidate: str, n: int = 20) -> ChartLike:
    """Horizontal bars of the ``n`` tokens whose input embedding moved most."""
    rows = moved_tokens(comparison(data, candidate))[:n]
    labels = unique_labels([token_label(r["token"]) for r in rows])
    values = [{**r, "label": lab} for r, lab in zip(rows, labels, strict=True)]
    domain, colours = candidate_colours(data)
    colour = colours[domain.index(candidate)]
    chart = alt.Chart(alt.Data(values=values)).mark_bar(color=colour).encode(
        x=alt.X("cosine_distance:Q", title=f"{DRIFT_AXIS} of the input embedding"),
        y=alt.Y("label:N", sort=None, title=None, axis=alt.Axis(labelLimit=160)),
        tooltip=[alt.Tooltip("token:N"), drift_tooltip(), alt.Tooltip("rank:Q"),
                 alt.Tooltip("base_id:Q", title="base id"),
                 alt.Tooltip("candidate_id:Q", title="candidate id")],
    ).properties(
        width=WIDTH, height=BAR_STEP * max(len(rows), 1),
        title=alt.Title(f"Top token movers: {candidate}",
                        subtitle=f"{plural(len(rows), 'token')} with the largest embedding "
                                 "drift"),
    )
    return finish(chart)

def shared_token_histogram(data: dict[str, Any]) -> tuple[list[dict[str, Any]], float]:
    """Every compared model's per-token drift counts on one set of bins from 0, and where
    the last bin ends; models in which no token moved are left out.

    The shared width is the widest of the models' own (a power of two: see
    :func:`reportgen.families.embeddings.metrics.drift_histogram`); each model's bins nest in it, so
    adding each bin's count to the shared bin holding its middle is exact. (A certificate
    from before the nesting bins is placed the same way, to within one shared bin.)"""
    comps = [c for c in comparisons(data)
             if table(c, "token_histogram") and not no_token_moved(c)]
    own = [r for c in comps for r in table(c, "token_histogram") if r["bin_end"] > 0]
    if not own:
        return [], 0.0
    width = 2.0 ** round(math.log2(max(r["bin_end"] - r["bin_start"] for r in own)))
    n = max(1, math.ceil(max(r["bin_end"] for r in own) / width - 1e-3))
    rows = []
    for c in comps:
        counts = [0] * n
        for r in table(c, "token_histogram"):
            middle = (max(r["bin_start"], 0.0) + max(r["bin_end"], 0.0)) / 2
            counts[min(int(middle // width), n - 1)] += r["count"]
        rows += [{"candidate": c["candidate"], "bin_start": i * width,
                  "bin_end": (i + 1) * width, "count": k} for i, k in enumerate(counts)]
    return rows, n * width

def token_histogram_chart(data: dict[str, Any]) -> ChartLike:
    """Distribution of per-token drift, one panel per compared model in which a token moved,
    on shared bins and a shared x axis from 0."""
    rows, top = shared_token_histogram(data)
    still = [c["candidate"] for c in comparisons(data)
             if table(c, "token_histogram") and no_token_moved(c)]
    shown = [(n, c) for n, c in zip(*candidate_colours(data), strict=True) if n not in still]
    domain, colours = [n for n, _ in shown], [c for _, c in shown]
    pick = legend_pick("pick_hist", "candidate")
    width = rows[0]["bin_end"] - rows[0]["bin_start"] if rows else 0.0
    subtitle = [f"Shared bins {width:.3g} wide; counts on a symmetric-log scale so the tail "
                "stays visible"]
    if still:
        subtitle.append(f"No token moved in {', '.join(still)}")
    chart = alt.Chart(alt.Data(values=rows)).mark_bar(binSpacing=0).encode(
        x=alt.X("bin_start:Q", title=f"per-token {DRIFT_AXIS}",
                scale=alt.Scale(domain=[0.0, top], nice=True)),
        x2="bin_end:Q",
        y=alt.Y("count:Q", title="tokens", scale=alt.Scale(type="symlog", domainMin=0),
                axis=alt.Axis(values=powers_of_ten(max((r["count"] for r in rows), default=1)),
                              format=",.0f")),
        y2=alt.datum(0),
        color=alt.Color("candidate:N", title="candidate",
                        scale=alt.Scale(domain=domain, range=colours)),
        row=alt.Row("candidate:N", title=None, sort=domain,
                    header=alt.Header(labelAngle=0, labelAlign="left", labelAnchor="start",
                                      labelOrient="top", labelFontSize=12)),
        opacity=faded(pick),
        tooltip=[alt.Tooltip("candidate:N"),
                 alt.Tooltip("bin_start:Q", title="from", format=".4g"),
                 alt.Tooltip("bin_end:Q", title="to", format=".4g"), alt.Tooltip("count:Q")],
    ).add_params(pick).properties(
        width=WIDTH, height=90,
        title=alt.Title("Token-embedding drift: distribution over the vocabulary",
                        subtitle=subtitle),
    )
    return finish(chart)
