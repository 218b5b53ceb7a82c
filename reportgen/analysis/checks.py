"""Checks → PASS / WARN / FAIL / ERROR, with a message showing the value and threshold."""

from __future__ import annotations

import math
from typing import Any

from reportgen.core.records import STATUS_ORDER, CheckResult, Comparison
from reportgen.spec.conditions import parse_condition


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def evaluate(
    check_id: str,
    metric: str,
    candidate: str,
    comparison: Comparison | None,
    fail_if: str | None,
    warn_if: str | None,
    description: str = "",
) -> CheckResult:
    """Evaluate one check against one comparison. A missing metric is ERROR, with why."""
    conds = [f"fail_if {fail_if}" if fail_if else "", f"warn_if {warn_if}" if warn_if else ""]
    condition = "; ".join(c for c in conds if c)

    def result(value: float | None, status: str, message: str) -> CheckResult:
        return CheckResult(
            check_id, metric, candidate, condition, value, status, message,
            fail_if, warn_if, description,
        )

    if comparison is None:
        return result(None, "ERROR", f"no comparison for candidate {candidate!r}")
    mv = comparison.metrics.get(metric)
    if mv is None:
        return result(None, "ERROR", f"metric {metric} was not computed for {candidate}")
    if mv.value is None or not math.isfinite(mv.value):
        why = mv.error or "the metric has no value"
        return result(None, "ERROR", f"{metric} could not be computed: {why}")
    v = float(mv.value)
    if fail_if and parse_condition(fail_if).holds(v):
        return result(v, "FAIL", f"{metric} = {_fmt(v)}, fails because it is {fail_if.strip()}")
    if warn_if and parse_condition(warn_if).holds(v):
        return result(v, "WARN", f"{metric} = {_fmt(v)}, warns because it is {warn_if.strip()}")
    limits = " and ".join(
        f"not {c.strip()}" for c in (fail_if, warn_if) if c
    )
    return result(v, "PASS", f"{metric} = {_fmt(v)}, passes ({limits})")


def evaluate_series(chk: Any, series: Any, by_cand: dict[str, Comparison]) -> CheckResult:
    """One check over a series (``spec.series.Series``): every step, the worst status (the
    step it names, or ``final``), or the onset against ``*_onset_before``."""
    cid = chk.id or chk.metric

    def at(step: int, name: str) -> CheckResult:
        return evaluate(cid, chk.metric, series.name, by_cand.get(name), chk.fail_if,
                        chk.warn_if, chk.description)

    if chk.fail_if_onset_before is not None or chk.warn_if_onset_before is not None:
        return _onset(chk, series, [(s, at(s, n)) for s, n in series.steps])
    if chk.step is not None:
        step, name = series.final if chk.step == "final" else next(
            (s, n) for s, n in series.steps if s == chk.step)
        r = at(step, name)
        r.message = f"step {step}: {r.message}"
        return r
    results = [(s, at(s, n)) for s, n in series.steps]
    # the worst status; among equals the latest step (an all-PASS run shows its final value)
    worst_step, worst = max(results, key=lambda sr: (STATUS_ORDER.index(sr[1].status), sr[0]))
    listing = ", ".join(f"{s} {r.status}" for s, r in results)
    worst.message = (f"step {worst_step}: {worst.message} (worst of {len(results)} steps: "
                     f"{listing})")
    return worst


def _onset(chk: Any, series: Any, results: list[tuple[int, CheckResult]]) -> CheckResult:
    """The first step at which the check's warn_if or fail_if holds, judged by its step."""
    first = results[0][1]
    conds = [first.condition] + [f"{k} {v}" for k, v in (
        ("fail_if_onset_before", chk.fail_if_onset_before),
        ("warn_if_onset_before", chk.warn_if_onset_before)) if v is not None]
    condition = "; ".join(c for c in conds if c)

    def result(value: float | None, status: str, message: str) -> CheckResult:
        return CheckResult(first.id, chk.metric, series.name, condition, value, status,
                           message, chk.fail_if, chk.warn_if, chk.description)

    crossing = " or ".join(c.strip() for c in (chk.fail_if, chk.warn_if) if c)
    for step, r in results:
        if r.status == "ERROR":
            return result(None, "ERROR", f"step {step}: {r.message}")
        if r.status in ("WARN", "FAIL"):
            head = f"{chk.metric} is first {crossing} at step {step} ({_fmt(r.value or 0.0)})"
            for status, before in (("FAIL", chk.fail_if_onset_before),
                                   ("WARN", chk.warn_if_onset_before)):
                if before is not None and step < before:
                    verb = "fails" if status == "FAIL" else "warns"
                    return result(r.value, status, f"{head}, {verb} because that is before "
                                                   f"step {before}")
            limits = " and ".join(f"not before step {b}" for b in (
                chk.fail_if_onset_before, chk.warn_if_onset_before) if b is not None)
            return result(r.value, "PASS", f"{head}, passes ({limits})")
    steps = [s for s, _ in results]
    return result(None, "PASS", f"{chk.metric} is never {crossing} in {len(steps)} steps "
                                f"({steps[0]}–{steps[-1]}), passes")
