"""Neighbourhood rewiring: k-NN sets per item in each model, their overlap, side by side.

A fine-tune can leave a concept's vector close to where it was and still change what it sits
next to; one cosine distance per concept does not show that. Here every item's k nearest
neighbours (cosine, self excluded) are found in each model separately and compared: Jaccard
overlap per item, the mutual k-NN alignment of Huh et al. (2024) for the whole space, and the
two neighbour lists side by side for the most rewired items.

Tokens of the input-embedding matrix get the same treatment; callers pass matrices whose rows
are already aligned by token string
(:func:`reportgen.families.embeddings.metrics.align_vocabularies`), so a grown tokenizer never
pairs unrelated rows and new tokens are never anyone's neighbour.
The full-vocabulary search is chunked: a block of rows against all rows at a time, never a
V×V matrix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from reportgen.core.names import lookup, register
from reportgen.core.records import MetricValue
from reportgen.core.stats import bootstrap_ci, cosine_distance_rows
from reportgen.families.neighbors import knn as search
from reportgen.families.neighbors.knn import shared_counts

if TYPE_CHECKING:  # torch is imported when a search runs: the registry stays light
    pass

KNN = "k nearest neighbours by cosine, self excluded (k = analysis.neighborhoods.k)"
CONCEPT_H = "last-token hidden state at the last layer"
HUH = "Mutual k-NN alignment (Huh et al. 2024)"
for _name, _definition in (  # all similarities: higher is better
    ("neighbors.concepts.jaccard.mean",
     f"Mean over concepts of |N_base ∩ N_candidate| / |N_base ∪ N_candidate|, N = {KNN} among "
     f"the concepts, h = {CONCEPT_H}."),
    ("neighbors.concepts.jaccard.median", "Median over concepts of the neighbour Jaccard."),
    ("neighbors.concepts.category.{category}.jaccard.mean",
     "Mean neighbour Jaccard over the concepts of category {category} (neighbours among all "
     "concepts)."),
    ("neighbors.concepts.mutual_knn",
     f"{HUH}: mean over concepts of |N_base ∩ N_candidate| / k, N = {KNN}, features "
     f"L2-normalised, h = {CONCEPT_H}."),
    ("neighbors.tokens.top_movers.jaccard.mean",
     f"Mean over the top-moving tokens of the neighbour Jaccard, N = {KNN} among all tokens "
     "shared by both vocabularies, in the input-embedding matrix."),
    ("neighbors.tokens.jaccard.mean",
     f"Mean over every shared token of the neighbour Jaccard in the input-embedding matrix, N = "
     f"{KNN} (requires analysis.neighborhoods.tokens: full-vocabulary)."),
    ("neighbors.tokens.mutual_knn",
     f"{HUH} of the input-embedding matrices over every shared token: mean of "
     f"|N_base ∩ N_candidate| / k, N = {KNN} (requires full-vocabulary)."),
):
    register(_name, _definition, higher_is_worse=False)

FULL_VOCAB_ONLY = "computed only with analysis.neighborhoods.tokens: full-vocabulary"
























@dataclass
class NeighbourComparison:
    """k-NN of the same items in two spaces; ``items`` are the queried rows' indices."""

    k: int
    items: np.ndarray  # (m,)
    base_idx: np.ndarray  # (m, k) neighbour rows in the base space
    base_sim: np.ndarray
    cand_idx: np.ndarray  # (m, k) neighbour rows in the candidate space
    cand_sim: np.ndarray
    shared: np.ndarray  # (m,) |N_base ∩ N_candidate|

    @property
    def jaccard(self) -> np.ndarray:
        return self.shared / (2 * self.k - self.shared)

    @property
    def mutual_knn(self) -> float:
        """Mean of |N_base ∩ N_candidate| / k (Huh et al. 2024)."""
        return float(np.mean(self.shared / self.k))

    def subset(self, positions: np.ndarray) -> NeighbourComparison:
        p = np.asarray(positions, dtype=np.int64)
        return NeighbourComparison(self.k, self.items[p], self.base_idx[p], self.base_sim[p],
                                   self.cand_idx[p], self.cand_sim[p], self.shared[p])


def compare_neighbourhoods(
    x_base: np.ndarray, x_cand: np.ndarray, k: int, chunk: int | None = None,
    rows: np.ndarray | None = None,
    base_knn: tuple[np.ndarray, np.ndarray] | None = None, device: str | None = None,
) -> NeighbourComparison:
    """k-NN of each item in each model separately (rows of both arrays are the same items).

    ``base_knn`` is ``search.knn(x_base, k, chunk, rows)`` computed already: the base is the same
    for every candidate, so an audit of several candidates searches it once. ``device``: where
    the searches run (:func:`search.knn`)."""
    if x_base.shape[0] != x_cand.shape[0]:
        raise ValueError(f"base and candidate hold {x_base.shape[0]} and {x_cand.shape[0]} "
                         "items; align them first (tokens: by string)")
    bi, bs = (base_knn if base_knn is not None
              else search.knn(x_base, k, chunk, rows, device=device))
    ci, cs = search.knn(x_cand, k, chunk, rows, device=device)
    items = np.arange(x_base.shape[0]) if rows is None else np.asarray(rows, np.int64)
    return NeighbourComparison(k, items, bi, bs, ci, cs, shared_counts(bi, ci))


def neighbour_jaccard(x_base: np.ndarray, x_cand: np.ndarray, k: int) -> np.ndarray:
    """Per item Jaccard of its k-NN set in the base model and in the candidate."""
    return compare_neighbourhoods(x_base, x_cand, k).jaccard


def mutual_knn_alignment(
    x: np.ndarray, y: np.ndarray, k: int, chunk: int | None = None,
) -> float:
    """Mutual k-NN alignment of Huh et al. (2024), "The Platonic Representation Hypothesis".

    ``mean_i |N_x(i) ∩ N_y(i)| / k`` where N(i) are the k nearest neighbours of item i by
    inner product of L2-normalised features, item i itself excluded: the reference code
    (github.com/minyoungg/platonic-rep, ``metrics.py``, ``AlignmentMetrics.mutual_knn`` and
    ``compute_nearest_neighbors``) normalises the features, fills the diagonal of the Gram
    matrix with −1e8 and takes the top k. Its feature preprocessing (clipping at the 95th
    percentile) is not part of the metric and is not applied here. 1 = the same
    neighbourhoods, about k/n for unrelated spaces.
    """
    return compare_neighbourhoods(x, y, k, chunk).mutual_knn


def full_vocabulary_jaccard(
    e_base: np.ndarray, e_cand: np.ndarray, k: int, chunk: int | None = None,
) -> np.ndarray:
    """Per-token Jaccard of every token's k-NN in two embedding matrices with aligned rows.

    Costs the two chunked similarity matmuls (one per matrix) plus a top-k per block; memory
    peaks at one chunk × V float32 block (reused), about 256 MiB by default.
    """
    return compare_neighbourhoods(e_base, e_cand, k, chunk).jaccard



def _neighbour_list(idx: np.ndarray, sim: np.ndarray, labels: Sequence[str]) -> list[dict]:
    return [{"label": labels[j], "similarity": float(s)} for j, s in zip(idx, sim, strict=True)]


def _line(label: str, base: list[dict], cand: list[dict], shown: int) -> str:
    def fmt(ns: list[dict]) -> str:
        more = " …" if len(ns) > shown else ""
        return ", ".join(f"{n['label']} {n['similarity']:.2f}" for n in ns[:shown]) + more

    return f"{label}: {fmt(base)} → {fmt(cand)}"


def side_by_side_rows(
    comp: NeighbourComparison, labels: Sequence[str], *, item_key: str = "term",
    categories: Sequence[str] | None = None, shown: int = 5,
) -> list[dict]:
    """One row per compared item, in ``comp`` order: both neighbour lists with similarities,
    the neighbours lost and gained, and a one-line summary ("a: b 0.97, … → c 0.91, …")."""
    rows = []
    for p, item in enumerate(comp.items):
        bi, ci = comp.base_idx[p], comp.cand_idx[p]
        b_set, c_set = set(bi.tolist()), set(ci.tolist())
        base = _neighbour_list(bi, comp.base_sim[p], labels)
        cand = _neighbour_list(ci, comp.cand_sim[p], labels)
        row = {item_key: labels[item]}
        if categories is not None:
            row["category"] = categories[item]
        rows.append({**row, "jaccard": float(comp.jaccard[p]), "shared": int(comp.shared[p]),
                     "base_neighbours": base, "candidate_neighbours": cand,
                     "lost": [labels[j] for j in bi if j not in c_set],
                     "gained": [labels[j] for j in ci if j not in b_set],
                     "text": _line(labels[item], base, cand, shown)})
    return rows


def most_rewired(comp: NeighbourComparison, drift: np.ndarray | None, top: int) -> np.ndarray:
    """Positions of the ``top`` lowest-Jaccard items; ties go to the larger cosine drift."""
    tie = np.zeros(len(comp.items)) if drift is None else -np.asarray(drift)[comp.items]
    order = np.lexsort((np.arange(len(comp.items)), tie, comp.jaccard))
    return order[:top]


def rewired_rows(
    comp: NeighbourComparison, labels: Sequence[str], *, top: int = 20,
    drift: np.ndarray | None = None, item_key: str = "term",
    categories: Sequence[str] | None = None,
) -> list[dict]:
    """The most rewired items with their neighbour lists side by side, ranked."""
    rows = side_by_side_rows(comp.subset(most_rewired(comp, drift, top)), labels,
                             item_key=item_key, categories=categories)
    return [{"rank": r + 1, **row} for r, row in enumerate(rows)]


def distribution_rows(shared: np.ndarray, k: int) -> list[dict]:
    """How many items share 0, 1, …, k neighbours (Jaccard takes only these k+1 values)."""
    counts = np.bincount(np.asarray(shared, np.int64), minlength=k + 1)
    return [{"shared": s, "jaccard": s / (2 * k - s), "count": int(c)}
            for s, c in enumerate(counts)]


def bootstrap_ci_jaccard(
    shared: np.ndarray, k: int, n_resamples: int, seed: int, level: float = 0.95,
) -> list[float] | None:
    """Percentile bootstrap interval of the mean Jaccard in O(resamples × k) memory: Jaccard
    takes k+1 values, so resampling n items is a multinomial draw of the k+1 counts, the
    same distribution as :func:`stats.bootstrap_ci` without its resamples × n index array
    (244 MB for 30,522 tokens × 1000 resamples)."""
    s = np.asarray(shared, np.int64)
    if n_resamples <= 0 or s.size < 2:
        return None
    counts = np.bincount(s, minlength=k + 1)
    levels = np.arange(k + 1) / (2 * k - np.arange(k + 1))
    draws = np.random.default_rng(seed).multinomial(s.size, counts / s.size, size=n_resamples)
    means = draws @ levels / s.size
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return [float(lo), float(hi)]



def _mv(name: str, value: float | None, ci: list[float] | None = None,
        error: str | None = None) -> MetricValue:
    info = lookup(name)
    if info is None:
        raise KeyError(f"metric {name!r} is not registered")
    return MetricValue(value, info.definition, info.unit, ci, error)


def concept_neighbour_metrics(
    base_last_layer: np.ndarray, cand_last_layer: np.ndarray, terms: list[str],
    categories: list[str], *, k: int = 10, n_boot: int, seed: int, top: int = 20,
    device: str | None = None,
) -> tuple[dict[str, MetricValue], dict[str, list[dict]]]:
    """Concept neighbourhoods, base vs candidate: arrays are (n_concepts, d) at one layer.

    Tables: ``neighbors_concepts`` (per concept), ``rewired_concepts`` (the ``top`` lowest
    Jaccard, neighbour lists side by side), ``neighbors_categories``,
    ``neighbors_concepts_distribution``.
    """
    comp = compare_neighbourhoods(base_last_layer, cand_last_layer, k, device=device)
    jac = comp.jaccard
    drift = cosine_distance_rows(base_last_layer, cand_last_layer)
    m = {n: _mv(n, v, ci) for n, v, ci in (
        ("neighbors.concepts.jaccard.mean", float(jac.mean()), bootstrap_ci(jac, n_boot, seed)),
        ("neighbors.concepts.jaccard.median", float(np.median(jac)), None),
        ("neighbors.concepts.mutual_knn", comp.mutual_knn, None))}
    cats = np.asarray(categories)
    cat_rows = []
    for c in sorted(set(categories)):
        sel = cats == c
        m[f"neighbors.concepts.category.{c}.jaccard.mean"] = _mv(
            f"neighbors.concepts.category.{c}.jaccard.mean", float(jac[sel].mean()))
        cat_rows.append({"category": c, "count": int(sel.sum()),
                         "jaccard_mean": float(jac[sel].mean())})
    order = np.lexsort((np.arange(len(terms)), -drift, jac))
    per_concept = [
        {"term": terms[i], "category": categories[i], "jaccard": float(jac[i]),
         "shared": int(comp.shared[i]), "cosine_distance": float(drift[i]), "rank": r + 1}
        for r, i in enumerate(order)
    ]
    tables = {
        "neighbors_concepts": per_concept,
        "rewired_concepts": rewired_rows(comp, terms, top=top, drift=drift,
                                         categories=categories),
        "neighbors_categories": cat_rows,
        "neighbors_concepts_distribution": distribution_rows(comp.shared, k),
    }
    return m, tables


def token_neighbour_metrics(
    e_base_aligned: np.ndarray, e_cand_aligned: np.ndarray, tokens: list[str],
    top_movers_idx: np.ndarray, *, k: int = 10, full_vocabulary: bool = False, n_boot: int,
    seed: int, top: int = 20, chunk: int | None = None, drift: np.ndarray | None = None,
    base_knn: tuple[np.ndarray, np.ndarray] | None = None, device: str | None = None,
) -> tuple[dict[str, MetricValue], dict[str, list[dict]]]:
    """Token neighbourhoods in the input-embedding matrices (rows aligned by string).

    ``top_movers_idx`` are aligned-row indices of the tokens that moved most. Their
    neighbours are always searched among all shared tokens; with ``full_vocabulary`` every
    token's neighbourhood is compared too, which adds the whole-vocabulary Jaccard and mutual
    k-NN. Tables: ``neighbors_tokens`` (the top movers, in the given order, side by side),
    ``rewired_tokens`` (lowest Jaccard: over the vocabulary, else among the top movers) and,
    with ``full_vocabulary``, ``neighbors_tokens_distribution``. ``drift`` (per aligned token
    1 − cos) and ``base_knn`` (the base's whole-vocabulary k-NN) may be passed when the caller
    has them already; ``device``: where the searches run.
    """
    movers = np.asarray(top_movers_idx, dtype=np.int64)
    if drift is None:
        drift = cosine_distance_rows(e_base_aligned, e_cand_aligned)
    m: dict[str, MetricValue] = {}
    tables: dict[str, list[dict]] = {}
    if full_vocabulary:
        every = compare_neighbourhoods(e_base_aligned, e_cand_aligned, k, chunk,
                                       base_knn=base_knn, device=device)
        moved = every.subset(movers)
        m["neighbors.tokens.jaccard.mean"] = _mv(
            "neighbors.tokens.jaccard.mean", float(every.jaccard.mean()),
            bootstrap_ci_jaccard(every.shared, k, n_boot, seed))
        m["neighbors.tokens.mutual_knn"] = _mv("neighbors.tokens.mutual_knn", every.mutual_knn)
        tables["neighbors_tokens_distribution"] = distribution_rows(every.shared, k)
    else:
        every = moved = compare_neighbourhoods(e_base_aligned, e_cand_aligned, k, chunk,
                                               rows=movers, device=device)
        for name in ("neighbors.tokens.jaccard.mean", "neighbors.tokens.mutual_knn"):
            m[name] = _mv(name, None, error=FULL_VOCAB_ONLY)
    tables["rewired_tokens"] = rewired_rows(every, tokens, top=top, drift=drift,
                                            item_key="token")
    mj = moved.jaccard
    m["neighbors.tokens.top_movers.jaccard.mean"] = _mv(
        "neighbors.tokens.top_movers.jaccard.mean", float(mj.mean()) if mj.size else None,
        bootstrap_ci(mj, n_boot, seed), None if mj.size else "no top-moving tokens given")
    rows = side_by_side_rows(moved, tokens, item_key="token")
    for row, i in zip(rows, moved.items, strict=True):
        row["cosine_distance"] = float(drift[i])
    tables["neighbors_tokens"] = rows
    return m, tables
