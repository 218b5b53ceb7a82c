"""The concept charts: most-moved concepts, drift by category and by layer, and the layer ×
category heatmaps, every candidate on shared scales."""

from __future__ import annotations

from typing import Any

import altair as alt

from reportgen.core.numfmt import plural
from reportgen.views.charts import (
    BAR_STEP,
    DRIFT_AXIS,
    WIDTH,
    ChartLike,
    candidate_colours,
    categories,
    category_range,
    comparison,
    comparisons,
    drift_tooltip,
    faded,
    finish,
    floor_rule,
    legend_pick,
    metric_value,
    noise_floor,
    shared_top,
    table,
    unique_labels,
)


def top_concepts_chart(data: dict[str, Any], candidate: str, n: int = 20) -> ChartLike:
    """Horizontal bars of the ``n`` most-moved concepts, coloured by category."""
    rows = sorted(table(comparison(data, candidate), "concepts"), key=lambda r: r["rank"])[:n]
    labels = unique_labels([r["term"] for r in rows])
    values = [{**r, "label": lab} for r, lab in zip(rows, labels, strict=True)]
    cats = categories(data)
    pick = legend_pick("pick_category", "category")
    bars = alt.Chart().mark_bar().encode(
        x=alt.X("cosine_distance:Q", title=f"{DRIFT_AXIS} at the last layer"),
        y=alt.Y("label:N", sort=None, title=None, axis=alt.Axis(labelLimit=160)),
        color=alt.Color("category:N", title="category",
                        scale=alt.Scale(domain=cats, range=category_range(cats))),
        opacity=faded(pick),
        tooltip=[alt.Tooltip("term:N"), alt.Tooltip("category:N"), drift_tooltip(),
                 alt.Tooltip("rank:Q"),
                 alt.Tooltip("noise_floor_ratio:Q", title="× noise floor", format=".3~g")],
    ).add_params(pick)
    layers: list[alt.Chart] = [bars]
    floor = noise_floor(data)
    every = len(table(comparison(data, candidate), "concepts"))
    subtitle = f"{len(rows)} of {plural(every, 'concept')}"
    if floor is not None and floor["candidate"] != candidate:
        fv = metric_value(floor, "concepts.cosine_distance.mean")
        if fv is not None:
            layers.append(floor_rule(fv))
            subtitle += f"; dashed line: mean drift of the noise floor ({floor['candidate']})"
    chart = alt.layer(*layers, data=alt.Data(values=values)).properties(
        width=WIDTH, height=BAR_STEP * max(len(rows), 1),
        title=alt.Title(f"Most-moved concepts: {candidate}", subtitle=subtitle),
    )
    return finish(chart)

def category_chart(data: dict[str, Any]) -> ChartLike:
    """Mean drift per category and candidate, ±1 std whiskers, noise floor as ticks."""
    floor = noise_floor(data)
    rows = []
    for comp in comparisons(data):
        if comp is floor:
            continue
        for r in table(comp, "categories"):
            rows.append({**r, "candidate": comp["candidate"],
                         "lo": max(r["mean"] - r["std"], 0.0), "hi": r["mean"] + r["std"]})
    names, all_colours = candidate_colours(data)
    shown = [i for i, n in enumerate(names) if n != (floor or {}).get("candidate")]
    domain = [names[i] for i in shown]  # the noise floor is drawn as ticks, not bars
    colours = [all_colours[i] for i in shown]
    pick = legend_pick("pick_candidate", "candidate")
    y = alt.Y("category:N", title=None, sort=categories(data))
    y_off = alt.YOffset("candidate:N", sort=domain)
    colour = alt.Color("candidate:N", title="candidate", scale=alt.Scale(domain=domain,
                                                                          range=colours))
    tip = [alt.Tooltip("candidate:N"), alt.Tooltip("category:N"),
           alt.Tooltip("mean:Q", title="mean cosine distance", format=".4~g"),
           alt.Tooltip("std:Q", format=".4~g"), alt.Tooltip("count:Q", title="concepts"),
           alt.Tooltip("top_quartile_share:Q", title="share in top quartile", format=".0%"),
           alt.Tooltip("noise_floor_ratio:Q", title="× noise floor", format=".3~g")]
    base = alt.Chart().encode(y=y, yOffset=y_off)
    bars = base.mark_bar().encode(
        x=alt.X("mean:Q", title=f"mean {DRIFT_AXIS} over the category's concepts"),
        color=colour, opacity=faded(pick), tooltip=tip,
    ).add_params(pick)
    whiskers = base.mark_rule(color="#333").encode(x="lo:Q", x2="hi:Q", opacity=faded(pick))
    layers: list[alt.Chart] = [bars, whiskers]
    subtitle = "Whiskers: ±1 standard deviation over the category's concepts"
    if floor is not None:
        ticks = [{"category": r["category"], "floor_mean": r["mean"]}
                 for r in table(floor, "categories")]
        layers.append(alt.Chart(alt.Data(values=ticks)).mark_tick(
            color="#000", thickness=2, orient="vertical",
        ).encode(y=y, x="floor_mean:Q",
                 tooltip=[alt.Tooltip("category:N"),
                          alt.Tooltip("floor_mean:Q", title="noise-floor mean", format=".4~g")]))
        subtitle += f"; black ticks: noise floor ({floor['candidate']})"
    chart = alt.layer(*layers, data=alt.Data(values=rows)).properties(
        width=WIDTH,
        title=alt.Title("Concept drift by category", subtitle=subtitle),
    )
    return finish(chart)

def layer_chart(data: dict[str, Any]) -> ChartLike:
    """Mean concept drift after each block, one line per compared model."""
    rows = [{**r, "candidate": c["candidate"],
             "role": "noise floor" if c.get("role") == "noise_floor" else "candidate"}
            for c in comparisons(data) for r in table(c, "layers")]
    domain, colours = candidate_colours(data)
    pick = legend_pick("pick_line", "candidate")
    chart = alt.Chart(alt.Data(values=rows)).mark_line(point=True, strokeWidth=2).encode(
        x=alt.X("layer:Q", title="layer (0 = embedding output)",
                axis=alt.Axis(tickMinStep=1, format="d")),
        y=alt.Y("cosine_distance_mean:Q", title=f"mean {DRIFT_AXIS}"),
        color=alt.Color("candidate:N", title="candidate",
                        scale=alt.Scale(domain=domain, range=colours)),
        strokeDash=alt.StrokeDash("role:N", title="role",
                                  scale=alt.Scale(domain=["candidate", "noise floor"],
                                                  range=[[1, 0], [5, 3]])),
        opacity=faded(pick),
        tooltip=[alt.Tooltip("candidate:N"), alt.Tooltip("layer:Q"),
                 drift_tooltip("cosine_distance_mean"),
                 alt.Tooltip("mean_pooled_cosine_distance_mean:Q", title="mean-pooled",
                             format=".4~g")],
    ).add_params(pick).properties(
        width=WIDTH, height=260,
        title=alt.Title("Concept drift by layer",
                        subtitle="Last-token hidden state; dashed lines are noise floors"),
    )
    return finish(chart)

def no_concept_moved(comp: dict[str, Any]) -> bool:
    """Every concept's last-layer state is the base's: no ranking to draw."""
    top = metric_value(comp, "concepts.cosine_distance.max")
    return top is not None and top <= 0

def _layer_category_rows(data: dict[str, Any], comp: dict[str, Any]) -> list[dict[str, Any]]:
    cat_of = {r["term"]: r["category"] for r in table(comp, "concepts")}
    layers = (data.get("analysis") or {}).get("layers") or []
    sums: dict[tuple[str, int], list[float]] = {}
    for r in table(comp, "concept_layers"):
        for j, v in enumerate(r["by_layer"]):
            layer = layers[j] if j < len(layers) else j
            sums.setdefault((cat_of.get(r["term"], "?"), layer), []).append(v)
    return [{"category": c, "layer": layer, "mean": sum(v) / len(v), "count": len(v)}
            for (c, layer), v in sorted(sums.items())]

def layer_category_heatmap(data: dict[str, Any], candidate: str) -> ChartLike:
    """Mean concept drift per (layer, category): where in the network each category moved,
    on one colour scale from 0 for every candidate drawn this way."""
    rows = _layer_category_rows(data, comparison(data, candidate))
    top = shared_top([r["mean"] for c in comparisons(data) if c.get("role") != "noise_floor"
                       for r in _layer_category_rows(data, c)])
    chart = alt.Chart(alt.Data(values=rows)).mark_rect().encode(
        x=alt.X("layer:O", title="layer (0 = embedding output)"),
        y=alt.Y("category:N", title=None, sort=categories(data)),
        color=alt.Color("mean:Q", title="mean drift",
                        scale=alt.Scale(scheme="blues", domain=[0.0, top])),
        tooltip=[alt.Tooltip("category:N"), alt.Tooltip("layer:O"),
                 alt.Tooltip("mean:Q", title="mean cosine distance", format=".4~g"),
                 alt.Tooltip("count:Q", title="concepts")],
    ).properties(width=WIDTH, title=alt.Title(
        f"Concept drift by layer and category: {candidate}",
        subtitle="Darker cells: the category's concepts moved further at that layer; one "
                 "colour scale for every candidate"))
    return finish(chart)
