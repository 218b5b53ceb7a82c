"""Domain drift of one (base, candidate) pair: each domain's texts, mean-pooled, per layer."""

from __future__ import annotations

from reportgen.core.family import PairContext, PairResult
from reportgen.families.domains.metrics import domain_metrics


def analyse(ctx: PairContext) -> PairResult | None:
    a = ctx.spec.analysis
    res = PairResult()
    for name, sl in ctx.probe.slices().items():
        if name.startswith("domains."):
            m, rows = domain_metrics(name.split(".", 1)[1], ctx.base.mean[:, sl],
                                     ctx.candidate.mean[:, sl], ctx.base.layer_ids,
                                     n_boot=a.bootstrap, seed=a.seed,
                                     device=ctx.device)
            res.metrics.update(m)
            res.tables.setdefault("domains", []).extend(rows)
    return res if res.metrics else None
