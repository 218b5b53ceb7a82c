"""The analysis on an accelerator (reportgen.core.accel): k-NN, CKA and SAE encoding and
training given a device give the default CPU path's numbers within the stated tolerances.

Every test runs on ``cpu`` here, through the very code a GPU runs (tensors moved to the
device, float32 with float32 accumulation), and again on ``cuda`` where one is present
(marked ``gpu``; skipped without CUDA: ``benchmarks/gpu_check.sh`` runs them on a GPU)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from reportgen.families.cka.metrics import bootstrap_cka, cka_by_layer, linear_cka
from reportgen.families.neighbors.knn import knn
from reportgen.families.sae.collect import _encode
from reportgen.sae import SAE, train_topk_sae

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]
#: Tolerances the README states for the device path against the CPU's default path.
KNN_SIM_ATOL = 1e-5  # cosine similarities of float32 unit rows
CKA_ATOL = 1e-5  # float32 products of float64-centred rows vs float64
SAE_RTOL = 1e-4  # codes and reconstructions, relative to the activations' scale
TRAIN_FVU_ATOL = 0.05  # a dictionary trained on a GPU: rounding changes the path, not the fit


def _brute(x: np.ndarray, k: int) -> np.ndarray:
    """Independent float64 k-NN: similarity descending, ties by lower index."""
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = u @ u.T
    np.fill_diagonal(s, -np.inf)
    return np.argsort(-s, axis=1, kind="stable")[:, :k]


@pytest.mark.parametrize("device", DEVICES)
def test_knn_on_a_device_matches_the_default_path_and_float64(device: str) -> None:
    x = np.random.default_rng(3).normal(size=(900, 32))
    ref = _brute(x, 8)
    d_idx, d_sim = knn(x, 8, chunk=100)
    idx, sim = knn(x, 8, chunk=100, device=device)
    np.testing.assert_array_equal(idx, ref)
    np.testing.assert_array_equal(idx, d_idx)
    np.testing.assert_allclose(sim, d_sim, atol=KNN_SIM_ATOL)
    rows = np.array([899, 4, 4, 17])
    r_idx, _ = knn(x, 8, chunk=3, rows=rows, device=device)
    np.testing.assert_array_equal(r_idx, ref[rows])


@pytest.mark.parametrize("device", DEVICES)
def test_knn_ties_break_to_the_lower_index_on_the_device(device: str) -> None:
    x = np.array([[1, 0], [1, 0], [1, 0], [0, 1], [1, 0], [-1, 0], [1, 0]], dtype=float)
    for chunk in (1, 3, 7):
        idx, sim = knn(x, 3, chunk=chunk, device=device)
        np.testing.assert_array_equal(idx[0], [1, 2, 4])
        np.testing.assert_array_equal(idx[3], [0, 1, 2])
        np.testing.assert_array_equal(idx[5], [3, 0, 1])
        np.testing.assert_allclose(sim[5], [0, -1, -1], atol=KNN_SIM_ATOL)


def _layers(seed: int, n: int = 40, d: int = 24, layers: int = 3) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(layers, n, d)) * 5 + 3  # an offset: centring matters
    return base, base + rng.normal(size=base.shape) * np.arange(1, layers + 1)[:, None, None]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("n", "d"), [(40, 24), (12, 50)])  # d×d form and Gram form
def test_cka_on_a_device_matches_float64(device: str, n: int, d: int) -> None:
    base, cand = _layers(n, n=n, d=d)
    for b, c in zip(base, cand, strict=True):
        assert linear_cka(b, c, device) == pytest.approx(linear_cka(b, c), abs=CKA_ATOL)
    on = bootstrap_cka(base, cand, 200, 5, device=device)
    default = bootstrap_cka(base, cand, 200, 5)
    for a, b in zip(on, default, strict=True):
        np.testing.assert_allclose(a, b, atol=10 * CKA_ATOL)
    m_dev, rows_dev = cka_by_layer(base, cand, [0, 1, 2], n_boot=100, seed=1, device=device)
    m_def, rows_def = cka_by_layer(base, cand, [0, 1, 2], n_boot=100, seed=1)
    for name, mv in m_def.items():
        assert m_dev[name].value == pytest.approx(mv.value, abs=CKA_ATOL), name
    assert [r["layer"] for r in rows_dev] == [r["layer"] for r in rows_def]


def test_cka_device_path_runs_its_products_through_the_accelerator(monkeypatch) -> None:
    """Not vacuous: with a device every product goes through core.accel.matmul."""
    import reportgen.core.accel as accel

    calls: list[str] = []
    real = accel.matmul
    monkeypatch.setattr(accel, "matmul", lambda a, b, dev: calls.append(dev) or real(a, b, dev))
    base, cand = _layers(1)
    linear_cka(base[0], cand[0])
    assert calls == []
    linear_cka(base[0], cand[0], "cpu")
    assert calls == ["cpu"] * 3


def _topk_sae(d_in: int = 16, d_sae: int = 40, k: int = 5) -> SAE:
    g = torch.Generator().manual_seed(0)
    return SAE("topk", torch.randn(d_in, d_sae, generator=g) / 3,
               torch.randn(d_sae, d_in, generator=g), torch.randn(d_in, generator=g),
               b_enc=torch.randn(d_sae, generator=g) / 10, k=k)


@pytest.mark.parametrize("device", DEVICES)
def test_sae_encoding_on_a_device_matches_the_default_path(device: str) -> None:
    sae = _topk_sae()
    acts = np.random.default_rng(2).normal(size=(300, 16)).astype(np.float32) * 4
    fit_dev: dict = {}
    fit_def: dict = {}
    on = _encode(sae, 1, acts, fit_dev, chunk=64, device=device)
    default = _encode(sae, 1, acts, fit_def, chunk=64)
    for key in default:
        np.testing.assert_allclose(on[key], default[key], rtol=SAE_RTOL, atol=SAE_RTOL,
                                   err_msg=key)
    assert fit_dev["l0"] == fit_def["l0"] == 5.0
    assert fit_dev["fvu"] == pytest.approx(fit_def["fvu"], rel=SAE_RTOL)
    assert sae.to("cpu") is sae and sae.device.type == "cpu"  # the original stays put
    moved = sae.to(device)
    assert moved.W_dec.device.type == device and moved.encode(acts).device.type == device


def _planted(n: int = 4096, d_in: int = 16, m: int = 32, k: int = 3) -> np.ndarray:
    rng = np.random.default_rng(0)
    atoms = rng.standard_normal((m, d_in))
    atoms /= np.linalg.norm(atoms, axis=1, keepdims=True)
    support = np.argsort(rng.random((n, m)), axis=1)[:, :k]
    codes = np.zeros((n, m))
    np.put_along_axis(codes, support, rng.uniform(0.5, 2.0, (n, k)), axis=1)
    return ((codes @ atoms + 0.01 * rng.standard_normal((n, d_in))) * 20).astype(np.float32)


def _fvu(sae: SAE, x: np.ndarray) -> float:
    x_hat = sae.reconstruct(x).double().numpy()
    return float(((x - x_hat) ** 2).sum() / ((x - x.mean(axis=0)) ** 2).sum())


@pytest.mark.parametrize("device", DEVICES)
def test_sae_training_on_a_device_fits_as_on_the_cpu(device: str, tmp_path: Path) -> None:
    """On the CPU the device path is the default path, weight for weight; on a GPU rounding
    (and atomic adds) change the trajectory, not the quality of the fit. The checkpoint
    written on the device resumes to the same weights."""
    x = _planted()
    default = train_topk_sae(x, 64, 3, seed=1, steps=120, batch_size=256)
    on = train_topk_sae(x, 64, 3, seed=1, steps=120, batch_size=256, device=device,
                        checkpoint_dir=tmp_path)
    assert on.W_enc.device.type == "cpu"  # exported to the CPU whatever it trained on
    assert _fvu(on, x) == pytest.approx(_fvu(default, x), abs=TRAIN_FVU_ATOL)
    assert _fvu(default, x) < 0.3  # it learned (an untrained dictionary: about 1)
    if device == "cpu":
        for name in ("W_enc", "W_dec", "b_enc", "b_dec"):
            assert torch.equal(getattr(on, name), getattr(default, name)), name
    again = train_topk_sae(x, 64, 3, seed=1, steps=120, batch_size=256, device=device,
                           checkpoint_dir=tmp_path)  # finished checkpoint: resumed as is
    assert torch.equal(again.W_dec, on.W_dec)


def test_analysis_device_follows_the_models_placement(monkeypatch) -> None:
    from types import SimpleNamespace

    from reportgen.capture.loading import analysis_device
    from reportgen.spec.resolve import LoadOptions

    def placed(*devices: str) -> list:
        return [SimpleNamespace(options=LoadOptions(device=d)) for d in devices]

    assert analysis_device(placed("cpu", "cpu")) is None
    assert analysis_device(placed("cpu", "cuda")) == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert analysis_device(placed("auto", "cpu")) is None  # accelerate put it on the CPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert analysis_device(placed("auto", "cpu")) == "cuda"


def _audit_spec(tmp: Path, tiny_models: dict, device: str = "cpu", sae: bool = True) -> dict:
    from test_pipeline import _spec

    (tmp / "domain.txt").write_text("The cat sat on the mat.\nA loan is due next week.\n"
                                    "Birds fly south in winter.\nCash is kept in a vault.\n")
    spec = _spec(tmp, tiny_models["tiny-gpt2"], tiny_models["tiny-gpt2-ft"])
    spec["probes"]["domains"] = [{"name": "mixed", "texts": str(tmp / "domain.txt")}]
    spec["analysis"].update(umap=False, bootstrap=50,
                            neighborhoods={"k": 5, "tokens": "full-vocabulary"})
    if sae:
        spec["analysis"]["sae"] = [{"layer": 1, "train": {"d_sae": 48, "k": 4, "epochs": 2}}]
    spec["models"]["base"]["device"] = device
    spec["models"]["candidates"][0]["device"] = device
    return spec


def _assert_same_metrics(got, want, rel: float, abs_: float) -> None:
    for cand in ("ft", "int8"):
        for name, mv in want.comparison(cand)["metrics"].items():
            a, w = got.metric(cand, name), mv["value"]
            if w is None:
                assert a is None, (cand, name)
            else:
                assert math.isclose(a, w, rel_tol=rel, abs_tol=abs_), (cand, name, a, w)
    assert got.verdict == want.verdict


def test_the_audit_passes_its_analysis_device_to_every_heavy_step(
        tiny_models, tmp_path: Path, monkeypatch) -> None:
    """The device path on the CPU, end to end: forcing the analysis device to ``cpu`` sends
    k-NN, CKA and the SAE through the code a GPU runs, and the certificate's numbers stay
    within the stated tolerances of the default path."""
    import reportgen
    import reportgen.capture.loading as loading
    import reportgen.core.accel as accel
    from reportgen.families.neighbors import knn as search
    from reportgen.sae import train as sae_train

    default = reportgen.audit(_audit_spec(tmp_path, tiny_models), progress=False)
    seen: dict[str, list] = {"knn": [], "matmul": [], "train": []}
    real_knn, real_mm, real_train = search.knn, accel.matmul, sae_train.train_topk_sae
    monkeypatch.setattr(loading, "analysis_device", lambda models: "cpu")
    monkeypatch.setattr(search, "knn", lambda *a, device=None, **kw: (
        seen["knn"].append(device), real_knn(*a, device=device, **kw))[1])
    monkeypatch.setattr(accel, "matmul", lambda a, b, device: (
        seen["matmul"].append(device), real_mm(a, b, device))[1])
    monkeypatch.setattr(sae_train, "train_topk_sae", lambda *a, device=None, **kw: (
        seen["train"].append(device), real_train(*a, device=device, **kw))[1])
    forced = reportgen.audit(_audit_spec(tmp_path, tiny_models), progress=False)
    assert set(seen["knn"]) == set(seen["matmul"]) == set(seen["train"]) == {"cpu"}
    _assert_same_metrics(forced, default, rel=1e-4, abs_=1e-5)


@pytest.mark.gpu
def test_an_audit_on_cuda_matches_the_same_audit_on_the_cpu(tiny_models, tmp_path) -> None:
    """Models and analysis on the GPU (float32): the certificate's numbers within 1e-3
    relative (1e-4 absolute) of the CPU's: forward passes and products round differently."""
    import reportgen

    cpu = reportgen.audit(_audit_spec(tmp_path, tiny_models, sae=False), progress=False)
    gpu = reportgen.audit(_audit_spec(tmp_path, tiny_models, "cuda", sae=False),
                          progress=False)
    _assert_same_metrics(gpu, cpu, rel=1e-3, abs_=1e-4)
