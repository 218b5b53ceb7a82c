"""The probabilities and behaviour families: collector factory and pair analyses.

The collector (:mod:`reportgen.families.probabilities.collect`) did the model work during each
capture; here the candidate's statistics and both models' risk-continuation log-probabilities
become metrics
and tables, from the captures alone. Encoders (no LM head) have no probabilities family at
all: validation refuses the risk probes and checks that would need one, and the limitations
say so. A model that cannot be scored otherwise (another tokenizer, an LM head reportgen does
not reproduce) makes the family "not available" with the reason, never a crash.
"""

from __future__ import annotations

from typing import Any

from reportgen.core.family import (
    CollectorContext,
    LimitationContext,
    PairContext,
    PairResult,
)
from reportgen.families.probabilities.collect import CAUSAL_SCHEME, VERSION, ProbabilityCollector
from reportgen.families.probabilities.metrics import (
    _HEADLINE,
    probability_metrics,
)
from reportgen.families.probabilities.shared import (
    NAME,
    not_available,
    scored_groups,
    unavailable_reason,
)
from reportgen.families.probabilities.shift import shift_from_extra


def collector(ctx: CollectorContext) -> ProbabilityCollector | None:
    groups = scored_groups(ctx.probe)
    if not groups or ctx.model.kind not in ("causal-lm", "masked-lm"):
        return None
    base = None
    if ctx.base is not None:
        base = ctx.base.extras.get(NAME)
        if base is None:
            return None
    a = ctx.loaded.spec.analysis
    b = a.behavior
    settings = {
        "version": VERSION, "kind": ctx.model.kind, "max_length": a.max_length,
        "batch_size": a.batch_size, "seed": a.seed, "masked_positions": b.masked_positions,
        "top_positions": b.top_positions, "greedy_prompts": b.greedy_prompts,
        "max_new_tokens": b.max_new_tokens,
        # the candidate's result depends on the base's stored hidden states and head, and on
        # how the head is applied (the base config's logit transform, its dtype): they key
        # this cache, so a base whose config alone changed never reuses a stale comparison
        "base_store": None if base is None else (
            [base.meta[k] for k in ("sha256", "head_sha256", "transform", "head_dtype",
                                    "vocab_size")] if "sha256" in base.meta
            else base.meta.get("unavailable")),
    }
    risk = [(r.name, r.prompts) for r in ctx.probe.risk]
    return ProbabilityCollector(ctx.model.kind, groups, settings, risk, base)


def analyse_probabilities(ctx: PairContext) -> PairResult | None:
    if not scored_groups(ctx.probe) or ctx.model.kind == "encoder":
        return None  # an encoder has no token probabilities: the limitations say so, and
        # validation refuses risk probes and checks that would need them
    reason = unavailable_reason(ctx)
    names = [n for n, _ in _HEADLINE] + ["probabilities.entropy_compression"]
    if reason:
        return not_available(names, reason, ctx.model.name, "probabilities")
    c = ctx.candidate.extras[NAME]
    shift = shift_from_extra(c)
    a = ctx.spec.analysis
    m, t = probability_metrics(shift, n_boot=a.bootstrap, seed=a.seed, top_tokens=a.top_tokens)
    from reportgen.core.tokentext import token_label

    vocab = ctx.candidate.vocab
    for key in ("tokens_gained", "tokens_lost"):
        for r in t.get(key, []):
            tid = r["token_id"]
            r["token"] = token_label(vocab[tid]) if tid < len(vocab) and vocab[tid] else \
                f"<id {tid}>"
    t["top_positions"] = c.meta.get("top_positions", [])
    kind = ctx.model.kind
    scheme = CAUSAL_SCHEME if kind == "causal-lm" else _masked_scheme_for(ctx.spec.analysis)
    return PairResult(metrics=m, tables={f"probabilities_{k}": v for k, v in t.items()},
                      analysis={"scheme": scheme, "logs": "natural (nats)",
                                "compared": "domain and risk probe texts"})






def limitations(ctx: LimitationContext) -> list[str]:
    """Limitations lines of the probabilities and behaviour families for this audit."""
    models, probe, analysis = ctx.models, ctx.probe, ctx.analysis
    if not scored_groups(probe):
        return []
    kinds = {m.kind for m in models}
    out = []
    if "masked-lm" in kinds:
        out.append("Masked LMs have no next-token distribution; their predictions are "
                   "compared at masked positions (" + _masked_scheme_for(analysis) + ").")
        if probe.risk:
            out.append("Masked LMs' risk margins use pseudo-log-likelihoods, which are not "
                       "normalised probabilities of a continuation.")
    if "encoder" in kinds:
        out.append("Models loaded without a language-model head are not scored for "
                   "probabilities or behaviour.")
    return out


def _masked_scheme_for(analysis: Any) -> str:
    from reportgen.families.probabilities.maskedlm import scheme_text

    return scheme_text(analysis.behavior.masked_positions, analysis.seed)

