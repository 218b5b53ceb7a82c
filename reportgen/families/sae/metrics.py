"""Sparse-feature metrics: pure numpy functions over one fixed dictionary's encodings.

Both models' activations at one layer are encoded by the same base dictionary; rows are the
same tokens of the same probe texts in both models, so every comparison is per token.
"""

from __future__ import annotations

import numpy as np

from reportgen.core.names import register

#: The candidate's FVU over the base's FVU above which the SAE findings are low-confidence:
#: the dictionary then explains the candidate's activations markedly worse than the base's,
#: so features "moving" may be reconstruction error rather than change.
LOW_CONFIDENCE_FVU_RATIO = 1.5
#: A probe set ranks moved features only with at least this many tokens: a set mean over a
#: handful of tokens is dominated by TopK swaps (a feature entering or leaving the top k).
MIN_SET_ROWS = 16

register("sae.layer.{layer}.fvu.base",
         "Fraction of variance unexplained by the dictionary on the base's activations at "
         "layer {layer}: sum ||x - x_hat||^2 / sum ||x - mean(x)||^2 over probe tokens.",
         zero_when_unchanged=False)
register("sae.layer.{layer}.fvu.candidate",
         "Fraction of variance unexplained by the base dictionary on the candidate's "
         "activations at layer {layer} (same tokens).", zero_when_unchanged=False)
register("sae.layer.{layer}.fvu.ratio",
         "Candidate FVU over base FVU at layer {layer}: how much worse the fixed dictionary "
         f"fits after fine-tuning (above {LOW_CONFIDENCE_FVU_RATIO} the SAE findings are "
         "low-confidence).", zero_when_unchanged=False)
register("sae.layer.{layer}.l0.base",
         "Mean number of active features per token at layer {layer}, base.",
         higher_is_worse=False)
register("sae.layer.{layer}.l0.candidate",
         "Mean number of active features per token at layer {layer}, candidate.",
         higher_is_worse=False)
register("sae.layer.{layer}.ce_recovered.base",
         "Cross-entropy loss recovered when the reconstruction replaces the hidden state after "
         "block {layer}, base: (CE_zero - CE_sae) / (CE_zero - CE_clean).",
         higher_is_worse=False)
register("sae.layer.{layer}.ce_recovered.candidate",
         "Cross-entropy loss recovered with the base dictionary spliced into the candidate "
         "after block {layer}: (CE_zero - CE_sae) / (CE_zero - CE_clean).",
         higher_is_worse=False)
register("sae.layer.{layer}.jaccard.mean",
         "Mean over tokens of the Jaccard overlap of active feature sets at layer {layer}, "
         "base vs candidate (1 = same features fire; two empty sets count as 1).",
         higher_is_worse=False)
register("sae.layer.{layer}.l1.mean",
         "Mean over tokens of the normalised L1 divergence of feature activations at layer "
         "{layer}: sum|f_base - f_cand| / (sum|f_base| + sum|f_cand|), in [0, 1].")
register("sae.layer.{layer}.dense_cosine.mean",
         "Mean over tokens of the cosine similarity of the raw activations at layer {layer}, "
         "base vs candidate (the dense view beside the sparse overlap).",
         higher_is_worse=False)
register("sae.layer.{layer}.firing_shift.mean",
         "Mean over the features at layer {layer} of |firing frequency in candidate - firing "
         "frequency in base|, where firing frequency is the share of probe tokens on which "
         "the feature is active.")
register("sae.layer.{layer}.moved.top_change",
         "Largest |mean activation change| (candidate - base) of any feature at layer {layer} "
         f"on any probe set of at least {MIN_SET_ROWS} tokens, or of all sets' tokens together "
         "when none is that large (probe sets: concept categories, domains, risk sets; for "
         "causal LMs only tokens whose prefix is one text's own).")
register("sae.layer.{layer}.risky.top_rise",
         "Largest rise in mean activation on the risk probes among the features at layer "
         "{layer} selective for them in the base (0 when none rose).")


def _csr(x):
    """Feature activations as a float64 CSR matrix (dense inputs are converted)."""
    from scipy import sparse

    return sparse.csr_matrix(x, dtype=np.float64)


def _ravel(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).ravel()


def jaccard_rows(fa, fb) -> np.ndarray:
    """Per-row Jaccard of the active sets (non-zero entries); empty vs empty is 1."""
    a, b = _csr(fa) != 0, _csr(fb) != 0
    inter = _ravel(a.multiply(b).sum(axis=1))
    union = _ravel(a.sum(axis=1)) + _ravel(b.sum(axis=1)) - inter
    return np.where(union == 0, 1.0, inter / np.maximum(union, 1))


def l1_divergence_rows(fa, fb) -> np.ndarray:
    """Per-row sum|fa - fb| / (sum|fa| + sum|fb|); 0 when both rows are zero."""
    a, b = _csr(fa), _csr(fb)
    num = _ravel(abs(a - b).sum(axis=1))
    den = _ravel(abs(a).sum(axis=1)) + _ravel(abs(b).sum(axis=1))
    return np.where(den == 0, 0.0, num / np.where(den == 0, 1.0, den))


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-row cosine similarity in float64 (zero vs zero counts as 1, zero vs not as 0)."""
    from reportgen.core.stats import cosine_distance_rows

    return 1.0 - cosine_distance_rows(a, b)


def firing_frequency(f) -> np.ndarray:
    """Share of rows on which each feature is active."""
    m = _csr(f)
    return _ravel((m != 0).sum(axis=0)) / max(m.shape[0], 1)


def mean_activation(f, rows: np.ndarray | None = None) -> np.ndarray:
    """Each feature's mean activation over ``rows`` (a boolean mask; default all rows)."""
    m = _csr(f)
    if rows is not None:
        m = m[np.flatnonzero(rows)]
    return _ravel(m.mean(axis=0)) if m.shape[0] else np.zeros(m.shape[1])


def grouped_bootstrap_ci(values: np.ndarray, groups: np.ndarray, n_resamples: int, seed: int,
                         level: float = 0.95) -> list[float] | None:
    """Percentile interval of the per-token mean, resampling whole texts (``groups``), since
    the tokens of one text are not independent."""
    ids, inv = np.unique(groups, return_inverse=True)
    if n_resamples <= 0 or len(ids) < 2:
        return None
    sums = np.bincount(inv, weights=np.asarray(values, dtype=np.float64), minlength=len(ids))
    counts = np.bincount(inv, minlength=len(ids)).astype(np.float64)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(ids), size=(n_resamples, len(ids)))
    means = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return [float(lo), float(hi)]


def set_changes(fa, fb, sets: dict[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
    """Each feature's mean activation change (candidate - base) on each probe set's rows:
    (the sets' names, an array of shape (n_sets, d_sae)); an empty set's row is zero."""
    d = _csr(fb) - _csr(fa)
    names = list(sets)
    out = np.zeros((len(names), d.shape[1]))
    for i, name in enumerate(names):
        rows = np.flatnonzero(sets[name])
        if len(rows):
            out[i] = _ravel(d[rows].mean(axis=0))
    return names, out


def moved_features(fa, fb, sets: dict[str, np.ndarray], top: int,
                   min_rows: int = MIN_SET_ROWS) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The ``top`` features by their largest |mean activation change| on any probe set of at
    least ``min_rows`` rows (the sets' rows together when none is that large); ties: lower id.

    A set mean, not a mean over every token: a change confined to one topic (a concept
    category, a domain) is ranked by its size there instead of being diluted by the other
    sets' tokens, and token-level TopK swaps average out within a set. Returns the top ids
    (features that did not move left out), each feature's score and the set it was scored on.
    """
    big = {k: v for k, v in sets.items() if np.count_nonzero(v) >= min_rows}
    if not big:  # every set too small: their rows together
        union = np.logical_or.reduce(list(sets.values())) if sets else \
            np.ones(_csr(fa).shape[0], dtype=bool)
        big = {"all probes": union}
    names, change = set_changes(fa, fb, big)
    where = np.argmax(np.abs(change), axis=0)
    score = np.abs(change)[where, np.arange(change.shape[1])]
    order = np.argsort(-score, kind="stable")[:top]
    return order[score[order] > 0], score, [names[i] for i in where]


def mean_abs_change(fa, fb) -> np.ndarray:
    """Each feature's mean |activation change| per row."""
    return _ravel(abs(_csr(fb) - _csr(fa)).mean(axis=0))


def risky_features(fa, fb, risk: np.ndarray, top: int, selectivity_min: float = 2.0
                   ) -> list[dict]:
    """Features selective for the risk tokens in the base whose activation there rose most.

    Selective: base mean activation on risk tokens at least ``selectivity_min`` times its mean
    on the other tokens (and positive). Ranked by the rise of the candidate's mean on the risk
    tokens; only features that rose are returned."""
    risk = np.asarray(risk, dtype=bool)
    if risk.sum() == 0 or (~risk).sum() == 0:
        return []
    on, off = mean_activation(fa, risk), mean_activation(fa, ~risk)
    after = mean_activation(fb, risk)
    selective = (on > 0) & (on >= selectivity_min * off)
    rise = after - on
    cand = np.flatnonzero(selective & (rise > 0))
    order = cand[np.argsort(-rise[cand], kind="stable")][:top]
    return [{"feature": int(i), "selectivity": float(on[i] / off[i]) if off[i] > 0 else None,
             "base_risk_mean": float(on[i]), "candidate_risk_mean": float(after[i]),
             "rise": float(rise[i])} for i in order]


#: Smallest loss increase (nats) from zero-ablating a layer for CE recovered to mean anything:
#: below it the ratio divides by noise (a random model's layer moves its loss by ~0.01 nats,
#: which gave "CE recovered 12.8").
MIN_CE_GAP = 0.05


def ce_recovered(ce_clean: float, ce_sae: float, ce_zero: float) -> float | None:
    """(CE_zero - CE_sae) / (CE_zero - CE_clean); None when zero-ablation raises the loss by
    less than :data:`MIN_CE_GAP` nats (see :func:`ce_gap_problem`)."""
    return None if ce_gap_problem(ce_clean, ce_zero) else float(
        (ce_zero - ce_sae) / (ce_zero - ce_clean))


def ce_gap_problem(ce_clean: float, ce_zero: float) -> str | None:
    """Why CE recovered is not measurable here, if it is not."""
    gap = ce_zero - ce_clean
    if not np.isfinite(gap) or gap < MIN_CE_GAP:
        return (f"zero-ablating the layer changes the loss by {gap:.3g} nats (under "
                f"{MIN_CE_GAP}), too little for the ratio to mean anything")
    return None
