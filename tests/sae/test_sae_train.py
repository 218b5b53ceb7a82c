"""TopK training: recovers a planted sparse dictionary, is deterministic, resumes exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from reportgen.sae import TrainStatus, load_sae, save_saelens, train_topk_sae
from reportgen.sae.train import CHECKPOINT_FILE, geometric_median


def planted(n: int = 8192, d_in: int = 32, m: int = 64, k: int = 4, seed: int = 0):
    """Rows that are sums of k of m unit atoms (magnitudes 0.5..2), plus noise and an offset."""
    rng = np.random.default_rng(seed)
    atoms = rng.standard_normal((m, d_in))
    atoms /= np.linalg.norm(atoms, axis=1, keepdims=True)
    support = np.argsort(rng.random((n, m)), axis=1)[:, :k]
    codes = np.zeros((n, m))
    np.put_along_axis(codes, support, rng.uniform(0.5, 2.0, (n, k)), axis=1)
    x = codes @ atoms + 0.01 * rng.standard_normal((n, d_in)) + rng.standard_normal(d_in)
    return (x * 30).astype(np.float32), atoms  # residual-stream-like scale


def test_recovers_a_planted_dictionary():
    x, atoms = planted()
    sae = train_topk_sae(x, 128, 4, seed=0, steps=300, batch_size=512)
    x_hat = sae.reconstruct(x).double().numpy()
    fvu = ((x - x_hat) ** 2).sum() / ((x - x.mean(axis=0)) ** 2).sum()
    assert fvu < 0.12
    best_cos = np.abs(atoms @ sae.W_dec.double().numpy().T).max(axis=1)
    assert (best_cos > 0.95).mean() >= 0.9
    assert ((sae.encode(x) != 0).sum(dim=1) <= 4).all()
    assert torch.allclose(sae.W_dec.norm(dim=1), torch.ones(128), atol=1e-5)
    assert (sae.architecture, sae.k, sae.normalize_activations, sae.d_in) == ("topk", 4, "none", 32)
    assert sae.meta["steps"] == 300 and sae.meta["final_batch_fvu"] < 0.15


def small_run(**kw):
    x, _ = planted(n=2048, d_in=16, m=32, k=3, seed=1)
    args = {"seed": 7, "steps": 40, "batch_size": 256, "dead_after_tokens": 512} | kw
    return train_topk_sae(x, 48, 3, **args)


def weights(sae) -> list[torch.Tensor]:
    return [sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec]


def test_same_seed_same_weights_other_seed_other_weights():
    a, b, c = small_run(), small_run(), small_run(seed=8)
    assert all(torch.equal(p, q) for p, q in zip(weights(a), weights(b), strict=True))
    assert not torch.equal(a.W_dec, c.W_dec)


class Killed(Exception):
    pass


def test_resume_after_a_kill_gives_the_uninterrupted_weights(tmp_path):
    reference = small_run()
    seen: list[TrainStatus] = []

    def kill_at_25(status: TrainStatus) -> None:
        seen.append(status)
        if status.step == 25:
            raise Killed

    with pytest.raises(Killed):
        small_run(checkpoint_dir=tmp_path, checkpoint_every=10, log_every=5, progress=kill_at_25)
    assert (tmp_path / CHECKPOINT_FILE).is_file()
    assert [s.step for s in seen] == [5, 10, 15, 20, 25]
    assert seen[-1].tokens == 25 * 256 and seen[-1].total_steps == 40

    resumed: list[TrainStatus] = []
    sae = small_run(checkpoint_dir=tmp_path, checkpoint_every=10, log_every=5,
                    progress=resumed.append)
    assert [s.step for s in resumed] == [25, 30, 35, 40]
    assert {s.resumed_from_step for s in resumed} == {20}
    assert any(s.dead_fraction > 0 for s in seen + resumed)  # AuxK state is resumed too
    assert all(torch.equal(p, q) for p, q in zip(weights(sae), weights(reference), strict=True))
    assert sae.meta == reference.meta

    # A finished run's checkpoint is its result: asking again trains nothing, and says so.
    again: list[TrainStatus] = []
    sae2 = small_run(checkpoint_dir=tmp_path, progress=again.append)
    assert [(s.step, s.resumed_from_step) for s in again] == [(40, 40)]
    assert torch.equal(sae2.W_dec, reference.W_dec)


def test_a_checkpoint_of_another_run_is_not_resumed(tmp_path):
    small_run(checkpoint_dir=tmp_path, steps=20)
    statuses: list[TrainStatus] = []
    sae = small_run(checkpoint_dir=tmp_path, seed=9, progress=statuses.append, log_every=40)
    assert [s.resumed_from_step for s in statuses] == [0]
    assert torch.equal(sae.W_dec, small_run(seed=9).W_dec)


def test_trained_sae_saves_as_saelens_and_loads_back(tmp_path):
    sae = small_run(steps=10)
    x, _ = planted(n=64, d_in=16, m=32, k=3, seed=2)
    save_saelens(sae, tmp_path / "l2", "blocks.2.hook_resid_post", 2, sae.meta)
    loaded = load_sae(tmp_path / "l2")
    assert torch.equal(loaded.encode(x), sae.encode(x))
    assert loaded.hook.layer == 2 and loaded.source == "saelens"


def test_bad_inputs_are_refused():
    x = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    with pytest.raises(ValueError, match="need 0 < k <= d_sae, got k=9, d_sae=8"):
        train_topk_sae(x, 8, 9, seed=0)
    with pytest.raises(ValueError, match="finite floating-point"):
        train_topk_sae(np.full((10, 4), np.nan, np.float32), 8, 2, seed=0)
    with pytest.raises(ValueError, match="all the same row"):
        train_topk_sae(np.ones((10, 4), np.float32), 8, 2, seed=0)
    with pytest.raises(ValueError, match="steps or epochs, not both"):
        train_topk_sae(np.eye(4, dtype=np.float32), 8, 2, seed=0, steps=3, epochs=1)
    with pytest.raises(ValueError, match=r"shape \(n, d_in\)"):
        train_topk_sae(np.zeros(10, np.float32), 8, 2, seed=0)


def test_geometric_median_minimises_summed_distance():
    rng = np.random.default_rng(0)
    pts = np.concatenate([rng.normal(size=(40, 3)), rng.normal(10, 1, size=(5, 3))])
    got = geometric_median(torch.from_numpy(pts)).numpy()
    ref = minimize(lambda m: np.linalg.norm(pts - m, axis=1).sum(), pts.mean(0),
                   method="Nelder-Mead", options={"xatol": 1e-9, "fatol": 1e-12,
                                                  "maxiter": 20000}).x
    np.testing.assert_allclose(got, ref, atol=1e-4)
