"""Neighbourhoods of one (base, candidate) pair: each concept's k nearest concepts, and each
top-moving (or every) token's k nearest tokens, in both models.

The base's whole-vocabulary k-NN is searched once per audit, whatever the number of
candidates sharing its token alignment."""

from __future__ import annotations

import numpy as np

from reportgen.core.family import PairContext, PairResult
from reportgen.families.embeddings.shared import drift_of
from reportgen.families.neighbors import knn as search
from reportgen.families.neighbors.metrics import concept_neighbour_metrics, token_neighbour_metrics


def analyse(ctx: PairContext) -> PairResult:
    a = ctx.spec.analysis
    k = a.neighborhoods.k
    res = PairResult()
    sl = ctx.probe.slices().get("concepts")
    if sl is not None and sl.stop - sl.start > k:
        m, t = concept_neighbour_metrics(
            ctx.base.last[-1, sl], ctx.candidate.last[-1, sl], ctx.probe.terms,
            ctx.probe.categories, k=k, n_boot=a.bootstrap, seed=a.seed, device=ctx.device)
        res.metrics.update(m)
        res.tables.update(t)
    align, td = drift_of(ctx, ctx.candidate, ctx.model.name)
    if len(align.tokens) <= k:
        return res
    movers = np.argsort(-td, kind="stable")[:a.top_tokens]
    full = a.neighborhoods.tokens == "full-vocabulary"
    e_base = ctx.base.embeddings[align.base_rows]
    known = ctx.memo(("neighbors.base_knn", align.base_rows.tobytes()),
                     lambda: search.knn(e_base, k, device=ctx.device)) if full else None
    m, t = token_neighbour_metrics(
        e_base, ctx.candidate.embeddings[align.cand_rows], align.tokens, movers, k=k,
        full_vocabulary=full, n_boot=a.bootstrap, seed=a.seed, drift=td, base_knn=known,
        device=ctx.device)
    res.metrics.update(m)
    res.tables.update(t)
    return res
