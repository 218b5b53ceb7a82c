"""Linear CKA per layer of one (base, candidate) pair over the concept prompts."""

from __future__ import annotations

from reportgen.core.family import PairContext, PairResult
from reportgen.families.cka.metrics import cka_by_layer


def analyse(ctx: PairContext) -> PairResult | None:
    sl = ctx.probe.slices().get("concepts")
    if sl is None:  # the domains' CKA is theirs
        return None
    a = ctx.spec.analysis
    metrics, rows = cka_by_layer(ctx.base.last[:, sl], ctx.candidate.last[:, sl],
                                 ctx.base.layer_ids, probe="concepts", n_boot=a.bootstrap,
                                 seed=a.seed, device=ctx.device)
    return PairResult(metrics, {"cka": rows})
