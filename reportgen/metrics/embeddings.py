"""Token-embedding drift over the whole input-embedding matrix.

Tokens are aligned by their string, so a tokenizer that grew during fine-tuning never has
row i compared to an unrelated row i; new tokens are listed, not compared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..certificate import MetricValue
from .registry import definition, register
from .stats import bootstrap_ci, cosine_distance_rows, safe_ratio

HISTOGRAM_BINS = 40

register(
    "embeddings.cosine_distance.mean",
    "Mean over every token shared by both vocabularies of 1 − cos(E_base[t], E_candidate[t]), "
    "E = input-embedding matrix, tokens aligned by string.",
)
register("embeddings.cosine_distance.p99", "99th percentile of the per-token 1 − cos.")
register("embeddings.cosine_distance.max", "Largest per-token 1 − cos.")
register(
    "embeddings.cosine_distance.noise_floor_ratio",
    "embeddings.cosine_distance.mean divided by that of the noise-floor variant.",
    unit="×",
)
register(
    "embeddings.new_tokens",
    "Number of candidate tokens absent from the base vocabulary (not compared).",
    unit="tokens",
)


@dataclass
class Alignment:
    """Row indices pairing base and candidate tokens with the same string."""

    tokens: list[str]
    base_rows: np.ndarray
    cand_rows: np.ndarray
    new_tokens: list[str]


def align_vocabularies(base_vocab: list[str | None], cand_vocab: list[str | None]) -> Alignment:
    """Pair tokens by string; ``vocab[i]`` is row i's string, None for rows without a token."""
    cand_index = {t: i for i, t in enumerate(cand_vocab) if t is not None}
    base_rows, cand_rows, tokens = [], [], []
    for i, t in enumerate(base_vocab):
        j = cand_index.get(t) if t is not None else None
        if j is not None:
            base_rows.append(i)
            cand_rows.append(j)
            tokens.append(t)
    base_set = {t for t in base_vocab if t is not None}
    new = [t for t in cand_vocab if t is not None and t not in base_set]
    return Alignment(tokens, np.asarray(base_rows, dtype=np.int64),
                     np.asarray(cand_rows, dtype=np.int64), new)


def token_drift(base_emb: np.ndarray, cand_emb: np.ndarray, align: Alignment,
                chunk: int = 8192) -> np.ndarray:
    """Per aligned token 1 − cos, computed in chunks to bound memory."""
    out = np.empty(len(align.tokens), dtype=np.float64)
    for s in range(0, len(out), chunk):
        b = base_emb[align.base_rows[s:s + chunk]]
        c = cand_emb[align.cand_rows[s:s + chunk]]
        out[s:s + chunk] = cosine_distance_rows(b, c)
    return out


def embedding_metrics(
    dist: np.ndarray, floor: np.ndarray | None, align: Alignment, *, top: int, n_boot: int,
    seed: int,
) -> tuple[dict[str, MetricValue], dict[str, list[dict]]]:
    m: dict[str, MetricValue] = {}

    def put(name, value, ci=None, error=None, unit=""):
        m[name] = MetricValue(value, definition(name), unit, ci, error)

    put("embeddings.cosine_distance.mean", float(dist.mean()), bootstrap_ci(dist, n_boot, seed))
    put("embeddings.cosine_distance.p99", float(np.quantile(dist, 0.99)))
    put("embeddings.cosine_distance.max", float(dist.max()))
    ratio, err = safe_ratio(float(dist.mean()), None if floor is None else float(floor.mean()))
    put("embeddings.cosine_distance.noise_floor_ratio", ratio, error=err, unit="×")
    put("embeddings.new_tokens", float(len(align.new_tokens)), unit="tokens")
    order = [i for i in np.argsort(-dist, kind="stable")[:top] if dist[i] > 0]
    rows = [
        {"token": align.tokens[i], "base_id": int(align.base_rows[i]),
         "candidate_id": int(align.cand_rows[i]), "cosine_distance": float(dist[i]),
         "rank": r + 1}
        for r, i in enumerate(order)
    ]
    tables = {"tokens": rows, "token_histogram": drift_histogram(dist),
              "new_tokens": [{"token": t} for t in align.new_tokens[:500]]}
    return m, tables


def drift_histogram(dist: np.ndarray, max_bins: int = HISTOGRAM_BINS) -> list[dict]:
    """Counts of per-token drift in bins from 0 whose width is a power of two (at most
    ``max_bins`` of them, at least half as many).

    Any two candidates' bins then nest: the wider width is a multiple of the narrower and
    both grids start at 0, so a chart can put every candidate on one shared set of bins by
    adding counts, exactly. Nothing moved: one bin [0, 0] holding every token."""
    top = float(dist.max()) if dist.size else 0.0
    if top <= 0.0:
        return [{"bin_start": 0.0, "bin_end": 0.0, "count": int(dist.size)}]
    width = 2.0 ** math.ceil(math.log2(top / max_bins))
    edges = np.arange(math.ceil(top / width) + 1) * width
    counts, _ = np.histogram(dist, bins=edges)
    return [{"bin_start": float(lo), "bin_end": float(hi), "count": int(c)}
            for lo, hi, c in zip(edges[:-1], edges[1:], counts, strict=True)]
