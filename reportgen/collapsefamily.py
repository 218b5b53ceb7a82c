"""Registers the collapse check as a pair analysis: the concepts' last-layer states of base and
candidate, compared for spread (see :mod:`reportgen.metrics.collapse`).

It reads the captures the concept family already has, so it adds no forward pass; a spec
without concept probes (or with fewer than two) gets nothing from it.
"""

from __future__ import annotations

from .families import PairContext, PairResult, register_pair_analysis
from .metrics.collapse import collapse_message, collapse_metrics, collapsed


def collapse_pair(ctx: PairContext) -> PairResult | None:
    sl = ctx.probe.slices().get("concepts")
    if sl is None or sl.stop - sl.start < 2:
        return None
    metrics = collapse_metrics(ctx.base.last[-1, sl], ctx.candidate.last[-1, sl])
    warnings = [collapse_message(ctx.model.name, metrics)] if collapsed(metrics) else []
    return PairResult(metrics=metrics, warnings=warnings)


register_pair_analysis("collapse", collapse_pair)
