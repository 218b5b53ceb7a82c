"""The ``sae`` pair analysis: base vs candidate through one fixed base dictionary.

Reads only the two captures' ``sae`` extras (codes, activations, token ids); no model and no
dictionary is loaded here. Tokens are compared one to one, so only texts tokenised the same
way by both models are used.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reportgen.core.family import LimitationContext, PairContext, PairResult
from reportgen.core.names import definition
from reportgen.core.records import MetricValue
from reportgen.families.sae import metrics as m
from reportgen.families.sae.collect import load_codes
from reportgen.families.sae.export import saved_as
from reportgen.families.sae.sources import HOOK_POINT

TOP_MOVED = 20
TOP_RISKY = 10
CONTEXT = 5  # tokens of context on each side of a top-activating token
TOP_EXAMPLES = 3


def _mv(name: str, value: float | None, ci: list[float] | None = None,
        error: str | None = None) -> MetricValue:
    return MetricValue(value, definition(name), "", ci, error)


def _same_tokens(b: Any, c: Any) -> np.ndarray:
    """Mask over the base's tokens of texts the candidate tokenised identically."""
    if (len(b["token_ids"]) == len(c["token_ids"])
            and np.array_equal(b["token_ids"], c["token_ids"])):
        return np.ones(len(b["token_ids"]), dtype=bool)
    keep = np.zeros(len(b["token_ids"]), dtype=bool)
    for r in np.unique(b["text_rows"]):
        ib, ic = b["text_rows"] == r, c["text_rows"] == r
        if np.array_equal(b["token_ids"][ib], c["token_ids"][ic]):
            keep[ib] = True
    return keep


def sae_pair(ctx: PairContext) -> PairResult | None:
    be, ce = ctx.base.extras.get("sae"), ctx.candidate.extras.get("sae")
    if be is None or ce is None:
        return None
    a = ctx.spec.analysis
    res = PairResult(analysis={"hook_point": HOOK_POINT, "layers": {}})
    keep = _same_tokens(be.arrays, ce.arrays)
    if not keep.all():
        res.warnings.append(f"{ctx.model.name}: SAE comparisons leave out texts the two "
                            "tokenizers split differently.")
    ck = _cand_index(be.arrays, ce.arrays, keep)
    sets = _set_masks(ctx.probe, be.arrays["text_rows"][keep])
    for key, info in sorted(be.meta["layers"].items(), key=lambda kv: int(kv[0])):
        layer = int(key)
        _layer(res, layer, info, ce.meta["layers"][key], be, ce, keep, ck, sets, a, ctx)
        res.analysis["layers"][key] = {
            "dictionary_digest": info["digest"], "origin": info["origin"],
            "architecture": info["architecture"], "d_in": info["d_in"], "d_sae": info["d_sae"],
            "train": info["train"], "stored_activations": info["stored_dtype"],
            "ce_sample": info.get("ce", {}).get("sample"), "fvu_on": info.get("fvu_on"),
            "ce_texts": info.get("ce", {}).get("texts"),
            "saved_as": saved_as(layer) if info["origin"] == "trained" else None}
    res.analysis["low_confidence_fvu_ratio"] = m.LOW_CONFIDENCE_FVU_RATIO
    if not any(k.startswith("risk.") for k in sets):
        res.analysis["risky_note"] = ("The spec has no risk probes, so no risky features "
                                      "could be identified.")
    return res


def _cand_index(b: Any, c: Any, keep: np.ndarray) -> np.ndarray:
    """Candidate token rows matching the base's kept rows, in the same order (both are sorted
    by text and position, and kept texts have the same tokens in both)."""
    return np.flatnonzero(np.isin(c["text_rows"], np.unique(b["text_rows"][keep])))


def _set_masks(probe: Any, rows: np.ndarray) -> dict[str, np.ndarray]:
    """Token masks per probe set: the whole concept set, each concept category (when there
    are several), each domain and each risk set."""
    out = {}
    for name, s in probe.slices().items():
        if s.stop > s.start:
            out[name] = (rows >= s.start) & (rows < s.stop)
        if name == "concepts" and len(set(probe.categories)) > 1:
            cats = np.asarray(probe.categories)
            for cat in dict.fromkeys(probe.categories):
                out[f"concepts.{cat}"] = np.isin(rows, np.flatnonzero(cats == cat))
    return out


def _layer(res: PairResult, layer: int, bi: dict, ci: dict, be: Any, ce: Any,
           keep: np.ndarray, ck: np.ndarray, sets: dict[str, np.ndarray], a: Any,
           ctx: PairContext) -> None:
    p = f"sae.layer.{layer}"
    fa = load_codes(be, layer, bi["d_sae"])[np.flatnonzero(keep)]
    fb = load_codes(ce, layer, bi["d_sae"])[ck]
    groups = be.arrays["text_rows"][keep]
    xa = be.arrays[f"acts.{layer}"][keep].astype(np.float64)
    xb = ce.arrays[f"acts.{layer}"][ck].astype(np.float64)
    jac, l1 = m.jaccard_rows(fa, fb), m.l1_divergence_rows(fa, fb)
    cos = m.cosine_rows(xa, xb)
    ci_ = {k: m.grouped_bootstrap_ci(v, groups, a.bootstrap, a.seed)
           for k, v in (("jaccard", jac), ("l1", l1), ("cos", cos))}
    shift = m.firing_frequency(fb) - m.firing_frequency(fa)
    ratio = ci["fvu"] / bi["fvu"] if bi["fvu"] and bi["fvu"] > 0 else None
    mt = res.metrics
    mt[f"{p}.fvu.base"] = _mv(f"{p}.fvu.base", bi["fvu"])
    mt[f"{p}.fvu.candidate"] = _mv(f"{p}.fvu.candidate", ci["fvu"])
    mt[f"{p}.fvu.ratio"] = _mv(f"{p}.fvu.ratio", ratio, error=None if ratio is not None else
                               "the dictionary fits the base perfectly (FVU 0)")
    mt[f"{p}.l0.base"] = _mv(f"{p}.l0.base", bi["l0"])
    mt[f"{p}.l0.candidate"] = _mv(f"{p}.l0.candidate", ci["l0"])
    for who, info in (("base", bi), ("candidate", ci)):
        rec, err = _ce(info.get("ce", {}))
        mt[f"{p}.ce_recovered.{who}"] = _mv(f"{p}.ce_recovered.{who}", rec, error=err)
    mt[f"{p}.jaccard.mean"] = _mv(f"{p}.jaccard.mean", float(jac.mean()), ci_["jaccard"])
    mt[f"{p}.l1.mean"] = _mv(f"{p}.l1.mean", float(l1.mean()), ci_["l1"])
    mt[f"{p}.dense_cosine.mean"] = _mv(f"{p}.dense_cosine.mean", float(cos.mean()), ci_["cos"])
    mt[f"{p}.firing_shift.mean"] = _mv(f"{p}.firing_shift.mean", float(np.abs(shift).mean()))
    low = ratio is not None and ratio > m.LOW_CONFIDENCE_FVU_RATIO
    if low:
        res.warnings.append(
            f"{ctx.model.name}: SAE findings at layer {layer} are low-confidence: the base "
            f"dictionary's FVU on the candidate is {ratio:.2f}x its FVU on the base (above "
            f"{m.LOW_CONFIDENCE_FVU_RATIO}; FVU on {bi['fvu_on']}), so moved features may be "
            "reconstruction error rather than change.")
    _fit_rows(res, layer, bi, ci, ratio, low)
    res.tables.setdefault("sae_dense_sparse", []).append({
        "layer": layer, "dense_cosine": float(cos.mean()), "jaccard": float(jac.mean()),
        "l1": float(l1.mean()), "tokens": int(len(jac))})
    labels = _Labeller(bi.get("labels", {}), fa, be, keep)
    distinct, own = _contexts(be.arrays["token_ids"][keep], groups,
                              ctx.model.kind == "causal-lm")
    _moved(res, layer, fa, fb, {k: v & own for k, v in sets.items()}, labels, shift, distinct)
    _risky(res, layer, fa, fb, sets, labels, p)


def _ce(info: dict) -> tuple[float | None, str | None]:
    if "error" in info or not info:
        return None, info.get("error", "not available")
    rec = m.ce_recovered(info["ce_clean"], info["ce_sae"], info["ce_zero"])
    return rec, m.ce_gap_problem(info["ce_clean"], info["ce_zero"])


def _fit_rows(res: PairResult, layer: int, bi: dict, ci: dict, ratio: float | None,
              low: bool) -> None:
    row: dict[str, Any] = {"layer": layer, "d_sae": bi["d_sae"], "origin": bi["origin"],
                           "fvu_base": bi["fvu"], "fvu_candidate": ci["fvu"],
                           "fvu_ratio": ratio, "l0_base": bi["l0"], "l0_candidate": ci["l0"],
                           "low_confidence": low}
    for who, info in (("base", bi), ("candidate", ci)):
        ce = info.get("ce", {})
        for k in ("ce_clean", "ce_sae", "ce_zero"):
            row[f"{k}_{who}"] = ce.get(k)
        row[f"ce_recovered_{who}"] = _ce(ce)[0]
        row["ce_texts"] = ce.get("texts")
    res.tables.setdefault("sae_fit", []).append(row)


class _Labeller:
    """A feature's label: the user's label, else its top-activating tokens in context."""

    def __init__(self, given: dict[str, str], fa: Any, be: Any, keep: np.ndarray):
        self.given, self.fa = given, fa.tocsc()
        self.text = be.meta["token_text"]
        self.ids = be.arrays["token_ids"][keep]
        self.rows = be.arrays["text_rows"][keep]

    def __call__(self, j: int) -> dict[str, Any]:
        col = self.fa[:, j]
        idx, val = col.indices, col.data
        top = idx[np.lexsort((idx, -val))][:TOP_EXAMPLES]
        contexts = [self._context(int(t)) for t in top]
        tokens = [self.text[str(int(self.ids[t]))] for t in top]
        if str(j) in self.given:
            return {"label": self.given[str(j)], "label_source": "labels file",
                    "contexts": contexts}
        label = " | ".join(repr(t.strip() or t) for t in tokens) or "(never active on base)"
        return {"label": label, "label_source": "top-activating tokens", "contexts": contexts}

    def _context(self, t: int) -> str:
        same = np.flatnonzero(self.rows == self.rows[t])
        i = int(np.searchsorted(same, t))
        lo, hi = max(0, i - CONTEXT), min(len(same), i + CONTEXT + 1)
        words = [self.text[str(int(self.ids[same[k]]))] for k in range(lo, hi)]
        piece = words[i - lo]
        core = piece.lstrip()  # the space before a word stays outside the marks
        words[i - lo] = f"{piece[:len(piece) - len(core)]}[[{core or piece}]]"
        return "".join(words).strip()


def _contexts(ids: np.ndarray, rows: np.ndarray, causal: bool) -> tuple[np.ndarray, np.ndarray]:
    """(distinct, own) token masks. In a causal LM a token's activation depends only on its
    prefix, so tokens with the same whole prefix (a shared template's "The concept of") are
    one context: *distinct* keeps its first occurrence, and *own* keeps only tokens whose
    prefix belongs to a single text. Without this a template repeated over every concept
    would weigh in once per concept, and its opening words (which no concept caused) would
    count towards whichever concept category came first. Encoders see both sides, so every
    token is its own context there."""
    if not causal:
        every = np.ones(len(ids), dtype=bool)
        return every, every
    trie: dict[tuple[int, int], int] = {}
    node_of = np.zeros(len(ids), dtype=np.int64)
    node, prev = 0, None
    for i, (tok, row) in enumerate(zip(ids.tolist(), rows.tolist(), strict=True)):
        if row != prev:
            node, prev = 0, row
        node = trie.setdefault((node, tok), len(trie) + 1)
        node_of[i] = node
    _, first, texts = np.unique(node_of, return_index=True, return_counts=True)
    distinct = np.zeros(len(ids), dtype=bool)
    distinct[first] = True
    counts = np.zeros(len(trie) + 1, dtype=np.int64)
    counts[np.unique(node_of)] = texts
    return distinct, counts[node_of] == 1


def _moved(res: PairResult, layer: int, fa: Any, fb: Any, sets: dict[str, np.ndarray],
           labels: _Labeller, shift: np.ndarray, distinct: np.ndarray) -> None:
    """Top moved features, ranked on the probe sets' own contexts (see
    :func:`reportgen.families.sae.metrics.moved_features`), each with its change on every set."""
    top, score, where = m.moved_features(fa, fb, sets, TOP_MOVED)
    top = [j for j in top if score[j] > 0]  # a feature that did not change did not move
    overall = m.mean_abs_change(fa[np.flatnonzero(distinct)], fb[np.flatnonzero(distinct)])
    names, change = m.set_changes(fa, fb, sets)
    p = f"sae.layer.{layer}"
    res.metrics[f"{p}.moved.top_change"] = _mv(f"{p}.moved.top_change",
                                               float(score[top[0]]) if len(top) else 0.0)
    for rank, j in enumerate(top, 1):
        j = int(j)
        by_set = {k: float(change[i, j]) for i, k in enumerate(names)}
        res.tables.setdefault("sae_moved", []).append({
            "layer": layer, "rank": rank, "feature": j, "top_change": float(score[j]),
            "top_set": where[j], "mean_abs_change": float(overall[j]),
            "firing_shift": float(shift[j]), "change_by_probe": by_set, **labels(j)})
        for k, v in by_set.items():
            res.tables.setdefault("sae_heatmap", []).append(
                {"layer": layer, "feature": j, "probe": k, "change": v})


def _risky(res: PairResult, layer: int, fa: Any, fb: Any, sets: dict[str, np.ndarray],
           labels: _Labeller, p: str) -> None:
    risk_sets = [v for k, v in sets.items() if k.startswith("risk.")]
    if not risk_sets:
        return
    risk = np.logical_or.reduce(risk_sets)
    rows = m.risky_features(fa, fb, risk, TOP_RISKY)
    for rank, r in enumerate(rows, 1):
        res.tables.setdefault("sae_risky", []).append(
            {"layer": layer, "rank": rank, **r, **labels(r["feature"])})
    top = rows[0]["rise"] if rows else 0.0
    res.metrics[f"{p}.risky.top_rise"] = _mv(f"{p}.risky.top_rise", top)


def limitations(ctx: LimitationContext) -> list[str]:
    if not ctx.analysis.sae:
        return []
    out = ["Sparse-feature labels are each feature's top-activating probe tokens in context "
           "(or the labels file): a description of where it fires, not a verified "
           "interpretation; the findings hold for this one dictionary fixed on the base."]
    if any(s.train is not None for s in ctx.analysis.sae):
        from reportgen.families.sae.collect import HOLD_OUT

        out.append(f"A sparse dictionary trained here learns from the probe texts (all but "
                   f"every {HOLD_OUT}th, which measure its fit) and the spec's corpus only; a "
                   "small dictionary trained on few tokens merges features that a larger one "
                   "would separate.")
    return out
