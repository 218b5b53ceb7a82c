"""Small numeric helpers shared by metric families (numpy only)."""

from __future__ import annotations

import numpy as np

# Distances below this are float64 round-off of identical vectors: report them as 0.
ROUNDOFF = 1e-12
_BOOT_BLOCK = 1 << 20  # resampled items per block of bootstrap_ci (8 MiB of indices)


def cosine_distance_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise ``1 - cos(a_i, b_i)`` in float64.

    A zero row against a zero row is distance 0 (nothing moved); against a non-zero row, 1.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    na = np.linalg.norm(a, axis=-1)
    nb = np.linalg.norm(b, axis=-1)
    dot = np.einsum("...d,...d->...", a, b)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = dot / (na * nb)
    cos = np.where((na == 0) & (nb == 0), 1.0, np.where((na == 0) | (nb == 0), 0.0, cos))
    dist = np.clip(1.0 - cos, 0.0, 2.0)
    return np.where(dist < ROUNDOFF, 0.0, dist)


def bootstrap_ci(
    values: np.ndarray, n_resamples: int, seed: int, level: float = 0.95
) -> list[float] | None:
    """Percentile bootstrap interval of the mean; None when it cannot be formed.

    Resamples are drawn in blocks of rows: the generator yields the same stream as one
    (resamples, n) draw, so the interval is the same, without a resamples × n index array
    (244 MB for 30,522 tokens × 1000 resamples, several times slower to fill and gather)."""
    x = np.asarray(values, dtype=np.float64)
    if n_resamples <= 0 or x.size < 2:
        return None
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    block = max(1, _BOOT_BLOCK // x.size)
    for s in range(0, n_resamples, block):
        idx = rng.integers(0, x.size, size=(min(block, n_resamples - s), x.size))
        means[s : s + len(idx)] = x[idx].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return [float(lo), float(hi)]


def safe_ratio(value: float, floor: float | None) -> tuple[float | None, str | None]:
    """``value / floor``; a missing or zero floor is an error to report, never infinity."""
    if floor is None:
        return None, "no noise-floor variant (role: noise_floor) in the spec"
    if not np.isfinite(floor) or floor <= ROUNDOFF:
        return None, "the noise floor measured zero drift, so no ratio can be formed"
    return float(value / floor), None
