"""Checks over a series on hand-made comparisons: every status and message, exactly."""

from __future__ import annotations

from reportgen.analysis.checks import evaluate_series
from reportgen.core.records import Comparison, MetricValue
from reportgen.spec.series import Series
from reportgen.spec.types import Check

M = "concepts.cosine_distance.mean"
RUN = Series("run", ((10, "run@10"), (20, "run@20"), (30, "run@30")))


def _comps(*values: float | None) -> dict[str, Comparison]:
    out = {}
    for (_, name), v in zip(RUN.steps, values, strict=True):
        mv = MetricValue(v, "d", error=None if v is not None else "the probes were empty")
        out[name] = Comparison("base", name, "candidate", {M: mv})
    return out


def _check(**kw: object) -> Check:
    return Check(metric=M, candidate="run", **kw)


def test_every_step_the_worst_counts() -> None:
    r = evaluate_series(_check(warn_if="> 0.1", fail_if="> 0.2"), RUN, _comps(0.05, 0.3, 0.15))
    assert (r.status, r.value, r.candidate) == ("FAIL", 0.3, "run")
    assert r.message == (f"step 20: {M} = 0.3, fails because it is > 0.2 "
                         "(worst of 3 steps: 10 PASS, 20 FAIL, 30 WARN)")


def test_a_named_step_and_the_final_one() -> None:
    comps = _comps(0.05, 0.3, 0.15)
    r = evaluate_series(_check(fail_if="> 0.2", step=20), RUN, comps)
    assert (r.status, r.message) == ("FAIL", f"step 20: {M} = 0.3, fails because it is > 0.2")
    r = evaluate_series(_check(fail_if="> 0.2", step="final"), RUN, comps)
    assert (r.status, r.message) == ("PASS", f"step 30: {M} = 0.15, passes (not > 0.2)")


def test_onset_conditions() -> None:
    comps = _comps(0.05, 0.3, 0.15)
    r = evaluate_series(_check(warn_if="> 0.1", warn_if_onset_before=30,
                               fail_if_onset_before=15), RUN, comps)
    assert (r.status, r.value) == ("WARN", 0.3)
    assert r.message == f"{M} is first > 0.1 at step 20 (0.3), warns because that is before step 30"
    assert r.condition == "warn_if > 0.1; fail_if_onset_before 15; warn_if_onset_before 30"
    r = evaluate_series(_check(fail_if="> 0.5", fail_if_onset_before=30), RUN, comps)
    assert (r.status, r.message) == ("PASS", f"{M} is never > 0.5 in 3 steps (10–30), passes")


def test_a_step_without_a_value_is_error() -> None:
    comps = _comps(0.05, None, 0.15)
    r = evaluate_series(_check(fail_if="> 0.2"), RUN, comps)
    assert (r.status, r.message) == (
        "ERROR", f"step 20: {M} could not be computed: the probes were empty "
                 "(worst of 3 steps: 10 PASS, 20 ERROR, 30 PASS)")
    r = evaluate_series(_check(warn_if="> 0.1", fail_if_onset_before=30), RUN, comps)
    assert (r.status, r.message) == (
        "ERROR", f"step 20: {M} could not be computed: the probes were empty")
