"""What the probabilities and behaviour families share: which capture rows are scored, and
why a pair cannot be compared (reported as not available, never a crash)."""

from __future__ import annotations

from typing import Any

from reportgen.core.family import (
    PairContext,
    PairResult,
)
from reportgen.core.names import definition, lookup
from reportgen.core.records import MetricValue

#: The collector's name (its capture extra).
NAME = "probabilities"


def scored_groups(probe: Any) -> dict[int, str]:
    """Capture row -> probe set, for the rows whose distributions are compared."""
    return {row: name for name, sl in probe.slices().items() if name != "concepts"
            for row in range(sl.start, sl.stop)}

def unavailable_reason(ctx: PairContext, margins: bool = False) -> str | None:
    """Why the family cannot compare this pair, or None. Risk ``margins`` need only each
    model's own scores of the same strings, so what stops the distributions may not stop
    them (see :mod:`reportgen.probcollect`)."""
    if ctx.model.kind not in ("causal-lm", "masked-lm"):  # base and candidates share a kind
        return (f"the models are {ctx.model.kind}s without a language-model head, so there are "
                "no token probabilities to compare")
    for who, cap in (("base", ctx.base), (ctx.model.name, ctx.candidate)):
        e = cap.extras.get(NAME)
        if e is None:
            return f"{who} was not scored (no language-model head)"
        if margins and "continuation_logprobs" in e.arrays:
            continue
        if e.meta.get("unavailable"):  # the warning names the candidate already
            return e.meta["unavailable"] if cap is ctx.candidate else \
                f"{who}: {e.meta['unavailable']}"
    return None

def not_available(names: list[str], reason: str, model: str, family: str) -> PairResult:
    m = {n: MetricValue(None, definition(n), _unit(n), error=f"not available: {reason}")
         for n in names}
    return PairResult(metrics=m, warnings=[f"{model}: {family} not available: {reason}."])

def _unit(name: str) -> str:
    info = lookup(name)
    return info.unit if info else ""
