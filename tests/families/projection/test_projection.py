"""Joint UMAP: one fit for all variants, deterministic given the seed; the projection table;
numba's cache folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import cosine

from reportgen.families.projection.metrics import concept_projection, joint_umap, numba_cache_dir


def variants(n: int = 60, d: int = 16) -> tuple[dict[str, np.ndarray], list[str], list[str]]:
    rng = np.random.default_rng(0)
    base = np.vstack([3 * rng.normal(size=d) + rng.normal(size=(n // 3, d)) for _ in range(3)])
    ft = base.copy()
    ft[:5] = base[-5:] + 0.1 * rng.normal(size=(5, d))  # five concepts moved to cluster 3
    noise = base + 0.01 * rng.normal(size=base.shape)
    return ({"base": base, "finetuned": ft, "base-int8": noise},
            [f"t{i}" for i in range(n)], [f"c{i // (n // 3)}" for i in range(n)])


@pytest.mark.slow  # the first run on a machine compiles umap's kernels (then cached)
def test_joint_umap_is_one_deterministic_map() -> None:
    reps, terms, cats = variants()
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a = joint_umap(reps, seed=3)
        assert torch.get_num_threads() == 1  # numba's OpenMP layer would leave it at all cores
    finally:
        torch.set_num_threads(threads)
    b = joint_umap(reps, seed=3)
    assert list(a) == list(reps)
    for name in reps:
        assert a[name].shape == (60, 2)
        np.testing.assert_array_equal(a[name], b[name])
    # one coordinate system: an unchanged concept lands near its base point, a moved one far
    spread = np.ptp(np.vstack(list(a.values())), axis=0).max()
    still = np.linalg.norm(a["base-int8"] - a["base"], axis=1)
    moved = np.linalg.norm(a["finetuned"][:5] - a["base"][:5], axis=1)
    assert np.median(still) < 0.1 * spread
    assert moved.min() > np.median(still)


@pytest.mark.slow
def test_projection_table_rows() -> None:
    reps, terms, cats = variants()
    coords, rows = concept_projection(reps, terms, cats, seed=0)
    assert len(rows) == 3 * 60
    first = rows[0]
    assert set(first) == {"term", "category", "variant", "x", "y", "drift"}
    by = {(r["variant"], r["term"]): r for r in rows}
    assert by[("base", "t7")]["drift"] == 0.0
    assert by[("finetuned", "t2")]["drift"] == pytest.approx(
        cosine(reps["base"][2], reps["finetuned"][2]))
    assert by[("finetuned", "t2")]["category"] == "c0"
    assert (by[("finetuned", "t2")]["x"], by[("finetuned", "t2")]["y"]) == tuple(
        coords["finetuned"][2])


def test_shapes_must_agree() -> None:
    with pytest.raises(ValueError, match="same \\(items, features\\) shape"):
        joint_umap({"base": np.ones((5, 3)), "ft": np.ones((6, 3))}, seed=0)
    with pytest.raises(ValueError, match="the base variant 'base' is not among \\['ft'\\]"):
        concept_projection({"ft": np.ones((5, 3))}, ["a"] * 5, ["c"] * 5, seed=0)


def test_numba_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    assert numba_cache_dir() == tmp_path
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    path = numba_cache_dir()
    assert path.parent == Path("~/.cache/reportgen/numba").expanduser()
    assert path.name.startswith("numba-") and "-umap-learn-" in path.name
