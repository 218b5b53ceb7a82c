"""Checks that judge a series: ``step`` and the onset conditions need a series to judge."""

from __future__ import annotations

from reportgen.core.errors import Problem
from reportgen.spec.messages import Ctx
from reportgen.spec.series import is_series, steps_of

_SERIES_FIELDS = ("step", "fail_if_onset_before", "warn_if_onset_before")


def series_steps(raw: dict, ctx: Ctx) -> dict[str, list[int]]:
    """Each series candidate's name and its steps, as far as they can be read."""
    models = raw.get("models") if isinstance(raw.get("models"), dict) else {}
    cands = models.get("candidates") if isinstance(models.get("candidates"), list) else []
    out = {}
    for i, c in enumerate(cands):
        if is_series(c) and isinstance(c.get("name"), str):
            steps = steps_of(c, ("models", "candidates", i), ctx.base_dir)[0]
            out[c["name"]] = [s.step for s in steps]
    return out


def check_series_checks(raw: dict, ctx: Ctx, out: list[Problem]) -> None:
    """A check with step or an onset condition names a series, and a step it has."""
    checks = raw.get("checks")
    if not isinstance(checks, list) or not any(
            isinstance(c, dict) and any(c.get(k) is not None for k in _SERIES_FIELDS)
            for c in checks):
        return
    series = series_steps(raw, ctx)
    for i, chk in enumerate(checks):
        if not isinstance(chk, dict):
            continue
        given = [k for k in _SERIES_FIELDS if chk.get(k) is not None]
        if not given:
            continue
        at = ("checks", i)
        cand = chk.get("candidate")
        if not isinstance(cand, str) or cand not in series:
            known = ", ".join(series) or "none in this spec"
            who = "names no candidate" if not isinstance(cand, str) else f"{cand!r} is not one"
            out.append(ctx.problem((*at, given[0]), f"judges a series, and the check {who}; "
                                   f"expected candidate: a series (series: {known})"))
            continue
        step = chk.get("step")
        if step is not None and any(chk.get(k) is not None for k in _SERIES_FIELDS[1:]):
            out.append(ctx.problem((*at, "step"), "an onset condition judges every step; "
                                                  "remove step or the onset condition"))
        elif isinstance(step, int) and not isinstance(step, bool) and series[cand] and \
                step not in series[cand]:
            steps = ", ".join(str(s) for s in series[cand])
            out.append(ctx.problem((*at, "step"), f"series {cand!r} has no step {step}; "
                                                  f"its steps: {steps}"))
