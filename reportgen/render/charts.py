"""Altair charts built from the certificate dict alone (no model, no arrays).

The same Vega-Lite specs are embedded live in the HTML and turned into static SVG for the
PDF, so every chart uses fixed widths (``width="container"`` has no meaning in WeasyPrint)
and explicitly named parameters (Altair's automatic names change between calls, which
would make two renders of one certificate differ).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import altair as alt

WIDTH = 560
BAR_STEP = 18
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000",
             "#F0E442"]
CANDIDATE_COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9"]
FLOOR_COLOUR = "#6b6b6b"
DRIFT_AXIS = "cosine distance (1 − cos)"

ChartLike = alt.Chart | alt.LayerChart


@dataclass(frozen=True)
class Figure:
    """One chart with the words around it: the HTML and PDF lay these out in order."""

    id: str
    family: str  # metric family the chart belongs to: concepts | embeddings
    title: str
    caption: str  # how to read it
    alt: str  # a one-sentence text alternative; the table behind it follows the chart
    chart: ChartLike
    candidate: str | None = None
    heading: str = ""  # figures sharing a heading are grouped under one subheading

    @property
    def hint(self) -> str:
        """How to interact with the live chart (HTML only; the PDF's charts are static)."""
        spec = self.chart.to_dict(validate=False)
        params = spec.get("params", []) + [
            p for layer in spec.get("layer", []) for p in layer.get("params", [])]
        legend = any(p.get("bind") == "legend" for p in params)
        text = "Hover over a mark to see its numbers."
        if legend:
            text += " Click a legend entry to highlight it; shift-click to add more."
        return text

    def spec(self) -> dict[str, Any]:
        return self.chart.to_dict()


# ---------------------------------------------------------------------------- data access


def comparisons(data: dict[str, Any]) -> list[dict[str, Any]]:
    return list(data.get("comparisons") or [])


def comparison(data: dict[str, Any], candidate: str) -> dict[str, Any]:
    for c in comparisons(data):
        if c["candidate"] == candidate:
            return c
    raise KeyError(f"no comparison for candidate {candidate!r}")


def noise_floor(data: dict[str, Any]) -> dict[str, Any] | None:
    """The first comparison measuring a noise-floor variant, if the audit had one."""
    return next((c for c in comparisons(data) if c.get("role") == "noise_floor"), None)


def table(comp: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return list((comp.get("tables") or {}).get(name) or [])


def metric_value(comp: dict[str, Any], name: str) -> float | None:
    m = (comp.get("metrics") or {}).get(name)
    return None if m is None else m.get("value")


def categories(data: dict[str, Any]) -> list[str]:
    """Every concept category, sorted, so colours mean the same in every chart."""
    found = {r["category"] for c in comparisons(data) for r in table(c, "categories")}
    found |= {r["category"] for c in comparisons(data) for r in table(c, "concepts")}
    return sorted(found)


def candidate_colours(data: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(domain, range) of the candidate colour scale; noise floors are grey."""
    names, colours, i = [], [], 0
    for c in comparisons(data):
        names.append(c["candidate"])
        if c.get("role") == "noise_floor":
            colours.append(FLOOR_COLOUR)
        else:
            colours.append(CANDIDATE_COLOURS[i % len(CANDIDATE_COLOURS)])
            i += 1
    return names, colours


def token_label(token: str) -> str:
    """Tokens as a reader can see them: whitespace and control characters made visible."""
    if token and token.isprintable() and token.strip() == token:
        return token
    return repr(token)


def _unique(labels: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for lab in labels:
        seen[lab] = seen.get(lab, 0) + 1
        out.append(lab if seen[lab] == 1 else f"{lab} ({seen[lab]})")
    return out


# ------------------------------------------------------------------------------- styling


def _finish(chart: ChartLike) -> ChartLike:
    """Shared look: calm axes, readable fonts, no chart border."""
    return (
        chart.configure(font=FONT, padding=8)
        .configure_view(stroke=None)
        .configure_axis(labelFontSize=11, titleFontSize=12, titleFontWeight="normal",
                        gridColor="#e6e6e6", domainColor="#888", tickColor="#888")
        .configure_legend(labelFontSize=11, titleFontSize=12, titleFontWeight="normal",
                          orient="right")
        .configure_title(fontSize=14, anchor="start", subtitleFontSize=11,
                         subtitleColor="#555", offset=10)
    )


def _legend_pick(name: str, field: str) -> alt.Parameter:
    return alt.selection_point(name=name, fields=[field], bind="legend")


def _faded(param: alt.Parameter) -> alt.OpacityValue:
    return alt.condition(param, alt.value(1.0), alt.value(0.15))


def _drift_tooltip(field: str = "cosine_distance") -> alt.Tooltip:
    return alt.Tooltip(f"{field}:Q", title="cosine distance", format=".4f")


# -------------------------------------------------------------------------------- charts


def top_concepts_chart(data: dict[str, Any], candidate: str, n: int = 20) -> ChartLike:
    """Horizontal bars of the ``n`` most-moved concepts, coloured by category."""
    rows = sorted(table(comparison(data, candidate), "concepts"), key=lambda r: r["rank"])[:n]
    labels = _unique([r["term"] for r in rows])
    values = [{**r, "label": lab} for r, lab in zip(rows, labels, strict=True)]
    cats = categories(data)
    pick = _legend_pick("pick_category", "category")
    bars = alt.Chart().mark_bar().encode(
        x=alt.X("cosine_distance:Q", title=f"{DRIFT_AXIS} at the last layer"),
        y=alt.Y("label:N", sort=None, title=None, axis=alt.Axis(labelLimit=160)),
        color=alt.Color("category:N", title="category",
                        scale=alt.Scale(domain=cats, range=_category_range(cats))),
        opacity=_faded(pick),
        tooltip=[alt.Tooltip("term:N"), alt.Tooltip("category:N"), _drift_tooltip(),
                 alt.Tooltip("rank:Q"),
                 alt.Tooltip("noise_floor_ratio:Q", title="× noise floor", format=".1f")],
    ).add_params(pick)
    layers: list[alt.Chart] = [bars]
    floor = noise_floor(data)
    subtitle = f"{len(rows)} of {len(table(comparison(data, candidate), 'concepts'))} concepts"
    if floor is not None and floor["candidate"] != candidate:
        fv = metric_value(floor, "concepts.cosine_distance.mean")
        if fv is not None:
            layers.append(_floor_rule(fv))
            subtitle += f"; dashed line: mean drift of the noise floor ({floor['candidate']})"
    chart = alt.layer(*layers, data=alt.Data(values=values)).properties(
        width=WIDTH, height=BAR_STEP * max(len(rows), 1),
        title=alt.Title(f"Most-moved concepts: {candidate}", subtitle=subtitle),
    )
    return _finish(chart)


def _category_range(cats: list[str]) -> list[str]:
    if len(cats) <= len(OKABE_ITO):
        return OKABE_ITO[: len(cats)]
    extra = ["#999999", "#882255", "#44AA99", "#117733", "#332288", "#DDCC77", "#AA4499"]
    pool = OKABE_ITO + extra
    return [pool[i % len(pool)] for i in range(len(cats))]


def _floor_rule(value: float) -> alt.Chart:
    return alt.Chart(alt.Data(values=[{"noise_floor": value}])).mark_rule(
        color=FLOOR_COLOUR, strokeDash=[4, 3], strokeWidth=1.5,
    ).encode(x="noise_floor:Q",
             tooltip=[alt.Tooltip("noise_floor:Q", title="noise-floor mean", format=".4f")])


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
    pick = _legend_pick("pick_candidate", "candidate")
    y = alt.Y("category:N", title=None, sort=categories(data))
    y_off = alt.YOffset("candidate:N", sort=domain)
    colour = alt.Color("candidate:N", title="candidate", scale=alt.Scale(domain=domain,
                                                                          range=colours))
    tip = [alt.Tooltip("candidate:N"), alt.Tooltip("category:N"),
           alt.Tooltip("mean:Q", title="mean cosine distance", format=".4f"),
           alt.Tooltip("std:Q", format=".4f"), alt.Tooltip("count:Q", title="concepts"),
           alt.Tooltip("top_quartile_share:Q", title="share in top quartile", format=".0%"),
           alt.Tooltip("noise_floor_ratio:Q", title="× noise floor", format=".1f")]
    base = alt.Chart().encode(y=y, yOffset=y_off)
    bars = base.mark_bar().encode(
        x=alt.X("mean:Q", title=f"mean {DRIFT_AXIS} over the category's concepts"),
        color=colour, opacity=_faded(pick), tooltip=tip,
    ).add_params(pick)
    whiskers = base.mark_rule(color="#333").encode(x="lo:Q", x2="hi:Q", opacity=_faded(pick))
    layers: list[alt.Chart] = [bars, whiskers]
    subtitle = "Whiskers: ±1 standard deviation over the category's concepts"
    if floor is not None:
        ticks = [{"category": r["category"], "floor_mean": r["mean"]}
                 for r in table(floor, "categories")]
        layers.append(alt.Chart(alt.Data(values=ticks)).mark_tick(
            color="#000", thickness=2, orient="vertical",
        ).encode(y=y, x="floor_mean:Q",
                 tooltip=[alt.Tooltip("category:N"),
                          alt.Tooltip("floor_mean:Q", title="noise-floor mean", format=".4f")]))
        subtitle += f"; black ticks: noise floor ({floor['candidate']})"
    chart = alt.layer(*layers, data=alt.Data(values=rows)).properties(
        width=WIDTH,
        title=alt.Title("Concept drift by category", subtitle=subtitle),
    )
    return _finish(chart)


def layer_chart(data: dict[str, Any]) -> ChartLike:
    """Mean concept drift after each block, one line per compared model."""
    rows = [{**r, "candidate": c["candidate"],
             "role": "noise floor" if c.get("role") == "noise_floor" else "candidate"}
            for c in comparisons(data) for r in table(c, "layers")]
    domain, colours = candidate_colours(data)
    pick = _legend_pick("pick_line", "candidate")
    chart = alt.Chart(alt.Data(values=rows)).mark_line(point=True, strokeWidth=2).encode(
        x=alt.X("layer:Q", title="layer (0 = embedding output)",
                axis=alt.Axis(tickMinStep=1, format="d")),
        y=alt.Y("cosine_distance_mean:Q", title=f"mean {DRIFT_AXIS}"),
        color=alt.Color("candidate:N", title="candidate",
                        scale=alt.Scale(domain=domain, range=colours)),
        strokeDash=alt.StrokeDash("role:N", title="role",
                                  scale=alt.Scale(domain=["candidate", "noise floor"],
                                                  range=[[1, 0], [5, 3]])),
        opacity=_faded(pick),
        tooltip=[alt.Tooltip("candidate:N"), alt.Tooltip("layer:Q"),
                 _drift_tooltip("cosine_distance_mean"),
                 alt.Tooltip("mean_pooled_cosine_distance_mean:Q", title="mean-pooled",
                             format=".4f")],
    ).add_params(pick).properties(
        width=WIDTH, height=260,
        title=alt.Title("Concept drift by layer",
                        subtitle="Last-token hidden state; dashed lines are noise floors"),
    )
    return _finish(chart)


def token_movers_chart(data: dict[str, Any], candidate: str, n: int = 20) -> ChartLike:
    """Horizontal bars of the ``n`` tokens whose input embedding moved most."""
    rows = sorted(table(comparison(data, candidate), "tokens"), key=lambda r: r["rank"])[:n]
    labels = _unique([token_label(r["token"]) for r in rows])
    values = [{**r, "label": lab} for r, lab in zip(rows, labels, strict=True)]
    domain, colours = candidate_colours(data)
    colour = colours[domain.index(candidate)]
    chart = alt.Chart(alt.Data(values=values)).mark_bar(color=colour).encode(
        x=alt.X("cosine_distance:Q", title=f"{DRIFT_AXIS} of the input embedding"),
        y=alt.Y("label:N", sort=None, title=None, axis=alt.Axis(labelLimit=160)),
        tooltip=[alt.Tooltip("token:N"), _drift_tooltip(), alt.Tooltip("rank:Q"),
                 alt.Tooltip("base_id:Q", title="base id"),
                 alt.Tooltip("candidate_id:Q", title="candidate id")],
    ).properties(
        width=WIDTH, height=BAR_STEP * max(len(rows), 1),
        title=alt.Title(f"Top token movers: {candidate}",
                        subtitle=f"{len(rows)} tokens with the largest embedding drift"),
    )
    return _finish(chart)


def token_histogram_chart(data: dict[str, Any]) -> ChartLike:
    """Distribution of per-token drift, one panel per compared model, shared x axis."""
    rows = [{**r, "candidate": c["candidate"]}
            for c in comparisons(data) for r in table(c, "token_histogram")]
    domain, colours = candidate_colours(data)
    pick = _legend_pick("pick_hist", "candidate")
    chart = alt.Chart(alt.Data(values=rows)).mark_bar(binSpacing=0).encode(
        x=alt.X("bin_start:Q", title=f"per-token {DRIFT_AXIS}"),
        x2="bin_end:Q",
        y=alt.Y("count:Q", title="tokens", scale=alt.Scale(type="symlog", domainMin=0),
                axis=alt.Axis(values=_powers_of_ten(max((r["count"] for r in rows), default=1)),
                              format=",.0f")),
        y2=alt.datum(0),
        color=alt.Color("candidate:N", title="candidate",
                        scale=alt.Scale(domain=domain, range=colours)),
        row=alt.Row("candidate:N", title=None, sort=domain,
                    header=alt.Header(labelAngle=0, labelAlign="left", labelAnchor="start",
                                      labelOrient="top", labelFontSize=12)),
        opacity=_faded(pick),
        tooltip=[alt.Tooltip("candidate:N"),
                 alt.Tooltip("bin_start:Q", title="from", format=".4g"),
                 alt.Tooltip("bin_end:Q", title="to", format=".4g"), alt.Tooltip("count:Q")],
    ).add_params(pick).properties(
        width=WIDTH, height=90,
        title=alt.Title("Token-embedding drift: distribution over the vocabulary",
                        subtitle="Counts on a symmetric-log scale so the tail stays visible"),
    )
    return _finish(chart)


# ------------------------------------------------------------------------------- figures


def figures(data: dict[str, Any]) -> list[Figure]:
    """Every chart the certificate supports, in reading order, each with caption and alt."""
    out: list[Figure] = []
    comps = [c for c in comparisons(data) if table(c, "concepts")]
    for c in comps:
        name = c["candidate"]
        out.append(Figure(
            f"top-concepts-{slug(name)}", "concepts", f"Most-moved concepts: {name}",
            "Each bar is one concept term; longer bars moved further from the base model. "
            "Colour is the concept's category. "
            "The dashed line, when shown, is the mean drift of the noise-floor variant: bars "
            "near it are within quantization noise.",
            f"Bar chart of the {min(20, len(table(c, 'concepts')))} concepts with the largest "
            f"drift between base and {name}; the table below lists the same values.",
            top_concepts_chart(data, name), name, "Most-moved concepts"))
    if any(table(c, "categories") for c in comps):
        out.append(Figure(
            "concept-categories", "concepts", "Concept drift by category",
            "Bars are the mean drift of a category's concepts for each candidate; whiskers "
            "span one standard deviation. Black ticks mark the noise floor: a bar far to the "
            "right of its tick moved well beyond quantization noise.",
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
    tok = [c for c in comparisons(data) if table(c, "tokens")]
    for c in tok:
        name = c["candidate"]
        out.append(Figure(
            f"token-movers-{slug(name)}", "embeddings", f"Top token movers: {name}",
            "Each bar is one vocabulary token; its length is the cosine distance between the "
            "token's input embedding in the base model and in this candidate.",
            f"Bar chart of the tokens whose input embedding moved most in {name}; the table "
            "below lists the same tokens.",
            token_movers_chart(data, name), name, "Top token movers"))
    if any(table(c, "token_histogram") for c in comparisons(data)):
        out.append(Figure(
            "token-histogram", "embeddings", "Token-embedding drift over the vocabulary",
            "How many tokens moved by how much, one panel per compared model. Most tokens sit "
            "near zero; the symmetric-log count axis keeps the few far movers visible.",
            "Histograms of per-token embedding drift, one per compared model; the bin counts "
            "are in the table below.",
            token_histogram_chart(data), heading="Drift over the whole vocabulary"))
    return out


def _powers_of_ten(top: int) -> list[int]:
    """Axis ticks 0, 1, 10, 100, … up to ``top``: symlog's own ticks are too sparse."""
    ticks, p = [0, 1], 10
    while p <= top:
        ticks.append(p)
        p *= 10
    return ticks


def slug(name: str) -> str:
    """An id-safe form of a model name, for HTML ids and figure ids."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "x"
