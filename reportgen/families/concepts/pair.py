"""Concept drift of one (base, candidate) pair, from the concept prompts' captured states.

The noise floor's own drift (and each candidate's) is computed once per audit
(:meth:`PairContext.memo`); a candidate's ratios divide by the floor's. The collapse check and
the multi-token flags ride on the same rows.
"""

from __future__ import annotations

from typing import Any

from reportgen.core.family import (
    AuditContext,
    AuditResult,
    LimitationContext,
    PairContext,
    PairResult,
)
from reportgen.families.concepts.collapse import collapse_message, collapse_metrics, collapsed
from reportgen.families.concepts.metrics import ConceptDrift, concept_drift, concept_metrics
from reportgen.families.concepts.pieces import limitations as piece_limitations
from reportgen.families.concepts.pieces import mark_rows, tokenization


def drift(ctx: PairContext, cap: Any, name: str) -> ConceptDrift:
    """``name``'s concept drift from the base (memoised per audit)."""
    sl = ctx.probe.slices()["concepts"]

    def make() -> ConceptDrift:
        b = ctx.base
        return concept_drift(b.last[:, sl], cap.last[:, sl], b.mean[:, sl], cap.mean[:, sl],
                             b.layer_ids)

    return ctx.memo(("concepts.drift", name), make)


def analyse(ctx: PairContext) -> PairResult | None:
    sl = ctx.probe.slices().get("concepts")
    if sl is None:  # no concept probes: the family is absent
        return None
    a = ctx.spec.analysis
    floor = drift(ctx, ctx.floor, ctx.floor_model.name) if ctx.floor is not None else None
    metrics, tables = concept_metrics(drift(ctx, ctx.candidate, ctx.model.name), floor,
                                      ctx.probe.terms, ctx.probe.categories,
                                      n_boot=a.bootstrap, seed=a.seed)
    mark_rows(tables["concepts"], ctx.probe.terms, ctx.base, ctx.candidate)
    res = PairResult(metrics, tables)
    if sl.stop - sl.start >= 2:
        spread = collapse_metrics(ctx.base.last[-1, sl], ctx.candidate.last[-1, sl])
        res.metrics.update(spread)
        if collapsed(spread):
            res.warnings.append(collapse_message(ctx.model.name, spread))
    return res


def analyse_audit(ctx: AuditContext) -> AuditResult | None:
    """The certificate's ``analysis.concepts``: how each tokenizer cut the terms."""
    if ctx.probe.slices().get("concepts") is None:
        return None
    info = tokenization(ctx.probe, ctx.models, ctx.captures)
    return AuditResult(info) if info else None


def limitations(ctx: LimitationContext) -> list[str]:
    """The template the concepts are read in, multi-token terms, encoders' separator token."""
    if not ctx.probe.has_concepts:
        return []
    template = ctx.probe.info.details["template"]
    out = [f"Concept drift is measured in one prompt template ({template!r}); other phrasings "
           "may move differently."]
    out += piece_limitations(ctx.certificate_analysis.get("concepts"))
    if any(m.kind == "encoder" for m in ctx.models):
        out.append("For encoders the last non-padding token is the separator token; the "
                   "mean-pooled drift is reported beside it.")
    return out
