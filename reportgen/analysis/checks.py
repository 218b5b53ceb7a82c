"""Checks → PASS / WARN / FAIL / ERROR, with a message showing the value and threshold."""

from __future__ import annotations

import math

from reportgen.core.records import CheckResult, Comparison
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
