"""Trajectory charts: per series and family, each headline metric against the training step,
the noise floor as a band (0 to ``floor_multiple`` × the floor's value: a step inside it
has not left the noise yet) and the checks' thresholds as rules. A pure function of the
certificate's ``series`` block."""

from __future__ import annotations

from typing import Any

import altair as alt

from reportgen.core.names import lookup
from reportgen.spec.conditions import parse_condition
from reportgen.views.charts import FLOOR_COLOUR, WIDTH, Figure, finish, slug

MAX_METRICS = 4  # panels per chart: one chart fits a printed page
KIND_COLOURS = {"warn": "#E69F00", "fail": "#c0420a"}
LINE_COLOUR = "#0072B2"


def _family(name: str) -> str:
    return name.split(".", 1)[0]


def chosen(block: dict[str, Any], headline: Any) -> dict[str, list[str]]:
    """Per family (in the block's order), its headline metrics with a value at some step:
    those a check thresholds first, at most :data:`MAX_METRICS`."""
    out: dict[str, list[str]] = {}
    for name, m in (block.get("metrics") or {}).items():
        if headline(name) and any(v is not None for v in m.get("values") or []):
            out.setdefault(_family(name), []).append(name)
    metrics = block.get("metrics") or {}
    return {fam: sorted(names, key=lambda n: not metrics[n].get("thresholds"))[:MAX_METRICS]
            for fam, names in out.items()}


def _rows(block: dict[str, Any], names: list[str]) -> list[dict[str, Any]]:
    steps = [s.get("step") for s in block.get("steps") or []]
    multiple = (block.get("floor") or {}).get("multiple")
    rows: list[dict[str, Any]] = []
    for name in names:
        m = block["metrics"][name]
        rows += [{"layer": "value", "metric": name, "step": s, "value": v}
                 for s, v in zip(steps, m.get("values") or [], strict=False) if v is not None]
        floor = m.get("floor")
        if isinstance(floor, (int, float)) and multiple and steps:
            rows.append({"layer": "floor", "metric": name, "from": steps[0], "to": steps[-1],
                         "low": 0.0, "high": floor * multiple, "floor": floor})
        for t in m.get("thresholds") or []:
            try:
                at = parse_condition(str(t.get("condition"))).threshold
            except ValueError:  # an untrusted certificate's condition that does not parse
                continue
            rows.append({"layer": "threshold", "metric": name, "threshold": at,
                         "kind": t.get("kind"), "condition": t.get("condition")})
    return rows


def trajectory_chart(block: dict[str, Any], family: str, names: list[str]) -> alt.VConcatChart:
    """One panel per metric (each its own y scale), value against step, one under another."""
    rows = _rows(block, names)
    steps = [s.get("step") for s in block.get("steps") or []]
    panels = [_panel(name, {r["layer"] for r in rows if r["metric"] == name}, steps,
                     last=i == len(names) - 1) for i, name in enumerate(names)]
    chart = alt.vconcat(
        *panels, data=alt.Data(values=rows), spacing=12,
        title=alt.Title(f"{block.get('name')}: {family} metrics by training step",
                        subtitle="grey band: up to the floor multiple × the noise floor; "
                                 "dashed: the checks' thresholds"),
    ).resolve_scale(x="shared", y="independent")
    return finish(chart)


def _panel(name: str, layers: set[str], steps: list[Any], last: bool) -> alt.LayerChart:
    """One metric's panel: its line, and its band and rules only where it has them (an empty
    layer gives Vega an infinite extent, logged in the reader's console for every panel)."""
    base = alt.Chart().transform_filter(alt.datum.metric == name)
    axis = alt.Axis(format="d", values=steps, title="training step" if last else None)
    line = base.transform_filter(alt.datum.layer == "value").mark_line(
        point=True, strokeWidth=2, color=LINE_COLOUR).encode(
        x=alt.X("step:Q", axis=axis, scale=alt.Scale(zero=False)),
        y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False)),
        tooltip=[alt.Tooltip("metric:N"), alt.Tooltip("step:Q", format="d"),
                 alt.Tooltip("value:Q", format=".4~g")])
    drawn = [line]
    if "floor" in layers:
        drawn.insert(0, base.transform_filter(alt.datum.layer == "floor").mark_rect(
            color=FLOOR_COLOUR, opacity=0.15).encode(
            x="from:Q", x2="to:Q", y="low:Q", y2="high:Q",
            tooltip=[alt.Tooltip("floor:Q", title="noise floor", format=".4~g"),
                     alt.Tooltip("high:Q", title="band top (multiple × floor)",
                                 format=".4~g")]))
    if "threshold" in layers:
        drawn.append(base.transform_filter(alt.datum.layer == "threshold").mark_rule(
            strokeDash=[6, 3], strokeWidth=1.5).encode(
            y="threshold:Q",
            color=alt.Color("kind:N", title="threshold",
                            scale=alt.Scale(domain=list(KIND_COLOURS),
                                            range=list(KIND_COLOURS.values()))),
            tooltip=[alt.Tooltip("kind:N"), alt.Tooltip("condition:N")]))
    return alt.layer(*drawn).properties(
        width=WIDTH - 120, height=100,
        title=alt.Title(name, fontSize=11, fontWeight="normal", anchor="start", offset=4))


def trajectory_figures(block: dict[str, Any], headline: Any) -> list[Figure]:
    """One figure per family with a headline metric in the series."""
    out = []
    multiple = (block.get("floor") or {}).get("multiple")
    for family, names in chosen(block, headline).items():
        info = [lookup(n) for n in names]
        worse = ", ".join(n for n, i in zip(names, info, strict=True)
                          if i is not None and not i.higher_is_worse)
        caption = ("Each panel is one metric at each checkpoint of the run, on its own scale. "
                   + (f"The grey band runs from 0 to {multiple:g}× the noise floor's value; "
                      "a line above it has left the noise. " if multiple else
                      "The audit has no noise floor, so there is no band. ")
                   + "Dashed rules are the thresholds of the checks on this series"
                   + (f"; for {worse} lower means more change." if worse else "."))
        out.append(Figure(
            id=f"series-{slug(str(block.get('name')))}-{slug(family)}", family="series",
            title=f"{family} by step", caption=caption,
            alt=f"Line charts of {len(names)} {family} metrics against the training step of "
                f"series {block.get('name')}; the table above holds the same numbers.",
            chart=trajectory_chart(block, family, names)))
    return out
