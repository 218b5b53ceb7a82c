"""Token-embedding drift of one (base, candidate) pair: every shared token's input embedding."""

from __future__ import annotations

from reportgen.core.family import PairContext, PairResult
from reportgen.core.numfmt import plural
from reportgen.families.embeddings.metrics import embedding_metrics
from reportgen.families.embeddings.shared import drift_of


def analyse(ctx: PairContext) -> PairResult:
    a = ctx.spec.analysis
    align, td = drift_of(ctx, ctx.candidate, ctx.model.name)
    floor = drift_of(ctx, ctx.floor, ctx.floor_model.name)[1] if ctx.floor is not None else None
    metrics, tables = embedding_metrics(td, floor, align, top=a.top_tokens,
                                        n_boot=a.bootstrap, seed=a.seed)
    res = PairResult(metrics, tables)
    if align.new_tokens:
        res.warnings.append(f"{ctx.model.name}: the tokenizer grew by "
                            f"{plural(len(align.new_tokens), 'token')}; they are listed, not "
                            "compared.")
    return res
