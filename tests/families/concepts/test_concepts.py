"""Concept drift against scipy's cosine distance and numpy statistics on random data."""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cosine as _scipy_cosine

from reportgen.core.stats import bootstrap_ci, cosine_distance_rows, safe_ratio
from reportgen.families.concepts.metrics import concept_drift, concept_metrics


def _states(rng, layers=3, n=12, d=8):
    return rng.normal(size=(layers, n, d)).astype(np.float32)


def cosine(a, b) -> float:
    """scipy's cosine distance in float64 (it computes in the inputs' dtype)."""
    return _scipy_cosine(np.asarray(a, np.float64), np.asarray(b, np.float64))


def test_cosine_distance_rows_matches_scipy() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(50, 16)), rng.normal(size=(50, 16))
    ours = cosine_distance_rows(a, b)
    ref = np.array([cosine(a[i], b[i]) for i in range(50)])
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-12)


def test_zero_rows() -> None:
    z = np.zeros((1, 4))
    one = np.ones((1, 4))
    assert cosine_distance_rows(z, z)[0] == 0.0
    assert cosine_distance_rows(z, one)[0] == 1.0


def test_concept_metrics_against_independent_numbers() -> None:
    rng = np.random.default_rng(1)
    bl, cl, bm, cm = (_states(rng) for _ in range(4))
    terms = [f"t{i}" for i in range(12)]
    cats = ["a"] * 4 + ["b"] * 4 + ["c"] * 4
    drift = concept_drift(bl, cl, bm, cm, [0, 1, 2])
    fl = bl + 0.01 * rng.normal(size=bl.shape).astype(np.float32)
    floor = concept_drift(bl, fl, bm, bm, [0, 1, 2])
    m, tables = concept_metrics(drift, floor, terms, cats, n_boot=200, seed=0)

    ref_last = np.array([cosine(bl[-1, i], cl[-1, i]) for i in range(12)])
    ref_floor = np.array([cosine(bl[-1, i], fl[-1, i]) for i in range(12)])
    assert np.isclose(m["concepts.cosine_distance.mean"].value, ref_last.mean())
    assert np.isclose(m["concepts.cosine_distance.median"].value, np.median(ref_last))
    assert np.isclose(m["concepts.cosine_distance.max"].value, ref_last.max())
    assert np.isclose(m["concepts.cosine_distance.noise_floor_ratio"].value,
                      ref_last.mean() / ref_floor.mean(), rtol=1e-6)
    ref_mp = np.array([cosine(bm[-1, i], cm[-1, i]) for i in range(12)])
    assert np.isclose(m["concepts.mean_pooled.cosine_distance.mean"].value, ref_mp.mean())
    for layer in range(3):
        ref = np.mean([cosine(bl[layer, i], cl[layer, i]) for i in range(12)])
        assert np.isclose(m[f"concepts.layer.{layer}.cosine_distance.mean"].value, ref)
    assert np.isclose(m["concepts.category.b.cosine_distance.mean"].value, ref_last[4:8].mean())
    assert np.isclose(m["concepts.share_above_noise_floor_10x"].value,
                      np.mean(ref_last / ref_floor > 10))
    rows = {r["category"]: r for r in tables["categories"]}
    q75 = np.quantile(ref_last, 0.75)
    assert np.isclose(rows["c"]["std"], ref_last[8:].std())
    assert np.isclose(rows["c"]["top_quartile_share"], np.mean(ref_last[8:] >= q75))
    top = tables["concepts"][0]
    assert top["term"] == terms[int(np.argmax(ref_last))] and top["rank"] == 1
    lo, hi = m["concepts.cosine_distance.mean"].ci
    assert lo <= ref_last.mean() <= hi


def test_noise_floor_missing_or_zero_is_an_error_not_infinity() -> None:
    rng = np.random.default_rng(2)
    bl, cl = _states(rng), _states(rng)
    drift = concept_drift(bl, cl, bl, cl, [0, 1, 2])
    zero = concept_drift(bl, bl, bl, bl, [0, 1, 2])
    m, _ = concept_metrics(drift, zero, [str(i) for i in range(12)], ["x"] * 12, n_boot=0,
                           seed=0)
    r = m["concepts.cosine_distance.noise_floor_ratio"]
    assert r.value is None and "zero drift" in r.error
    m2, _ = concept_metrics(drift, None, [str(i) for i in range(12)], ["x"] * 12, n_boot=0,
                            seed=0)
    assert "no noise-floor variant" in m2["concepts.cosine_distance.noise_floor_ratio"].error
    assert safe_ratio(1.0, 0.0)[0] is None


def test_bootstrap_is_seeded_and_brackets_the_mean() -> None:
    x = np.random.default_rng(3).exponential(size=200)
    a = bootstrap_ci(x, 500, seed=7)
    assert a == bootstrap_ci(x, 500, seed=7)
    assert a[0] < x.mean() < a[1]
    assert bootstrap_ci(x[:1], 500, seed=7) is None
