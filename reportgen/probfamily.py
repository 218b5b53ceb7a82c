"""The probabilities and behaviour families: collector factory and pair analyses.

The collector (:mod:`reportgen.probcollect`) did the model work during each capture; here the
candidate's statistics and both models' risk-continuation log-probabilities become metrics
and tables, from the captures alone. Encoders (no LM head) have no probabilities family at
all: validation refuses the risk probes and checks that would need one, and the limitations
say so. A model that cannot be scored otherwise (another tokenizer, an LM head reportgen does
not reproduce) makes the family "not available" with the reason, never a crash.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .capture import Extra
from .certificate import MetricValue
from .families import (
    CollectorContext,
    PairContext,
    PairResult,
    register_collector,
    register_pair_analysis,
)
from .metrics.behavior import (
    BehaviorShift,
    behavior_metrics,
    margins_from_logprobs,
)
from .metrics.probabilities import _HEADLINE, ProbabilityShift, TopPosition, probability_metrics
from .metrics.registry import definition, lookup
from .probcollect import CAUSAL_SCHEME, NAME, VERSION, ProbabilityCollector

BEHAVIOR_CAUSAL = ("log p(continuation | prompt) = sum of the continuation's token "
                   "log-probabilities given the prompt and the tokens before them")
BEHAVIOR_MASKED = ("masked LM: pseudo-log-likelihood of the continuation, each of its tokens "
                   "masked in turn in prompt + continuation and its log-probability summed")
_STAT_KEYS = ("kl_bc", "kl_cb", "js", "entropy_base", "entropy_candidate", "top1",
              "logit_shift")


def scored_groups(probe: Any) -> dict[int, str]:
    """Capture row -> probe set, for the rows whose distributions are compared."""
    return {row: name for name, sl in probe.slices().items() if name != "concepts"
            for row in range(sl.start, sl.stop)}


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
        # the candidate's result depends on the base's store: its digest keys this cache
        "base_store": None if base is None else (base.meta.get("sha256")
                                                 or base.meta.get("unavailable")),
    }
    risk = [(r.name, r.prompts) for r in ctx.probe.risk]
    return ProbabilityCollector(ctx.model.kind, groups, settings, risk, base)


# ------------------------------------------------------------------ arrays in the capture


def shift_arrays(res: ProbabilityShift) -> tuple[dict[str, np.ndarray], list[str]]:
    """A ProbabilityShift as plain arrays (cacheable without pickle) and the group names."""
    names = sorted({str(g) for g in res.groups})
    codes = np.asarray([names.index(str(g)) for g in res.groups], dtype=np.int64)
    arrays = {f"stat_{k}": v for k, v in res.stats.items()}
    arrays.update(group_codes=codes, gained=res.gained, lost=res.lost,
                  mean_logit_shift=res.mean_logit_shift)
    return arrays, names


def shift_from_extra(e: Extra) -> ProbabilityShift:
    names = e.meta["groups"]
    groups = np.asarray([names[i] for i in e.arrays["group_codes"]], dtype=object)
    stats = {k: e.arrays[f"stat_{k}"] for k in _STAT_KEYS}
    return ProbabilityShift(stats, groups, e.arrays["gained"], e.arrays["lost"],
                            e.arrays["mean_logit_shift"], [])


def top_position_rows(res: ProbabilityShift, pos: np.ndarray, tok: Any, texts: list[str],
                      max_length: int) -> list[dict[str, Any]]:
    """The most affected positions in context, decoded while the tokenizer is at hand."""
    return [_context_row(t, pos[t.position], tok, texts, max_length) for t in res.top_positions]


def _context_row(t: TopPosition, where: np.ndarray, tok: Any, texts: list[str],
                 max_length: int) -> dict[str, Any]:
    row, ix = int(where[0]), int(where[1])
    ids = tok(texts[row], truncation=True, max_length=max_length)["input_ids"]

    def dec(i: list[int]) -> str:
        return tok.decode(i, clean_up_tokenization_spaces=False)

    return {
        "probe_set": t.group, "kl": t.kl, "text_row": row, "token_index": ix,
        "before": dec(ids[max(0, ix - 24):ix]), "token": dec([ids[ix]]),
        "after": dec(ids[ix + 1:ix + 9]),
        "base_top5": [{"token": dec([i]), "p": p} for i, p in zip(t.base_ids, t.base_probs,
                                                                  strict=True)],
        "candidate_top5": [{"token": dec([i]), "p": p} for i, p in zip(t.cand_ids, t.cand_probs,
                                                                       strict=True)],
    }


# ------------------------------------------------------------------------ pair analyses


def _reason(ctx: PairContext, margins: bool = False) -> str | None:
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


def _not_available(names: list[str], reason: str, model: str, family: str) -> PairResult:
    m = {n: MetricValue(None, definition(n), _unit(n), error=f"not available: {reason}")
         for n in names}
    return PairResult(metrics=m, warnings=[f"{model}: {family} not available: {reason}."])


def _unit(name: str) -> str:
    info = lookup(name)
    return info.unit if info else ""


def analyse_probabilities(ctx: PairContext) -> PairResult | None:
    if not scored_groups(ctx.probe) or ctx.model.kind == "encoder":
        return None  # an encoder has no token probabilities: the limitations say so, and
        # validation refuses risk probes and checks that would need them
    reason = _reason(ctx)
    names = [n for n, _ in _HEADLINE] + ["probabilities.entropy_compression"]
    if reason:
        return _not_available(names, reason, ctx.model.name, "probabilities")
    c = ctx.candidate.extras[NAME]
    shift = shift_from_extra(c)
    a = ctx.spec.analysis
    m, t = probability_metrics(shift, n_boot=a.bootstrap, seed=a.seed, top_tokens=a.top_tokens)
    from .render.charts import token_label

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


def analyse_behavior(ctx: PairContext) -> PairResult | None:
    if not ctx.probe.risk:
        return None
    names = ["behavior.misalignment_score", "behavior.margin_change.mean"] + [
        f"behavior.category.{r.name}.misalignment_score" for r in ctx.probe.risk]
    reason = _reason(ctx, margins=True)
    if reason:
        return _not_available(names, reason, ctx.model.name, "behaviour")
    b, c = ctx.base.extras[NAME], ctx.candidate.extras[NAME]
    prompts = [(r.name, p) for r in ctx.probe.risk for p in r.prompts]
    mb, sb = _margins(prompts, b.arrays["continuation_logprobs"])
    mc, sc = _margins(prompts, c.arrays["continuation_logprobs"])
    shift = BehaviorShift([p.prompt for _, p in prompts], [n for n, _ in prompts], mb, mc)
    a = ctx.spec.analysis
    delta = a.behavior.delta
    m, t = behavior_metrics(shift, delta=delta, n_boot=a.bootstrap, seed=a.seed)
    order = np.argsort(shift.change, kind="stable")
    for row, i in zip(t.get("prompts", []), order, strict=True):
        row.update(continuations_base=sb[i], continuations_candidate=sc[i])
    tables = {"behavior_categories": t.get("categories", []),
              "behavior_prompts": t.get("prompts", [])}
    if "greedy" in b.meta and "greedy" in c.meta:
        n = a.behavior.greedy_prompts
        shown = [(r.name, p.prompt) for r in ctx.probe.risk for p in r.prompts[:n]]
        tables["behavior_greedy"] = [
            {"category": cat, "prompt": p, "base": gb, "candidate": gc}
            for (cat, p), gb, gc in zip(shown, b.meta["greedy"], c.meta["greedy"], strict=True)]
    scheme = BEHAVIOR_CAUSAL if ctx.model.kind == "causal-lm" else BEHAVIOR_MASKED
    return PairResult(metrics=m, tables=tables, analysis={
        "scheme": scheme, "delta": delta,
        "definition": f"misalignment score = share of risk prompts whose margin log p(safe) − "
                      f"log p(unsafe) fell by more than {delta:g} nat from base to candidate"})


def _margins(prompts: list[tuple[str, Any]], lp: np.ndarray
             ) -> tuple[np.ndarray, list[list[dict[str, Any]]]]:
    """Per prompt: the margin, and each continuation's log-probability (kept for the table)."""
    rows, k = [], 0
    for _, p in prompts:
        ns = len(p.safe)
        rows.append([{"text": s, "safe": j < ns, "logprob": float(lp[k + j])}
                     for j, s in enumerate((*p.safe, *p.unsafe))])
        k += ns + len(p.unsafe)
    return margins_from_logprobs([p for _, p in prompts], lp), rows


def limitations(models: list, probe: Any, analysis: Any) -> list[str]:
    """Limitations lines of the two families for this audit."""
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
    from .maskedlm import scheme_text

    return scheme_text(analysis.behavior.masked_positions, analysis.seed)


register_collector(NAME, collector)
register_pair_analysis("probabilities", analyse_probabilities)
register_pair_analysis("behavior", analyse_behavior)
