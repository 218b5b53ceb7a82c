"""Altair charts built from the certificate dict alone (no model, no arrays).

The same Vega-Lite specs are embedded live in the HTML and turned into static SVG for the
PDF, so every chart uses fixed widths (``width="container"`` has no meaning in a static SVG)
and explicitly named parameters (Altair's automatic names change between calls, which
would make two renders of one certificate differ).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

import altair as alt

from reportgen.core.numfmt import AXIS_LABEL_EXPR

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


class Spec(dict):
    """A Vega-Lite spec composed as a dict, where Altair's composition is too slow (every
    ``alt.concat`` deep-copies its panels and their layers): it answers ``to_dict`` like a
    chart, so a :class:`Figure` holds either."""

    def to_dict(self, validate: bool = False) -> dict[str, Any]:
        return dict(self)


def concat_spec(panels: list[Any], columns: int, spacing: int, **top: Any) -> Spec:
    """``alt.concat(*panels, columns=, spacing=)`` with ``top`` (title, resolve) as one
    finished spec, the panels each converted once."""
    schema, theme, parts = _parts(panels)
    return finish(Spec({"$schema": schema, "concat": parts, "columns": columns,
                        "spacing": spacing, **{k: _as_dict(v) for k, v in top.items()},
                        "config": theme}))


def layer_spec(layers: list[Any], **top: Any) -> Spec:
    """``alt.layer(*layers).properties(**top)`` as a spec (not finished: a panel)."""
    schema, theme, parts = _parts(layers)
    return Spec({"$schema": schema, "layer": parts,
                 **{k: _as_dict(v) for k, v in top.items()}, "config": theme})


def _parts(charts: list[Any]) -> tuple[str | None, dict[str, Any], list[dict[str, Any]]]:
    """(the ``$schema``, Altair's theme config, each chart's dict without them)."""
    parts = [c.to_dict(validate=False) for c in charts]
    schema = next((d["$schema"] for d in parts if "$schema" in d), None)
    theme = next((d["config"] for d in parts if "config" in d), {})
    for d in parts:
        d.pop("$schema", None)
        d.pop("config", None)
        if d.get("data") == {"name": "empty"}:  # Altair's stand-in for "the parent's data"
            del d["data"]
            if d.get("datasets") == {"empty": [{}]}:
                del d["datasets"]
    return schema, theme, parts


def _as_dict(value: Any) -> Any:
    return value.to_dict(validate=False) if hasattr(value, "to_dict") else value


@dataclass(frozen=True)
class Figure:
    """One chart with the words around it: the HTML and PDF lay these out in order."""

    id: str
    family: str  # metric family the chart belongs to: concepts | embeddings
    title: str
    caption: str  # how to read it
    alt: str  # a one-sentence text alternative; the table behind it follows the chart
    chart: ChartLike | Spec
    candidate: str | None = None
    heading: str = ""  # figures sharing a heading are grouped under one subheading

    @property
    def hint(self) -> str:
        """How to interact with the live chart (HTML only; the PDF's charts are static)."""
        spec = self.spec()
        params = spec.get("params", []) + [
            p for layer in spec.get("layer", []) for p in layer.get("params", [])]
        legend = any(p.get("bind") == "legend" for p in params)
        text = "Hover over a mark to see its numbers."
        if legend:
            text += " Click a legend entry to highlight it; shift-click to add more."
        return text

    def spec(self) -> dict[str, Any]:
        """The Vega-Lite spec (built once: the HTML embeds it and the PDF draws it)."""
        return self._spec

    @functools.cached_property
    def _spec(self) -> dict[str, Any]:
        # Not validated here (a third of the page's build time): the tests validate every
        # chart of the demo certificate against the Vega-Lite schema instead.
        return self.chart.to_dict(validate=False)


# ---------------------------------------------------------------------------- data access


def _steps(data: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(every series step's candidate name, each series' last step's)."""
    blocks = [b.get("steps") or [] for b in data.get("series") or []]
    return ({str(s.get("candidate")) for b in blocks for s in b},
            {str(b[-1].get("candidate")) for b in blocks if b})


def comparisons(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The comparisons the family sections draw: every candidate that is not a step of a
    series; a series only by its last step, and only where the audit has no other candidate
    (its steps are the series section's trajectory; every step's comparison stays in the
    JSON). Drawn in every family's charts, the demo's two runs doubled its PDF."""
    steps, last = _steps(data)
    comps = list(data.get("comparisons") or [])
    others = any(c.get("candidate") not in steps and c.get("role") != "noise_floor"
                 for c in comps)
    hidden = steps if others else steps - last
    return [c for c in comps if c.get("candidate") not in hidden]


def latest(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The comparisons the findings table and the summary list: a series by its last step
    (where the run ended), with every other candidate."""
    steps, last = _steps(data)
    return [c for c in data.get("comparisons") or [] if c.get("candidate") not in steps - last]


def comparison(data: dict[str, Any], candidate: str) -> dict[str, Any]:
    for c in data.get("comparisons") or []:
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


def unique_labels(labels: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for lab in labels:
        seen[lab] = seen.get(lab, 0) + 1
        out.append(lab if seen[lab] == 1 else f"{lab} ({seen[lab]})")
    return out


# ------------------------------------------------------------------------------- styling


def finish(chart: Any) -> Any:
    """Shared look: calm axes, readable fonts, no chart border. Set in place on the chart
    just built (any copy of a composed chart, ``configure_*`` included, re-copies all its
    layers: 0.4 s for a trajectory chart)."""
    config = alt.Config(
        font=FONT, padding=8, view=alt.ViewConfig(stroke=None),
        axis=alt.AxisConfig(labelFontSize=11, titleFontSize=12, titleFontWeight="normal",
                            gridColor="#e6e6e6", domainColor="#888", tickColor="#888"),
        axisQuantitative=alt.AxisConfig(labelExpr=AXIS_LABEL_EXPR, labelOverlap=True),
        legend=alt.LegendConfig(labelFontSize=11, titleFontSize=12, titleFontWeight="normal",
                                orient="right"),
        title=alt.TitleConfig(fontSize=14, anchor="start", subtitleFontSize=11,
                              subtitleColor="#555", offset=10))
    if isinstance(chart, Spec):  # over the theme's config, as Altair merges them
        theme, ours = chart.get("config") or {}, config.to_dict(validate=False)
        chart["config"] = {**theme, **{k: {**theme[k], **v} if isinstance(v, dict)
                                          and isinstance(theme.get(k), dict) else v
                                       for k, v in ours.items()}}
    else:
        chart.config = config
    return chart


def legend_pick(name: str, field: str) -> alt.Parameter:
    return alt.selection_point(name=name, fields=[field], bind="legend")


def faded(param: alt.Parameter) -> alt.OpacityValue:
    return alt.condition(param, alt.value(1.0), alt.value(0.15))


def drift_tooltip(field: str = "cosine_distance") -> alt.Tooltip:
    return alt.Tooltip(f"{field}:Q", title="cosine distance", format=".4~g")


# -------------------------------------------------------------------------------- charts




def category_range(cats: list[str]) -> list[str]:
    if len(cats) <= len(OKABE_ITO):
        return OKABE_ITO[: len(cats)]
    extra = ["#999999", "#882255", "#44AA99", "#117733", "#332288", "#DDCC77", "#AA4499"]
    pool = OKABE_ITO + extra
    return [pool[i % len(pool)] for i in range(len(cats))]


def floor_rule(value: float) -> alt.Chart:
    return alt.Chart(alt.Data(values=[{"noise_floor": value}])).mark_rule(
        color=FLOOR_COLOUR, strokeDash=[4, 3], strokeWidth=1.5,
    ).encode(x="noise_floor:Q",
             tooltip=[alt.Tooltip("noise_floor:Q", title="noise-floor mean", format=".4~g")])


















# ------------------------------------------------------------- representation drift (issue 3)


def line_by_candidate(rows: list[dict], y: str, y_title: str, title: str, subtitle: str,
                       data: dict[str, Any], param: str, tip_extra: list | None = None
                       ) -> ChartLike:
    domain, colours = candidate_colours(data)
    pick = legend_pick(param, "candidate")
    chart = alt.Chart(alt.Data(values=rows)).mark_line(point=True, strokeWidth=2).encode(
        x=alt.X("layer:Q", title="layer (0 = embedding output)",
                axis=alt.Axis(tickMinStep=1, format="d")),
        y=alt.Y(f"{y}:Q", title=y_title, scale=alt.Scale(zero=False)),
        color=alt.Color("candidate:N", title="candidate",
                        scale=alt.Scale(domain=domain, range=colours)),
        opacity=faded(pick),
        tooltip=[alt.Tooltip("candidate:N"), alt.Tooltip("layer:Q"),
                 alt.Tooltip(f"{y}:Q", title=y_title, format=".4~g"), *(tip_extra or [])],
    ).add_params(pick).properties(width=WIDTH, height=240,
                                  title=alt.Title(title, subtitle=subtitle))
    return finish(chart)






def shared_top(values: list[float]) -> float:
    """The top of a colour or y scale that several candidates' charts share (0 to it), so
    the same colour or height means the same drift in each; 1 when there is nothing."""
    return max(values, default=0.0) or 1.0


















def powers_of_ten(top: int) -> list[int]:
    """Axis ticks 0, 1, 10, 100, … up to ``top``: symlog's own ticks are too sparse."""
    ticks, p = [0, 1], 10
    while p <= top:
        ticks.append(p)
        p *= 10
    return ticks


def slug(name: str) -> str:
    """An id-safe form of a model name, for HTML ids and figure ids."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "x"
