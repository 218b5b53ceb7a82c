"""Sparse-feature metrics against independent numpy / sklearn computations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse
from sklearn.metrics import jaccard_score

from reportgen.families.sae import metrics as m


def _codes(seed: int, n: int = 40, d: int = 30, k: int = 4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    f = np.zeros((n, d))
    for i in range(n):
        f[i, rng.choice(d, k, replace=False)] = rng.random(k) + 0.1
    f[0] = 0.0  # an empty row
    return f


def test_jaccard_matches_sklearn_per_row() -> None:
    fa, fb = _codes(0), _codes(1)
    fb[0] = 0.0  # empty vs empty counts as 1
    got = m.jaccard_rows(fa, fb)
    want = [jaccard_score(fa[i] != 0, fb[i] != 0, zero_division=1.0) for i in range(len(fa))]
    np.testing.assert_allclose(got, want)


def test_l1_divergence_firing_and_means_match_loops() -> None:
    fa, fb = _codes(2), _codes(3)
    for i in range(len(fa)):
        den = np.abs(fa[i]).sum() + np.abs(fb[i]).sum()
        want = np.abs(fa[i] - fb[i]).sum() / den if den else 0.0
        assert m.l1_divergence_rows(fa, fb)[i] == pytest.approx(want)
    np.testing.assert_allclose(m.firing_frequency(fa), (fa > 0).sum(0) / len(fa))
    rows = np.arange(len(fa)) % 3 == 0
    np.testing.assert_allclose(m.mean_activation(fa, rows), fa[rows].mean(0))


def test_cosine_rows_match_numpy() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(10, 6)), rng.normal(size=(10, 6))
    want = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    np.testing.assert_allclose(m.cosine_rows(a, b), want, atol=1e-12)


def test_moved_features_rank_by_largest_set_mean_change() -> None:
    fa = _codes(5, n=60)
    fb = fa.copy()
    fb[:, 7] += 0.5  # a small shift everywhere
    fb[:20, 3] += 1.0  # a larger change confined to set "a"
    fb[0, 11] += 30.0  # one token's change: its mean over "a" is 1.5, but "c" is too small
    fb[50:, 12] += 9.0  # a change on set "c" alone, which has fewer than min_rows rows
    sets = {"a": np.arange(60) < 20, "b": (np.arange(60) >= 20) & (np.arange(60) < 50),
            "c": np.arange(60) >= 50}
    top, score, where = m.moved_features(fa, fb, sets, 4, min_rows=12)
    d = fb - fa
    big = {k: v for k, v in sets.items() if v.sum() >= 12}
    per_set = np.stack([d[v].mean(0) for v in big.values()])
    np.testing.assert_allclose(score, np.abs(per_set).max(0))
    assert list(top) == [11, 3, 7]  # unmoved features are left out; "c" does not rank
    assert (where[11], where[3], where[7]) == ("a", "a", "a")
    names, change = m.set_changes(fa, fb, sets)
    np.testing.assert_allclose(change, np.stack([d[v].mean(0) for v in sets.values()]))
    np.testing.assert_allclose(m.mean_abs_change(fa, fb), np.abs(d).mean(0))
    # no set large enough: the sets' rows together, never rows outside every set
    small = {"c": sets["c"], "d": np.arange(60) == 0}
    top, score, where = m.moved_features(fa, fb, small, 2, min_rows=12)
    np.testing.assert_allclose(score, np.abs(d[(np.arange(60) >= 50) | (np.arange(60) == 0)]
                                             .mean(0)))
    assert where[0] == "all probes"


def test_risky_features_are_selective_and_rose() -> None:
    fa = np.zeros((20, 5))
    risk = np.arange(20) < 5
    fa[risk, 1] = 1.0  # selective for risk
    fa[:, 2] = 1.0  # fires everywhere: not selective
    fa[risk, 4] = 1.0  # selective, but will fall
    fb = fa.copy()
    fb[risk, 1] = 3.0
    fb[risk, 2] = 5.0
    fb[risk, 4] = 0.5
    rows = m.risky_features(fa, fb, risk, top=5)
    assert [r["feature"] for r in rows] == [1]
    assert rows[0]["rise"] == pytest.approx(2.0) and rows[0]["selectivity"] is None
    assert m.risky_features(fa, fb, np.zeros(20, bool), top=5) == []


def test_grouped_bootstrap_covers_the_token_mean() -> None:
    rng = np.random.default_rng(6)
    groups = np.repeat(np.arange(30), 5)
    values = rng.normal(size=150) + groups * 0.01
    lo, hi = m.grouped_bootstrap_ci(values, groups, 500, 0)
    assert lo < values.mean() < hi
    assert m.grouped_bootstrap_ci(values, groups, 500, 0) == [lo, hi]  # seeded
    assert m.grouped_bootstrap_ci(values, np.zeros(150), 500, 0) is None


def test_ce_recovered_formula() -> None:
    assert m.ce_recovered(2.0, 2.5, 6.0) == pytest.approx((6.0 - 2.5) / (6.0 - 2.0))
    assert m.ce_recovered(2.0, 2.5, 2.0) is None
    # a layer whose ablation barely moves the loss: the ratio would divide by noise
    assert m.ce_recovered(6.922, 6.952, 6.931) is None
    assert m.ce_gap_problem(6.922, 6.931) == (
        "zero-ablating the layer changes the loss by 0.009 nats (under 0.05), too little for "
        "the ratio to mean anything")
    assert m.ce_recovered(2.0, 2.5, 2.1) == pytest.approx((2.1 - 2.5) / 0.1)


def test_context_marks_the_token_not_its_leading_space() -> None:
    from types import SimpleNamespace

    from reportgen.families.sae.pair import _Labeller

    pieces = {"1": "The", "2": " concept", "3": " of", "4": " casino", "5": "'s", "6": " is"}
    be = SimpleNamespace(meta={"token_text": pieces}, arrays={
        "token_ids": np.arange(1, 7), "text_rows": np.zeros(6, dtype=int)})
    fa = np.zeros((6, 2))
    fa[3, 0], fa[4, 1] = 2.0, 1.0
    lab = _Labeller({}, sparse.csr_matrix(fa), be, np.ones(6, dtype=bool))
    assert lab(0)["contexts"] == ["The concept of [[casino]]'s is"]
    assert lab(1)["contexts"] == ["The concept of casino[['s]] is"]
    assert lab(0)["label"] == "'casino'"
