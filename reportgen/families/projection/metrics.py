"""One UMAP of every variant's concept representations, so all variants share one map.

UMAP (McInnes, Healy & Melville 2018) places points only relative to each other: two maps
fitted separately have unrelated axes, so "this concept moved across the map" would mean
nothing. Fitting once on all variants stacked puts every point in one coordinate system and
an arrow from a concept's base point to its candidate point shows how far it moved relative
to the other concepts. Seeded UMAP runs single-threaded and is deterministic.

umap compiles its numba kernels on first use (tens of seconds on a small CPU), and only one
of the kernels it uses is marked ``cache=True``. We point numba at a user cache folder before
umap is imported and switch on caching for umap's module-level kernels, so the compilation
is paid once per machine and library version, not once per audit.
"""

from __future__ import annotations

import os
import sys
from importlib import metadata
from pathlib import Path
from types import ModuleType

import numpy as np

from reportgen.core.stats import cosine_distance_rows


def numba_cache_dir() -> Path:
    """``$NUMBA_CACHE_DIR`` if the user set one, else a folder under ``~/.cache/reportgen``
    keyed by the numba and umap versions (numba does not notice a changed callee in another
    file, so an upgrade gets a fresh folder)."""
    env = os.environ.get("NUMBA_CACHE_DIR")
    if env:
        return Path(env)
    versions = "-".join(f"{p}-{_version(p)}" for p in ("numba", "umap-learn"))
    return Path("~/.cache/reportgen/numba").expanduser() / versions


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "none"


def configure_numba_cache() -> Path | None:
    """Set ``NUMBA_CACHE_DIR`` (unless set) before numba reads it; None if not writable.

    Numba reads the variable when it is imported; if something imported it earlier its
    configuration is reloaded so the folder still applies to kernels compiled from now on.
    """
    path = numba_cache_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    os.environ["NUMBA_CACHE_DIR"] = str(path)
    if "numba" in sys.modules:
        from numba.core import config

        config.reload_config()
    return path


def _enable_caching(modules: list[ModuleType]) -> int:
    """Turn on disk caching for the numba kernels defined at the top of ``modules``.

    ``Dispatcher.enable_caching`` is what ``@njit(cache=True)`` calls; doing it before the
    first call makes the compiled code land in (and later load from) the cache folder.
    """
    from numba.core.dispatcher import Dispatcher

    enabled = 0
    for mod in modules:
        for obj in list(vars(mod).values()):
            cache = getattr(obj, "_cache", None)
            if isinstance(obj, Dispatcher) and type(cache).__name__ == "NullCache":
                try:
                    obj.enable_caching()
                    enabled += 1
                except Exception:  # noqa: BLE001 (an uncachable kernel just compiles)
                    continue
    return enabled


def import_umap() -> ModuleType:
    """``umap``, imported with numba's cache configured and umap's kernels cacheable."""
    cached = configure_numba_cache() is not None
    import umap
    import umap.distances
    import umap.layouts
    import umap.spectral
    import umap.umap_
    import umap.utils

    if cached:
        _enable_caching([umap.umap_, umap.layouts, umap.utils, umap.distances, umap.spectral])
    return umap


def joint_umap(
    reps: dict[str, np.ndarray], seed: int, n_neighbors: int = 15, metric: str = "cosine",
) -> dict[str, np.ndarray]:
    """2-D coordinates per variant from ONE UMAP fitted on all variants' rows stacked.

    ``reps`` maps a variant name to its (n, d) representations of the same n items; the
    result maps each name to (n, 2) coordinates in the shared map. ``n_neighbors`` is capped
    at the number of points minus one.
    """
    if not reps:
        raise ValueError("no representations to project")
    shapes = {name: np.shape(x) for name, x in reps.items()}
    if len({s for s in shapes.values()}) != 1 or len(next(iter(shapes.values()))) != 2:
        raise ValueError(f"every variant needs the same (items, features) shape, got {shapes}")
    stacked = np.concatenate([np.asarray(x, np.float32) for x in reps.values()])
    if stacked.shape[0] < 4:
        raise ValueError(f"UMAP needs at least 4 points, got {stacked.shape[0]}")
    umap = import_umap()
    model = umap.UMAP(n_components=2, n_neighbors=min(n_neighbors, stacked.shape[0] - 1),
                      metric=metric, random_state=seed, n_jobs=1)
    import torch

    # numba's OpenMP layer sets the thread count of the OpenMP runtime torch shares (to every
    # core): put back what the caller chose, or later forward passes run on other threads
    from reportgen.core.progress import current

    threads = torch.get_num_threads()
    try:
        with current().stage(f"UMAP over {stacked.shape[0]:,} points"):
            xy = np.asarray(model.fit_transform(stacked), dtype=np.float64)
    finally:
        torch.set_num_threads(threads)
    n = next(iter(shapes.values()))[0]
    return {name: xy[i * n : (i + 1) * n] for i, name in enumerate(reps)}


def projection_rows(
    coords: dict[str, np.ndarray], reps: dict[str, np.ndarray], terms: list[str],
    categories: list[str], base: str = "base",
) -> list[dict]:
    """Table ``projection``: one row per concept per variant, with its drift from base
    (1 − cos in the original space, 0 for the base itself)."""
    rows = []
    for variant, xy in coords.items():
        drift = cosine_distance_rows(reps[base], reps[variant])
        rows += [{"term": t, "category": c, "variant": variant, "x": float(p[0]),
                  "y": float(p[1]), "drift": float(d)}
                 for t, c, p, d in zip(terms, categories, xy, drift, strict=True)]
    return rows


def concept_projection(
    reps: dict[str, np.ndarray], terms: list[str], categories: list[str], *, seed: int,
    base: str = "base", n_neighbors: int = 15,
) -> tuple[dict[str, np.ndarray], list[dict]]:
    """:func:`joint_umap` of the concepts (``base`` among ``reps``) and the ``projection``
    table."""
    if base not in reps:
        raise ValueError(f"the base variant {base!r} is not among {sorted(reps)}")
    coords = joint_umap(reps, seed, n_neighbors)
    return coords, projection_rows(coords, reps, terms, categories, base)
