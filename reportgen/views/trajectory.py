"""A metric against release or training step, drawn one way for the archive's trends and a
series' trajectories (:func:`metric_chart`): a line per model, the noise floor as a band (0
to ``floor_multiple`` × the floor's value: a point inside it has not left the noise yet),
the checks' thresholds as labelled rules. Per series and family, the headline metrics
against the step, and small multiples of the most moved concepts; pure functions of the
certificate's ``series`` block."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import altair as alt

from reportgen.core.names import lookup
from reportgen.spec.conditions import parse_condition
from reportgen.views.charts import (
    DRIFT_AXIS,
    FLOOR_COLOUR,
    WIDTH,
    Figure,
    Spec,
    category_range,
    concat_spec,
    finish,
    layer_spec,
    slug,
)

MAX_METRICS = 4  # panels per chart: one chart fits a printed page
COLUMNS = 2  # metric panels per row
CONCEPT_COLUMNS = 4  # small multiples of the most moved concepts, per row
FAR = 4.0  # a threshold further than this × the values' spread is named, not drawn
CHAR_PX = 5.6  # about one character of a threshold's 10 px label, to set labels apart
MAX_TICKS = 8  # up to this many steps, the axis ticks are the steps themselves
KIND_COLOURS = {"warn": "#b36b00", "fail": "#c0420a"}
LINE_COLOUR = "#0072B2"


# ------------------------------------------------ one metric against release or step


@dataclass(frozen=True)
class Along:
    """What a trend runs along: releases in filing order (ordinal) or training steps."""

    field: str
    title: str
    releases: tuple[str, ...] = ()
    steps: tuple[int, ...] = ()

    def x(self, titled: bool = True) -> alt.X:
        title = self.title if titled else None
        if self.releases:
            return alt.X(f"{self.field}:O", title=title, sort=list(self.releases),
                         axis=alt.Axis(labelAngle=0))
        ticks = list(self.steps) if 0 < len(self.steps) <= MAX_TICKS else alt.Undefined
        return alt.X(f"{self.field}:Q", title=title, scale=alt.Scale(zero=False, padding=8),
                     axis=alt.Axis(format="d", values=ticks))


def by_step(steps: list[int]) -> Along:
    return Along("step", "training step", steps=tuple(steps))


def by_release(names: list[str]) -> Along:
    return Along("release", "release", releases=tuple(names))


@dataclass(frozen=True)
class Limit:
    """A check's threshold drawn as a rule: its kind (warn, fail), condition and value, and
    the models whose checks set it (the archive's checks each name one)."""

    kind: str
    condition: str
    at: float
    models: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.kind} {self.condition}" + (f" ({', '.join(self.models)})"
                                                  if self.models else "")


def limits_of(thresholds: list[dict[str, Any]]) -> list[Limit]:
    """Rules from ``{kind, condition, model?}`` entries, each distinct condition once with
    every model that sets it; one that does not parse (an untrusted certificate's) is left
    out."""
    out: dict[tuple[str, str], Limit] = {}
    for t in thresholds:
        kind, cond, model = str(t.get("kind")), str(t.get("condition")), t.get("model")
        try:
            at = parse_condition(cond).threshold
        except ValueError:
            continue
        seen = out.get((kind, cond), Limit(kind, cond, at))
        models = seen.models + ((str(model),) if model and str(model) not in seen.models
                                else ())
        out[(kind, cond)] = Limit(kind, cond, at, models)
    return list(out.values())


def metric_chart(rows: list[dict[str, Any]], along: Along, models: tuple[list[str], list[str]],
                 *, title: str, floor: tuple[float, float] | None = None,
                 limits: list[Limit] | None = None, width: int = WIDTH,
                 height: int = 200, x_title: bool = True) -> Spec:
    """One metric against release or step: a line and points per model (``rows``: the
    along field, ``candidate``, ``value``), the noise floor as a band from 0 to ``floor``
    = (value, multiple) × value, and each limit as a dashed rule labelled with its
    condition. The archive's trends and a series' trajectories are both drawn with it."""
    domain, colours = models
    base = alt.Chart().encode(
        x=along.x(x_title), y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False)),
        color=alt.Color("candidate:N", title="model", scale=alt.Scale(domain=domain,
                                                                      range=colours),
                        legend=alt.Legend() if len(domain) > 1 else None),
        tooltip=[alt.Tooltip(f"{along.field}:{'O' if along.releases else 'Q'}"),
                 alt.Tooltip("candidate:N", title="model"),
                 alt.Tooltip("value:Q", format=".4~g")])
    layers: list[alt.Chart] = []
    if floor is not None:
        value, multiple = floor
        band = [{"low": 0.0, "high": value * multiple, "floor": value}]
        layers.append(alt.Chart(alt.Data(values=band)).mark_rect(
            color=FLOOR_COLOUR, opacity=0.15).encode(
            y="low:Q", y2="high:Q",
            tooltip=[alt.Tooltip("floor:Q", title="noise floor", format=".4~g"),
                     alt.Tooltip("high:Q", title=f"{multiple:g} × noise floor",
                                 format=".4~g")]))
    layers += [base.mark_line(strokeWidth=2), base.mark_point(filled=True, size=40)]
    if limits:
        values = [r["value"] for r in rows] + ([0.0, floor[0] * floor[1]] if floor else [])
        layers += _limit_layers(limits, values, width)
    return layer_spec(layers, data={"values": rows}, width=width, height=height,
                      title={"text": title, "fontSize": 12})


def _limit_layers(limits: list[Limit], values: list[float], width: int) -> list[alt.Chart]:
    """Each limit as a dashed rule labelled with its condition, labels set apart from the
    right, lowest first; a limit far outside the values (more than :data:`FAR` times their
    spread) is only named, with an arrow saying which way it lies, above the plot, so it
    does not flatten the line to the axis."""
    lo, hi = min(values, default=0.0), max(values, default=0.0)
    spread = (hi - lo) or abs(hi) or 1.0
    rows: list[dict[str, Any]] = []
    for edge in ("in", "off"):
        mine = sorted((lim for lim in limits if _off(lim.at, lo, hi, spread) == (edge == "off")),
                      key=lambda lim: lim.at)
        text = [_arrow(lim.at, hi) + lim.label if edge == "off" else lim.label for lim in mine]
        for i, (lim, label) in enumerate(zip(mine, text, strict=True)):
            rows.append({"kind": lim.kind, "condition": lim.condition, "threshold": lim.at,
                         "edge": edge, "label": label,
                         "colour": KIND_COLOURS.get(lim.kind, FLOOR_COLOUR),
                         "pos": width - sum(CHAR_PX * len(t) + 14 for t in text[:i])})
    base = alt.Chart(alt.Data(values=rows)).encode(
        color=alt.Color("colour:N", scale=None),
        tooltip=[alt.Tooltip("kind:N"), alt.Tooltip("condition:N")])
    inside = base.transform_filter(alt.datum.edge == "in").encode(y="threshold:Q")
    label = inside.encode(x=alt.X("pos:Q", scale=None), text="label:N")
    text = {"align": "right", "baseline": "bottom", "dy": -2, "fontSize": 10}
    out = [inside.mark_rule(strokeDash=[6, 3], strokeWidth=1.5),
           label.mark_text(**text, stroke="white", strokeWidth=3).encode(  # a halo: legible
               color=alt.value("white")),                                 # over a line
           label.mark_text(**text)] if any(r["edge"] == "in" for r in rows) else []
    if any(r["edge"] == "off" for r in rows):  # above the plot, where no line runs
        out.append(base.transform_filter(alt.datum.edge == "off").mark_text(
            align="right", baseline="bottom", dy=-3, fontSize=10).encode(
            x=alt.X("pos:Q", scale=None), y=alt.value(0), text="label:N"))
    return out


def _off(at: float, lo: float, hi: float, spread: float) -> bool:
    return at > hi + FAR * spread or at < lo - FAR * spread


def _arrow(at: float, hi: float) -> str:
    """Which way a threshold off the chart lies."""
    return "\u2191 " if at > hi else "\u2193 "


# ------------------------------------------------------------- a series' trajectories


def _family(name: str) -> str:
    return name.split(".", 1)[0]


#: one colour per series: a chart draws every series of the audit, so they compare at a glance
SERIES_COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9"]


def chosen(blocks: list[dict[str, Any]], headline: Any) -> dict[str, list[str]]:
    """Per family (in the blocks' order), its headline metrics with a value at some step of
    some series: those a check thresholds first, at most :data:`MAX_METRICS`."""
    out: dict[str, dict[str, bool]] = {}
    for block in blocks:
        for name, m in (block.get("metrics") or {}).items():
            if headline(name) and any(v is not None for v in m.get("values") or []):
                seen = out.setdefault(_family(name), {})
                seen[name] = seen.get(name, False) or bool(m.get("thresholds"))
    return {fam: sorted(names, key=lambda n: not names[n])[:MAX_METRICS]
            for fam, names in out.items()}


def _panel(blocks: list[dict[str, Any]], name: str, titled: bool) -> Spec:
    """One metric: a line per series, the audit's noise-floor band, every series' thresholds
    (each labelled with its series where there are several)."""
    rows, steps, limits, floor = [], set(), [], None
    for block in blocks:
        m = (block.get("metrics") or {}).get(name)
        if m is None:
            continue
        own = [s.get("step") for s in block.get("steps") or []]
        steps.update(own)
        rows += [{"step": s, "candidate": block.get("name"), "metric": name, "value": v}
                 for s, v in zip(own, m.get("values") or [], strict=False) if v is not None]
        several = len(blocks) > 1
        limits += [{**t, "model": block.get("name")} if several else t
                   for t in m.get("thresholds") or []]
        multiple, value = (block.get("floor") or {}).get("multiple"), m.get("floor")
        if floor is None and isinstance(value, (int, float)) and multiple:
            floor = (value, multiple)  # one floor per audit: every series' is the same
    names = [str(b.get("name")) for b in blocks]
    colours = [SERIES_COLOURS[i % len(SERIES_COLOURS)] for i in range(len(names))]
    return metric_chart(rows, by_step(sorted(steps)), (names, colours), title=name,
                        floor=floor, limits=limits_of(limits),
                        width=(WIDTH - 40) // COLUMNS, height=110, x_title=titled)


def _label(blocks: list[dict[str, Any]]) -> str:
    return ", ".join(str(b.get("name")) for b in blocks)


def trajectory_chart(blocks: list[dict[str, Any]], family: str,
                     names: list[str]) -> Spec:
    """One panel per metric, :data:`COLUMNS` a row (wider than tall: it fits a printed
    page), each on its own y scale, the steps shared; the step axis titled on the last row;
    every series of the audit a line of its own colour."""
    last_row = (len(names) - 1) // COLUMNS * COLUMNS
    panels = [_panel(blocks, n, i >= last_row) for i, n in enumerate(names)]
    return concat_spec(
        panels, COLUMNS, 16, resolve={"scale": {"x": "shared", "color": "shared"}},
        title=alt.Title(f"{_label(blocks)}: {family} metrics by training step",
                        subtitle="grey band: up to the floor multiple × the noise floor"
                        + ("; dashed: the checks' thresholds" if _has_limits(blocks, names)
                           else "")))


def _has_limits(blocks: list[dict[str, Any]], names: list[str]) -> bool:
    return any(((b.get("metrics") or {}).get(n) or {}).get("thresholds")
               for b in blocks for n in names)


def trajectory_figures(blocks: list[dict[str, Any]], headline: Any,
                       keep: Any = None) -> list[Figure]:
    """One figure per family with a headline metric in some series; every series of the
    audit drawn in it (a line each), so a planted run and its control compare in one
    picture. ``keep`` (the families in order) chooses which are drawn: a chart not drawn is
    not built (a trajectory chart takes a tenth of a second to compose)."""
    out = []
    multiple = next((m for b in blocks if (m := (b.get("floor") or {}).get("multiple"))), None)
    ident = slug("-".join(str(b.get("name")) for b in blocks))
    families = chosen(blocks, headline)
    for family in (keep(list(families)) if keep else list(families)):
        names = families[family]
        info = [lookup(n) for n in names]
        worse = ", ".join(n for n, i in zip(names, info, strict=True)
                          if i is not None and not i.higher_is_worse)
        unbanded = [n for n, i in zip(names, info, strict=True) if i is not None
                    and i.higher_is_worse and not i.zero_when_unchanged]
        lines = ("Each panel is one metric at each checkpoint, on its own scale"
                 + (", a line per series. " if len(blocks) > 1 else ". "))
        caption = (lines
                   + (f"The grey band runs from 0 to {multiple:g}× the noise floor's value; "
                      "a line above it has left the noise. " if multiple else
                      "The audit has no noise floor, so there is no band. ")
                   + (f"{', '.join(unbanded)}: no band, as "
                      f"{'its value is' if len(unbanded) == 1 else 'their values are'} not 0 "
                      "for an unchanged model. " if multiple and unbanded else "")
                   + ("Dashed rules are the thresholds of the checks on the series (one far "
                      "off the chart is named above it, with an arrow)"
                      if _has_limits(blocks, names) else
                      "No check on the series puts a threshold on these metrics")
                   + (f"; for {worse} lower means more change." if worse else "."))
        out.append(Figure(
            id=f"series-{ident}-{slug(family)}", family="series", heading=family,
            title=f"{family} by step", caption=caption,
            alt=f"Line charts of {len(names)} {family} metrics against the training step of "
                f"series {_label(blocks)}; the tables above hold the same numbers.",
            chart=trajectory_chart(blocks, family, names)))
    return out


def concept_chart(block: dict[str, Any], categories: list[str]) -> alt.FacetChart:
    """Small multiples: one panel per listed concept, its drift against step, every panel on
    the same axes (so a taller line is a larger drift); colour is the concept's category."""
    steps = [s.get("step") for s in block.get("steps") or []]
    concepts = block.get("concepts") or []
    rows = [{"term": c.get("term"), "category": c.get("category"), "step": s,
             "cosine_distance": v}
            for c in concepts for s, v in zip(steps, c.get("values") or [], strict=False)
            if v is not None]
    cats = categories or sorted({str(c.get("category")) for c in concepts})
    width = (WIDTH - 40 * CONCEPT_COLUMNS) // CONCEPT_COLUMNS
    chart = alt.Chart(alt.Data(values=rows)).mark_line(point=True, strokeWidth=2).encode(
        x=alt.X("step:Q", title="training step", axis=alt.Axis(format="d", tickCount=4),
                scale=alt.Scale(zero=False)),
        y=alt.Y("cosine_distance:Q", title=DRIFT_AXIS),
        color=alt.Color("category:N", title="category",
                        scale=alt.Scale(domain=cats, range=category_range(cats))),
        tooltip=[alt.Tooltip("term:N", title="concept"), alt.Tooltip("category:N"),
                 alt.Tooltip("step:Q", format="d"),
                 alt.Tooltip("cosine_distance:Q", title="cosine distance", format=".4~g")],
    ).properties(width=width, height=90).facet(
        facet=alt.Facet("term:N", title=None, sort=[c.get("term") for c in concepts],
                        header=alt.Header(labelFontSize=11)),
        columns=CONCEPT_COLUMNS,
        title=alt.Title(f"{block.get('name')}: drift of the most moved concepts by step",
                        subtitle="one panel per concept, all on the same axes"))
    return finish(chart)


def concept_figure(block: dict[str, Any], categories: list[str]) -> Figure | None:
    """The small multiples of the block's most moved concepts (None when it lists none)."""
    concepts = block.get("concepts") or []
    if not concepts:
        return None
    name = str(block.get("name"))
    return Figure(
        id=f"series-{slug(name)}-concept-steps", family="series",
        title="most moved concepts by step",
        caption=(f"The {len(concepts)} concepts that moved most by the last step of {name}, "
                 "each in its own panel: its cosine distance to the base at every checkpoint. "
                 "The panels share both axes, so the steepest rise is the largest drift. In "
                 "the HTML page, the concept explorer draws any other concept this way."),
        alt=f"Line charts of the drift of {len(concepts)} concepts against the training step "
            f"of series {name}; the table above holds the same numbers.",
        chart=concept_chart(block, categories))
