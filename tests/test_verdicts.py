"""Check evaluation and condition parsing, with the exact messages users see."""

from __future__ import annotations

import pytest

from reportgen.analysis.checks import evaluate
from reportgen.core.records import Comparison, MetricValue, overall_verdict
from reportgen.spec.conditions import parse_condition


def _cmp(value, error=None) -> Comparison:
    return Comparison("base", "ft", "candidate",
                      {"m.x": MetricValue(value, "def", error=error)})


@pytest.mark.parametrize("text,value,holds", [
    ("> 0.2", 0.3, True), (">0.2", 0.2, False), (">= 0.2", 0.2, True), ("< 1e-3", 0.0001, True),
    ("<= -1", -1.0, True), ("== 3", 3.0, True), ("!= 3", 3.0, False), ("> .5", 0.6, True),
])
def test_conditions(text: str, value: float, holds: bool) -> None:
    assert parse_condition(text).holds(value) is holds


@pytest.mark.parametrize("bad", ["0.2", "> abc", ">> 1", "> 1 2", "", "greater than 1"])
def test_bad_conditions(bad: str) -> None:
    with pytest.raises(ValueError, match="expected an operator"):
        parse_condition(bad)


def test_statuses_and_messages() -> None:
    fail = evaluate("c", "m.x", "ft", _cmp(0.3), "> 0.2", "> 0.1")
    assert (fail.status, fail.message) == ("FAIL", "m.x = 0.3, fails because it is > 0.2")
    warn = evaluate("c", "m.x", "ft", _cmp(0.15), "> 0.2", "> 0.1")
    assert (warn.status, warn.message) == ("WARN", "m.x = 0.15, warns because it is > 0.1")
    ok = evaluate("c", "m.x", "ft", _cmp(0.05), "> 0.2", "> 0.1")
    assert (ok.status, ok.message) == ("PASS", "m.x = 0.05, passes (not > 0.2 and not > 0.1)")
    assert ok.condition == "fail_if > 0.2; warn_if > 0.1"
    err = evaluate("c", "m.x", "ft", _cmp(None, "no noise floor"), "> 1", None)
    assert (err.status, err.message) == ("ERROR", "m.x could not be computed: no noise floor")
    missing = evaluate("c", "m.y", "ft", _cmp(1.0), "> 1", None)
    assert missing.status == "ERROR" and "was not computed" in missing.message


def test_overall_verdict_is_the_worst() -> None:
    assert overall_verdict([]) == "PASS"
    assert overall_verdict(["PASS", "WARN"]) == "WARN"
    assert overall_verdict(["WARN", "FAIL", "PASS"]) == "FAIL"
    assert overall_verdict(["FAIL", "ERROR"]) == "ERROR"
