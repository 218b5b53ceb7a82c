"""Concept drift: a categorised vocabulary in a prompt template, base vs candidate.

Representations are the hidden state of the last non-padding token (the default) and the
mean over non-padding tokens, at every captured layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..certificate import MetricValue
from .registry import register
from .stats import bootstrap_ci, cosine_distance_rows, safe_ratio

LAST = "hidden state of the last non-padding token at the last layer"
register(
    "concepts.cosine_distance.mean",
    f"Mean over concepts of 1 − cos(h_base, h_candidate), h = {LAST} of the prompt template.",
)
register("concepts.cosine_distance.median", f"Median over concepts of 1 − cos, h = {LAST}.")
register("concepts.cosine_distance.max", f"Largest per-concept 1 − cos, h = {LAST}.")
register(
    "concepts.cosine_distance.noise_floor_ratio",
    "concepts.cosine_distance.mean of the candidate divided by that of the noise-floor variant.",
    unit="×",
)
register(
    "concepts.mean_pooled.cosine_distance.mean",
    "Mean over concepts of 1 − cos of the hidden states mean-pooled over non-padding tokens "
    "at the last layer.",
)
register(
    "concepts.mean_pooled.cosine_distance.noise_floor_ratio",
    "concepts.mean_pooled.cosine_distance.mean divided by that of the noise-floor variant.",
    unit="×",
)
register(
    "concepts.category.{category}.cosine_distance.mean",
    f"Mean 1 − cos over the concepts of category {{category}}, h = {LAST}.",
)
register(
    "concepts.category.{category}.noise_floor_ratio",
    "Mean concept drift of category {category} divided by the noise floor's drift on the same "
    "category.",
    unit="×",
)
register(
    "concepts.layer.{layer}.cosine_distance.mean",
    "Mean over concepts of 1 − cos of the last-token hidden state after block {layer} "
    "(0 = embedding output).",
)
register(
    "concepts.share_above_noise_floor_10x",
    "Share of concepts whose drift exceeds 10× the same concept's drift in the noise floor.",
    unit="share",
)


@dataclass
class ConceptDrift:
    """Per-concept cosine distances at every captured layer, for one pair of models."""

    layer_ids: list[int]
    last: np.ndarray  # (n_layers, n_concepts)
    mean_pooled: np.ndarray  # (n_layers, n_concepts)

    @property
    def final(self) -> np.ndarray:
        return self.last[-1]


def concept_drift(
    base_last: np.ndarray, cand_last: np.ndarray, base_mean: np.ndarray, cand_mean: np.ndarray,
    layer_ids: list[int],
) -> ConceptDrift:
    """Arrays are (n_layers, n_concepts, d); distances are taken per layer and concept."""
    return ConceptDrift(
        layer_ids=list(layer_ids),
        last=cosine_distance_rows(base_last, cand_last),
        mean_pooled=cosine_distance_rows(base_mean, cand_mean),
    )


def concept_metrics(
    drift: ConceptDrift,
    floor: ConceptDrift | None,
    terms: list[str],
    categories: list[str],
    *,
    n_boot: int,
    seed: int,
) -> tuple[dict[str, MetricValue], dict[str, list[dict]]]:
    """Headline metrics and the tables behind them (concepts, categories, layers)."""
    from .registry import definition

    d = drift.final
    m: dict[str, MetricValue] = {}

    def put(name: str, value: float | None, ci=None, error=None, defname=None) -> None:
        info_name = defname or name
        m[name] = MetricValue(value, definition(info_name), _unit(info_name), ci, error)

    put("concepts.cosine_distance.mean", float(d.mean()), bootstrap_ci(d, n_boot, seed))
    put("concepts.cosine_distance.median", float(np.median(d)))
    put("concepts.cosine_distance.max", float(d.max()))
    mp = drift.mean_pooled[-1]
    put("concepts.mean_pooled.cosine_distance.mean", float(mp.mean()),
        bootstrap_ci(mp, n_boot, seed))
    for key, mine, theirs in (
        ("concepts.cosine_distance.noise_floor_ratio", d, floor.final if floor else None),
        ("concepts.mean_pooled.cosine_distance.noise_floor_ratio", mp,
         floor.mean_pooled[-1] if floor else None),
    ):
        v, err = safe_ratio(float(mine.mean()), None if theirs is None else float(theirs.mean()))
        put(key, v, error=err)

    per_ratio = _per_concept_ratio(d, floor.final if floor else None)
    if per_ratio is not None:
        put("concepts.share_above_noise_floor_10x", float(np.mean(per_ratio > 10.0)))
    else:
        put("concepts.share_above_noise_floor_10x", None,
            error="no noise-floor variant, or it measured zero drift on some concept")

    cat_rows = _category_rows(d, floor.final if floor else None, categories)
    for row in cat_rows:
        c = row["category"]
        put(f"concepts.category.{c}.cosine_distance.mean", row["mean"],
            defname="concepts.category.{category}.cosine_distance.mean")
        put(f"concepts.category.{c}.noise_floor_ratio", row["noise_floor_ratio"],
            error=None if row["noise_floor_ratio"] is not None else row.pop("_ratio_error"),
            defname="concepts.category.{category}.noise_floor_ratio")
        row.pop("_ratio_error", None)
    layer_rows = []
    for i, layer in enumerate(drift.layer_ids):
        v = float(drift.last[i].mean())
        put(f"concepts.layer.{layer}.cosine_distance.mean", v,
            defname="concepts.layer.{layer}.cosine_distance.mean")
        layer_rows.append({"layer": layer, "cosine_distance_mean": v,
                           "mean_pooled_cosine_distance_mean": float(drift.mean_pooled[i].mean())})
    tables = {
        "concepts": _concept_rows(drift, terms, categories, per_ratio),
        "categories": cat_rows,
        "layers": layer_rows,
        "concept_layers": _concept_layer_rows(drift, terms),
    }
    return m, tables


def _unit(name: str) -> str:
    from .registry import lookup

    info = lookup(name)
    return info.unit if info else ""


def _per_concept_ratio(d: np.ndarray, floor: np.ndarray | None) -> np.ndarray | None:
    if floor is None or np.any(floor <= 0):
        return None
    return d / floor


def _concept_rows(drift: ConceptDrift, terms, categories, ratio) -> list[dict]:
    d = drift.final
    order = np.argsort(-d, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(1, len(d) + 1)
    q75 = np.quantile(d, 0.75)
    rows = []
    for i in order:
        rows.append({
            "term": terms[i],
            "category": categories[i],
            "cosine_distance": float(d[i]),
            "cosine_distance_mean_pooled": float(drift.mean_pooled[-1][i]),
            "rank": int(rank[i]),
            "top_quartile": bool(d[i] >= q75),
            "noise_floor_ratio": None if ratio is None else float(ratio[i]),
        })
    return rows


def _category_rows(d: np.ndarray, floor: np.ndarray | None, categories: list[str]) -> list[dict]:
    cats = np.asarray(categories)
    q75 = np.quantile(d, 0.75)
    rows = []
    for c in sorted(set(categories)):
        sel = cats == c
        mean = float(d[sel].mean())
        row = {
            "category": c,
            "count": int(sel.sum()),
            "mean": mean,
            "std": float(d[sel].std()),
            "top_quartile_share": float(np.mean(d[sel] >= q75)),
        }
        ratio, err = safe_ratio(mean, None if floor is None else float(floor[sel].mean()))
        row["noise_floor_ratio"] = ratio
        if err:
            row["_ratio_error"] = err
        rows.append(row)
    return rows


def _concept_layer_rows(drift: ConceptDrift, terms: list[str]) -> list[dict]:
    """Per-concept drift at every layer (the explorer and the layer heatmap read this)."""
    return [
        {"term": t, "by_layer": [float(x) for x in drift.last[:, i]]}
        for i, t in enumerate(terms)
    ]
