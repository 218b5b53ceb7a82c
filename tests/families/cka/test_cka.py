"""Linear CKA against a direct numpy transcription of Kornblith et al. (2019) and the
properties the paper proves; the per-layer family and its bootstrap against a direct loop."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ortho_group

from reportgen.core.names import lookup
from reportgen.families.cka.metrics import bootstrap_cka, cka_by_layer, linear_cka


def direct_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Centring matrix H, then ‖YᵀX‖_F² / (‖XᵀX‖_F ‖YᵀY‖_F), feature space, no shortcuts."""
    n = x.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    xc, yc = h @ x, h @ y
    return (np.linalg.norm(yc.T @ xc, "fro") ** 2
            / (np.linalg.norm(xc.T @ xc, "fro") * np.linalg.norm(yc.T @ yc, "fro")))


@pytest.mark.parametrize(("n", "dx", "dy"), [(200, 10, 15), (30, 64, 48), (40, 40, 7)])
def test_linear_cka_matches_the_formula(n: int, dx: int, dy: int) -> None:
    rng = np.random.default_rng(n + dx)
    x = rng.normal(size=(n, dx))
    y = x[:, :min(dx, dy)] @ rng.normal(size=(min(dx, dy), dy)) + rng.normal(size=(n, dy))
    assert linear_cka(x, y) == pytest.approx(direct_cka(x, y), rel=1e-10)
    assert linear_cka(x, y) == pytest.approx(linear_cka(y, x), rel=1e-12)


@pytest.mark.parametrize(("n", "d"), [(100, 12), (20, 50)])  # feature form and Gram form
def test_cka_invariances(n: int, d: int) -> None:
    rng = np.random.default_rng(d)
    x = rng.normal(size=(n, d))
    q = ortho_group.rvs(d, random_state=2)
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x, x @ q) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x, 7.5 * x) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x, x + 3.0) == pytest.approx(1.0, abs=1e-12)  # centring
    y = rng.normal(size=(n, d))
    assert linear_cka(x, 0.1 * y @ q) == pytest.approx(linear_cka(x, y), rel=1e-10)
    # not invariant to an arbitrary invertible map (that is the point of CKA)
    a = np.diag(np.linspace(0.1, 10, d))
    assert linear_cka(x, x @ a) < 0.99


def test_cka_without_variance_is_undefined() -> None:
    x = np.ones((10, 4))
    assert np.isnan(linear_cka(x, np.random.default_rng(0).normal(size=(10, 4))))


def layered(seed: int = 0, n_layers: int = 4, n: int = 30, d: int = 12
            ) -> tuple[np.ndarray, np.ndarray]:
    """The candidate drifts more with depth."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n_layers, n, d))
    noise = np.arange(n_layers)[:, None, None] * 0.5 * rng.normal(size=base.shape)
    return base, base + noise


def test_cka_by_layer_metrics_and_table() -> None:
    base, cand = layered()
    m, rows = cka_by_layer(base, cand, [0, 2, 4, 6], n_boot=300, seed=3)
    direct = [direct_cka(b, c) for b, c in zip(base, cand, strict=True)]
    for layer, v in zip([0, 2, 4, 6], direct, strict=True):
        assert m[f"cka.concepts.layer.{layer}"].value == pytest.approx(v, rel=1e-10)
    assert direct[0] == pytest.approx(1.0) and direct[-1] < direct[1]
    assert m["cka.concepts.mean"].value == pytest.approx(np.mean(direct))
    assert m["cka.concepts.min"].value == pytest.approx(min(direct))
    assert rows == [{"probe": "concepts", "layer": layer, "cka": pytest.approx(v)}
                    for layer, v in zip([0, 2, 4, 6], direct, strict=True)]
    lo, hi = m["cka.concepts.mean"].ci
    assert lo < hi
    assert m["cka.concepts.layer.4"].definition == lookup("cka.concepts.layer.{layer}").definition
    assert lookup("cka.concepts.min").higher_is_worse is False


def test_bootstrap_cka_equals_linear_cka_on_resampled_rows() -> None:
    base, cand = layered(seed=1, n=25)
    n_boot, seed = 200, 11
    idx = np.random.default_rng(seed).integers(0, 25, size=(n_boot, 25))
    per = np.array([[linear_cka(b[i], c[i]) for b, c in zip(base, cand, strict=True)]
                    for i in idx])
    ci_mean, ci_min = bootstrap_cka(base, cand, n_boot, seed)
    np.testing.assert_allclose(ci_mean, np.quantile(per.mean(axis=1), [0.025, 0.975]),
                               rtol=1e-10)
    np.testing.assert_allclose(ci_min, np.quantile(per.min(axis=1), [0.025, 0.975]),
                               rtol=1e-10)
    assert bootstrap_cka(base, cand, 0, seed) == (None, None)


def test_constant_layer_is_undefined_and_left_out_of_mean_and_min() -> None:
    base, cand = layered(n_layers=3)
    base[0] = 1.0  # no variance at layer 0 (GPT-2's embedding output at a shared last token)
    cand[2] = cand[2][:1]  # every item the same at layer 2, on the candidate's side only
    m, rows = cka_by_layer(base, cand, [0, 1, 2], n_boot=50, seed=0)
    for layer in (0, 2):
        assert m[f"cka.concepts.layer.{layer}"].value is None
        assert m[f"cka.concepts.layer.{layer}"].error.startswith("undefined: every item")
    defined = direct_cka(base[1], cand[1])
    assert m["cka.concepts.mean"].value == pytest.approx(defined)
    assert m["cka.concepts.min"].value == pytest.approx(defined)
    assert m["cka.concepts.mean"].ci is not None
    assert [r["cka"] for r in rows] == [None, pytest.approx(defined), None]
    base[1], cand[1] = 2.0, 3.0  # no layer defined: no mean, no minimum
    m, rows = cka_by_layer(base, cand, [0, 1, 2])
    assert "cka.concepts.mean" not in m and all(r["cka"] is None for r in rows)


def test_probe_name_selects_the_metric_family() -> None:
    base, cand = layered(n_layers=2)
    if lookup("cka.domains.finance.layer.1") is None:
        pytest.skip("registry has no {domain} placeholder yet")
    m, rows = cka_by_layer(base, cand, [0, 1], probe="domains.finance")
    assert set(m) == {"cka.domains.finance.layer.0", "cka.domains.finance.layer.1",
                      "cka.domains.finance.mean", "cka.domains.finance.min"}
    assert rows[0]["probe"] == "domains.finance"


def test_unregistered_probe_names_the_fix() -> None:
    base, cand = layered(n_layers=2)
    with pytest.raises(KeyError, match="is not registered"):
        cka_by_layer(base, cand, [0, 1], probe="nonsense")
