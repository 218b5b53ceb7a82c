"""A series' trajectory: every metric at every step, the onsets, the most moved concepts and
sparse features over the steps, read from the per-step comparisons alone.

Each step of a series is an ordinary candidate (``NAME@STEP``) with its full comparison in the
certificate; the series block adds what needs the steps side by side, in step order, so a
trajectory chart or table is a pure function of it:

- ``metrics[name].values``: the metric at each step (None where it has no value);
- ``metrics[name].thresholds``: the warn/fail conditions the spec's checks put on it here;
- ``metrics[name].onset.threshold``: the first step at which one of them holds;
- ``metrics[name].floor`` and ``onset.floor``: the noise floor's value of the metric and the
  first step at which the metric reaches ``floor_multiple`` times it (metrics that grow with
  drift from 0 only, ``MetricInfo.zero_when_unchanged``: a multiple of an FVU ratio's floor
  of about 1 says nothing; a floor of zero has no multiple);
- ``concepts``: the concepts that moved most at the final step, their drift at each step;
- ``features``: per SAE layer, the features that moved most at the final step, their change
  at each step they were among the step's most moved, and the first such step.
"""

from __future__ import annotations

import math
from typing import Any

from reportgen.core.names import lookup
from reportgen.core.records import Comparison
from reportgen.spec.conditions import parse_condition


def series_block(loaded: Any, comparisons: list[Comparison]) -> list[dict[str, Any]]:
    """The certificate's ``series`` list, one entry per series of the spec."""
    by_cand = {c.candidate: c for c in comparisons}
    floor = next((c for c in comparisons if c.role == "noise_floor"), None)
    settings = loaded.spec.analysis.series
    out = []
    for s in loaded.series:
        steps = [step for step, _ in s.steps]
        comps = [by_cand.get(name) for _, name in s.steps]
        out.append({
            "name": s.name,
            "steps": [{"step": step, "candidate": name} for step, name in s.steps],
            "floor": None if floor is None else {"candidate": floor.candidate,
                                                 "multiple": settings.floor_multiple},
            "metrics": _metrics(loaded, s.name, steps, comps, floor, settings.floor_multiple),
            "concepts": _concepts(comps, settings.concepts),
            "features": _features(steps, comps, settings.features),
        })
    return out


def _value(comp: Comparison | None, name: str) -> float | None:
    mv = comp.metrics.get(name) if comp is not None else None
    if mv is None or mv.value is None or not math.isfinite(float(mv.value)):
        return None
    return float(mv.value)


def thresholds(loaded: Any, series: str, metric: str) -> list[dict[str, str]]:
    """The warn/fail conditions the spec's checks put on ``metric`` for this series."""
    out = []
    for chk in loaded.spec.checks:
        if chk.metric != metric or chk.candidate not in (None, series):
            continue
        for kind, cond in (("warn", chk.warn_if), ("fail", chk.fail_if)):
            if cond:
                out.append({"check": chk.id or chk.metric, "kind": kind,
                            "condition": str(parse_condition(cond))})
    return out


def first_crossing(steps: list[int], values: list[float | None],
                   conditions: list[str]) -> dict[str, Any] | None:
    """The first step whose value meets one of ``conditions``, with that value; or
    ``{"unknown_from": step}`` when a step before any crossing has no value (the onset
    cannot be known: it may lie there)."""
    parsed = [parse_condition(c) for c in conditions]
    return _first(steps, values, lambda v: any(c.holds(v) for c in parsed)) if parsed else None


def floor_onset(steps: list[int], values: list[float | None], floor: float | None,
                multiple: float) -> dict[str, Any] | None:
    """The first step at which the value reaches ``multiple`` × the (positive) floor (or
    ``{"unknown_from": step}``, as :func:`first_crossing`)."""
    if floor is None or floor <= 0:
        return None
    hit = _first(steps, values, lambda v: v >= multiple * floor)
    return {**hit, "ratio": hit["value"] / floor} if hit and "value" in hit else hit


def _first(steps: list[int], values: list[float | None],
           crosses: Any) -> dict[str, Any] | None:
    for step, v in zip(steps, values, strict=True):
        if v is None:
            return {"unknown_from": step}
        if crosses(v):
            return {"step": step, "value": v}
    return None


def _metrics(loaded: Any, series: str, steps: list[int], comps: list[Comparison | None],
             floor: Comparison | None, multiple: float) -> dict[str, Any]:
    names: dict[str, None] = {}
    for c in comps:
        if c is not None:
            names.update(dict.fromkeys(c.metrics))
    out = {}
    for name in names:
        values = [_value(c, name) for c in comps]
        limits = thresholds(loaded, series, name)
        info = lookup(name)
        grows = info is None or (info.higher_is_worse and info.zero_when_unchanged)
        fv = _value(floor, name) if grows and "noise_floor" not in name else None
        out[name] = {
            "values": values,
            "thresholds": limits,
            "floor": fv,
            "onset": {"threshold": first_crossing(steps, values,
                                                  [t["condition"] for t in limits]),
                      "floor": floor_onset(steps, values, fv, multiple)},
        }
    return out


def _concepts(comps: list[Comparison | None], top: int) -> list[dict[str, Any]]:
    """The ``top`` concepts by drift at the final step; each one's drift at every step."""
    final = comps[-1]
    rows = (final.tables.get("concepts") or []) if final is not None else []
    ranked = sorted((r for r in rows if isinstance(r.get("cosine_distance"), (int, float))),
                    key=lambda r: -float(r["cosine_distance"]))[:top]
    per_step = [{r.get("term"): r.get("cosine_distance")
                 for r in ((c.tables.get("concepts") or []) if c is not None else [])}
                for c in comps]
    return [{"term": r["term"], "category": r.get("category"),
             "values": [d.get(r["term"]) for d in per_step]} for r in ranked]


def _features(steps: list[int], comps: list[Comparison | None],
              top: int) -> list[dict[str, Any]]:
    """Per layer, the final step's ``top`` most moved features; each one's mean absolute
    change at the steps where it was among the most moved (None elsewhere: not listed)."""
    final = comps[-1]
    rows = (final.tables.get("sae_moved") or []) if final is not None else []
    per_step = [{(r.get("layer"), r.get("feature")): r.get("mean_abs_change")
                 for r in ((c.tables.get("sae_moved") or []) if c is not None else [])}
                for c in comps]
    out = []
    for layer in dict.fromkeys(r.get("layer") for r in rows):
        mine = [r for r in rows if r.get("layer") == layer][:top]
        for r in mine:
            key = (layer, r.get("feature"))
            values = [d.get(key) for d in per_step]
            first = next((s for s, v in zip(steps, values, strict=True) if v is not None), None)
            out.append({"layer": layer, "feature": r.get("feature"), "label": r.get("label"),
                        "values": values, "first_step": first})
    return out
