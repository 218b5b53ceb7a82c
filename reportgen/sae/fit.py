"""How well a dictionary fits activations: pure functions over arrays or tensors."""

from __future__ import annotations

import numpy as np
import torch

ArrayLike = torch.Tensor | np.ndarray


def _f64(a: ArrayLike) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().to(torch.float64).numpy()
    return np.asarray(a, dtype=np.float64)


def fvu(x: ArrayLike, x_hat: ArrayLike) -> float:
    """Fraction of variance unexplained: sum ||x - x_hat||^2 / sum ||x - mean(x)||^2.

    The mean is over rows, as in sparsify and SAELens. NaN when x has no variance (a fit
    cannot be judged against constant data).
    """
    x, x_hat = _f64(x), _f64(x_hat)
    if x.shape != x_hat.shape or x.ndim != 2:
        raise ValueError(f"expected two (n, d) arrays of one shape, got {x.shape}, {x_hat.shape}")
    total = float(((x - x.mean(axis=0)) ** 2).sum())
    residual = float(((x - x_hat) ** 2).sum())
    return residual / total if total > 0 else float("nan")


def l0(f: ArrayLike) -> float:
    """Mean number of non-zero features per row."""
    if isinstance(f, torch.Tensor):
        f = f.detach().cpu()
        return float((f != 0).sum(dim=-1).double().mean()) if f.shape[0] else float("nan")
    f = np.asarray(f)
    return float((f != 0).sum(axis=-1).mean()) if f.shape[0] else float("nan")
