"""Altair charts built from the certificate dict alone (no model, no arrays).

The same Vega-Lite specs are embedded live in the HTML and turned into static SVG for the
PDF, so every chart uses fixed widths (``width="container"`` has no meaning in WeasyPrint)
and explicitly named parameters (Altair's automatic names change between calls, which
would make two renders of one certificate differ).
"""

from __future__ import annotations

import contextlib
import math
import re
from dataclasses import dataclass
from typing import Any

import altair as alt

from ..numfmt import plural

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


def _byte_alphabet() -> dict[str, int]:
    """GPT-2's byte-level BPE alphabet (printable bytes as themselves, the rest shifted past
    U+0100), inverted: character → byte."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
            *range(ord("®"), ord("ÿ") + 1)]
    chars, n = {}, 0
    for b in range(256):
        if b in keep:
            chars[chr(b)] = b
        else:
            chars[chr(256 + n)] = b
            n += 1
    return chars


_BYTES = _byte_alphabet()
_VISIBLE = {" ": "␣", "\n": "⏎", "\t": "⇥"}


def token_label(token: str) -> str:
    """Tokens as a reader can see them: byte-level BPE decoded ('Ġbank' → '␣bank'),
    whitespace made visible, anything else unprintable shown as a Python literal."""
    if token and any(ord(c) > 255 for c in token) and all(c in _BYTES for c in token):
        with contextlib.suppress(UnicodeDecodeError):
            token = bytes(_BYTES[c] for c in token).decode("utf-8")
    shown = "".join(_VISIBLE.get(c, c) for c in token)
    if shown and shown.isprintable():
        return shown
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
    return alt.Tooltip(f"{field}:Q", title="cosine distance", format=".4~g")


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
                 alt.Tooltip("noise_floor_ratio:Q", title="× noise floor", format=".3~g")],
    ).add_params(pick)
    layers: list[alt.Chart] = [bars]
    floor = noise_floor(data)
    every = len(table(comparison(data, candidate), "concepts"))
    subtitle = f"{len(rows)} of {plural(every, 'concept')}"
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
             tooltip=[alt.Tooltip("noise_floor:Q", title="noise-floor mean", format=".4~g")])


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
           alt.Tooltip("mean:Q", title="mean cosine distance", format=".4~g"),
           alt.Tooltip("std:Q", format=".4~g"), alt.Tooltip("count:Q", title="concepts"),
           alt.Tooltip("top_quartile_share:Q", title="share in top quartile", format=".0%"),
           alt.Tooltip("noise_floor_ratio:Q", title="× noise floor", format=".3~g")]
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
                          alt.Tooltip("floor_mean:Q", title="noise-floor mean", format=".4~g")]))
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
                             format=".4~g")],
    ).add_params(pick).properties(
        width=WIDTH, height=260,
        title=alt.Title("Concept drift by layer",
                        subtitle="Last-token hidden state; dashed lines are noise floors"),
    )
    return _finish(chart)


def no_concept_moved(comp: dict[str, Any]) -> bool:
    """Every concept's last-layer state is the base's: no ranking to draw."""
    top = metric_value(comp, "concepts.cosine_distance.max")
    return top is not None and top <= 0


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
                        subtitle=f"{plural(len(rows), 'token')} with the largest embedding "
                                 "drift"),
    )
    return _finish(chart)


def shared_token_histogram(data: dict[str, Any]) -> tuple[list[dict[str, Any]], float]:
    """Every compared model's per-token drift counts on one set of bins from 0, and where
    the last bin ends; models in which no token moved are left out.

    The shared width is the widest of the models' own (a power of two: see
    :func:`reportgen.metrics.embeddings.drift_histogram`); each model's bins nest in it, so
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
    pick = _legend_pick("pick_hist", "candidate")
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
                        subtitle=subtitle),
    )
    return _finish(chart)


# ------------------------------------------------------------- representation drift (issue 3)


def _line_by_candidate(rows: list[dict], y: str, y_title: str, title: str, subtitle: str,
                       data: dict[str, Any], param: str, tip_extra: list | None = None
                       ) -> ChartLike:
    domain, colours = candidate_colours(data)
    pick = _legend_pick(param, "candidate")
    chart = alt.Chart(alt.Data(values=rows)).mark_line(point=True, strokeWidth=2).encode(
        x=alt.X("layer:Q", title="layer (0 = embedding output)",
                axis=alt.Axis(tickMinStep=1, format="d")),
        y=alt.Y(f"{y}:Q", title=y_title, scale=alt.Scale(zero=False)),
        color=alt.Color("candidate:N", title="candidate",
                        scale=alt.Scale(domain=domain, range=colours)),
        opacity=_faded(pick),
        tooltip=[alt.Tooltip("candidate:N"), alt.Tooltip("layer:Q"),
                 alt.Tooltip(f"{y}:Q", title=y_title, format=".4~g"), *(tip_extra or [])],
    ).add_params(pick).properties(width=WIDTH, height=240,
                                  title=alt.Title(title, subtitle=subtitle))
    return _finish(chart)


def jaccard_distribution_chart(data: dict[str, Any]) -> ChartLike:
    """How many concepts keep 0 … k of their k neighbours, per compared model."""
    rows = [{**r, "candidate": c["candidate"], "jaccard_label": f"{r['jaccard']:.2f}"}
            for c in comparisons(data) for r in table(c, "neighbors_concepts_distribution")]
    domain, colours = candidate_colours(data)
    pick = _legend_pick("pick_jaccard", "candidate")
    chart = alt.Chart(alt.Data(values=rows)).mark_bar().encode(
        x=alt.X("shared:O", title="neighbours kept (of k); Jaccard = kept / (2k − kept)"),
        xOffset=alt.XOffset("candidate:N", sort=domain),
        y=alt.Y("count:Q", title="concepts"),
        color=alt.Color("candidate:N", title="candidate",
                        scale=alt.Scale(domain=domain, range=colours)),
        opacity=_faded(pick),
        tooltip=[alt.Tooltip("candidate:N"), alt.Tooltip("shared:Q", title="kept"),
                 alt.Tooltip("jaccard_label:N", title="Jaccard"),
                 alt.Tooltip("count:Q", title="concepts")],
    ).add_params(pick).properties(
        width=WIDTH, height=220,
        title=alt.Title("Concept neighbourhoods: how many neighbours each concept kept",
                        subtitle="Bars to the left: concepts whose neighbourhood was rewired"))
    return _finish(chart)


def cka_chart(data: dict[str, Any]) -> ChartLike:
    rows = [{**r, "candidate": c["candidate"]} for c in comparisons(data)
            for r in table(c, "cka") if r.get("cka") is not None]
    return _line_by_candidate(
        rows, "cka", "linear CKA", "Representation similarity by layer (linear CKA)",
        "Concept prompts, last-token states; 1 = same geometry as the base", data, "pick_cka")


def _shared_top(values: list[float]) -> float:
    """The top of a colour or y scale that several candidates' charts share (0 to it), so
    the same colour or height means the same drift in each; 1 when there is nothing."""
    return max(values, default=0.0) or 1.0


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
    top = _shared_top([r["mean"] for c in comparisons(data) if c.get("role") != "noise_floor"
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
    return _finish(chart)


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
    top = _shared_top([r["relative_drift"] for c in comparisons(data)
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
    return _finish(chart)


def domains_chart(data: dict[str, Any], candidate: str) -> ChartLike:
    rows = table(comparison(data, candidate), "domains")
    names = sorted({r["domain"] for r in rows})
    top = _shared_top([r["cosine_distance_mean"] for c in comparisons(data)
                       for r in table(c, "domains") if r.get("cosine_distance_mean") is not None])
    pick = _legend_pick("pick_domain", "domain")
    chart = alt.Chart(alt.Data(values=rows)).mark_line(point=True, strokeWidth=2).encode(
        x=alt.X("layer:Q", title="layer (0 = embedding output)",
                axis=alt.Axis(tickMinStep=1, format="d")),
        y=alt.Y("cosine_distance_mean:Q", title=f"mean {DRIFT_AXIS}",
                scale=alt.Scale(domain=[0.0, top])),
        color=alt.Color("domain:N", title="domain",
                        scale=alt.Scale(domain=names, range=_category_range(names))),
        opacity=_faded(pick),
        tooltip=[alt.Tooltip("domain:N"), alt.Tooltip("layer:Q"),
                 alt.Tooltip("cosine_distance_mean:Q", title="mean drift", format=".4~g"),
                 alt.Tooltip("cka:Q", title="linear CKA", format=".4~g")],
    ).add_params(pick).properties(width=WIDTH, height=240, title=alt.Title(
        f"Domain drift by layer: {candidate}",
        subtitle="Mean-pooled hidden states of each domain's texts; one y axis for every "
                 "compared model"))
    return _finish(chart)


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
    return _finish(chart)


def projection_category_chart(data: dict[str, Any]) -> ChartLike:
    rows = projection_rows(data)
    cats = categories(data) or sorted({r["category"] for r in rows})
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    shapes = ["circle", "triangle", "square", "diamond", "cross", "triangle-down"]
    pick = _legend_pick("pick_umap_category", "category")
    chart = alt.Chart(alt.Data(values=rows)).mark_point(filled=True, size=30).encode(
        x=alt.X("x:Q", title="UMAP 1", axis=alt.Axis(labels=False, ticks=False)),
        y=alt.Y("y:Q", title="UMAP 2", axis=alt.Axis(labels=False, ticks=False)),
        color=alt.Color("category:N", title="category",
                        scale=alt.Scale(domain=cats, range=_category_range(cats))),
        shape=alt.Shape("variant:N", title="variant", scale=alt.Scale(
            domain=variants, range=[shapes[i % len(shapes)] for i in range(len(variants))])),
        opacity=_faded(pick),
        tooltip=[alt.Tooltip("term:N"), alt.Tooltip("category:N"), alt.Tooltip("variant:N"),
                 alt.Tooltip("drift:Q", title="cosine distance", format=".4~g")],
    ).add_params(pick).properties(width=WIDTH, height=420, title=alt.Title(
        "Joint UMAP of the concepts, by category",
        subtitle="Every variant in one coordinate system; shape: variant"))
    return _finish(chart)


def representation_figures(data: dict[str, Any]) -> list[Figure]:
    out: list[Figure] = []
    comps = comparisons(data)
    real = [c for c in comps if c.get("role") != "noise_floor"]
    for c in comps:
        if table(c, "concept_layers") and c in real:
            name = c["candidate"]
            out.append(Figure(
                f"layer-heatmap-{slug(name)}", "concepts",
                f"Concept drift by layer and category: {name}",
                "Rows are concept categories, columns are layers; a cell's colour is the mean "
                "drift of the category's concepts at that layer. A dark cell shows where in "
                "the network a category moved.",
                f"Heatmap of mean concept drift per layer and category for {name}.",
                layer_category_heatmap(data, name), name, "Drift by layer"))
    if any(table(c, "neighbors_concepts_distribution") for c in comps):
        out.append(Figure(
            "neighbors-distribution", "neighbors", "Concept neighbourhoods kept",
            "For each concept, its k nearest concepts are found in the base and in the "
            "candidate separately. Bars count the concepts by how many of those k neighbours "
            "they kept; mass on the left means rewired neighbourhoods.",
            "Bar chart of the number of concepts keeping 0 to k neighbours, per compared "
            "model; the most rewired concepts are listed below with both neighbour lists.",
            jaccard_distribution_chart(data), heading="Concept neighbourhoods"))
    if any(table(c, "cka") for c in comps):
        out.append(Figure(
            "cka-layers", "cka", "Linear CKA by layer",
            "Linear CKA compares the geometry of all concepts at once, per layer: 1 means the "
            "candidate's concept representations are an orthogonal transform and rescaling of "
            "the base's; lower means the geometry changed there.",
            "Line chart of linear CKA per layer for each compared model; the table below has "
            "the same numbers.", cka_chart(data), heading="Where in the network"))
    for c in comps:
        if table(c, "weights_blocks") and not no_weight_changed(c):
            name = c["candidate"]
            out.append(Figure(
                f"weights-{slug(name)}", "weights", f"Weight drift: {name}",
                "Each cell is the relative Frobenius change of the weights of one module type "
                "in one transformer block, read from the checkpoint files.",
                f"Heatmap of relative weight drift per block and module type for {name}.",
                weights_chart(data, name), name, "Weight drift by block and module"))
    for c in comps:
        if table(c, "domains"):
            name = c["candidate"]
            out.append(Figure(
                f"domains-{slug(name)}", "domains", f"Domain drift by layer: {name}",
                "Each line follows one domain's texts through the network: the mean cosine "
                "distance of their mean-pooled hidden states between base and candidate.",
                f"Line chart of per-domain drift by layer for {name}; the table below adds "
                "linear CKA.", domains_chart(data, name), name, "Domains by layer"))
    if projection_rows(data):
        for c in real:
            name = c["candidate"]
            out.append(Figure(
                f"umap-{slug(name)}", "neighbors", f"Joint UMAP: base → {name}",
                "One UMAP fitted on every variant's concept representations together, so all "
                "share one map. A line joins a concept's base point to its candidate point; "
                "red lines moved most in the original space. UMAP distorts distances: read "
                "neighbourhoods, not lengths.",
                f"Scatter plot of concepts in the base and {name} with lines between them.",
                projection_chart(data, name), name, "Joint projection (UMAP)"))
        out.append(Figure(
            "umap-categories", "neighbors", "Joint UMAP by category",
            "The same map, every variant, coloured by concept category.",
            "Scatter plot of every variant's concepts in the joint UMAP, coloured by category.",
            projection_category_chart(data), heading="Joint projection (UMAP)"))
    return out


# ------------------------------------------------------------------------------- figures


def figures(data: dict[str, Any]) -> list[Figure]:
    """Every chart the certificate supports, in reading order, each with caption and alt."""
    out: list[Figure] = []
    comps = [c for c in comparisons(data) if table(c, "concepts")]
    for c in comps:
        name = c["candidate"]
        if no_concept_moved(c):
            continue  # the concept section says so in words
        out.append(Figure(
            f"top-concepts-{slug(name)}", "concepts", f"Most-moved concepts: {name}",
            "Each bar is one concept term; longer bars moved further from the base model. "
            "Colour is the concept's category. "
            "The dashed line, when shown, is the mean drift of the noise-floor variant: bars "
            "near it are within quantization noise.",
            f"Bar chart of the {plural(min(20, len(table(c, 'concepts'))), 'concept')} with "
            "the largest "
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
    tok = [c for c in comparisons(data) if moved_tokens(c)]
    for c in tok:
        name = c["candidate"]
        out.append(Figure(
            f"token-movers-{slug(name)}", "embeddings", f"Top token movers: {name}",
            "Each bar is one vocabulary token; its length is the cosine distance between the "
            "token's input embedding in the base model and in this candidate.",
            f"Bar chart of the tokens whose input embedding moved most in {name}; the table "
            "below lists the same tokens.",
            token_movers_chart(data, name), name, "Top token movers"))
    if shared_token_histogram(data)[0]:
        out.append(Figure(
            "token-histogram", "embeddings", "Token-embedding drift over the vocabulary",
            "How many tokens moved by how much, one panel per compared model in which any "
            "token moved, on the same bins and the same axis from 0. Most tokens sit near "
            "zero; the symmetric-log count axis keeps the few far movers visible.",
            "Histograms of per-token embedding drift, one per compared model; the bin counts "
            "are in the table below.",
            token_histogram_chart(data), heading="Drift over the whole vocabulary"))
    rep = representation_figures(data)
    # the layer × category heatmaps sit right after the concept line chart
    heat = [f for f in rep if f.id.startswith("layer-heatmap-")]
    at = next((i + 1 for i, f in enumerate(out) if f.id == "concept-layers"), len(out))
    out[at:at] = heat
    from .views import views

    plugged = [f for v in views().values() for f in v.figures(data)]
    return out + [f for f in rep if f not in heat] + plugged


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
