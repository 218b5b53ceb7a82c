"""Exact k nearest neighbours by cosine, in chunks: never a full n × n similarity matrix, so a
whole vocabulary (tens of thousands of rows) is searched in bounded memory, on every core.
Ties are broken by index, so the same inputs give the same neighbours on any machine."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # imported when a search runs
    import torch

BLOCK_BYTES = 256 << 20  # similarity block budget when no chunk is given


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextmanager
def _all_cores() -> Iterator[None]:
    """Run torch on every core this process may use, then restore the caller's setting."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(usable_cores())
    try:
        yield
    finally:
        torch.set_num_threads(before)

def _normalised(x: np.ndarray) -> torch.Tensor:
    """Rows scaled to unit length in float32; a zero row stays zero (similarity 0 to all)."""
    import torch

    a = np.ascontiguousarray(x, dtype=np.float32)
    if a.ndim != 2:
        raise ValueError(f"expected a 2-D array (items, features), got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError("representations contain NaN or Inf")
    return torch.nn.functional.normalize(torch.from_numpy(a), dim=1)

def _topk_stable(block: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k per row, similarity descending, equal similarities by lower index first.

    ``torch.topk`` leaves the order of ties open (and differs between CPU and GPU), so rows
    where the k-th and (k+1)-th values tie are redone with a stable full sort, and the k
    winners are ordered by (−sim, index) on the CPU: ties break the same way on any device.
    """
    import torch

    vals, ids = torch.topk(block, k + 1, dim=1)
    tied = torch.nonzero(vals[:, k - 1] == vals[:, k]).flatten()
    if tied.numel():
        sv, si = torch.sort(block[tied], dim=1, descending=True, stable=True)
        vals[tied], ids[tied] = sv[:, : k + 1], si[:, : k + 1]
    v, i = vals[:, :k].cpu().numpy(), ids[:, :k].cpu().numpy()
    order = np.lexsort((i, -v), axis=1)
    return np.take_along_axis(i, order, 1), np.take_along_axis(v, order, 1)

def auto_chunk(n: int) -> int:
    """Query rows per block so a block of n float32 similarities stays near 256 MiB
    (2,199 rows for BERT's 30,522 tokens, 524 for a 128k vocabulary)."""
    return max(64, BLOCK_BYTES // (4 * max(n, 1)))

def _check_k(k: int, n: int) -> None:
    if not 1 <= k <= n - 1:
        raise ValueError(f"k must be between 1 and n − 1 = {n - 1} (self is excluded), got {k}")

def knn(
    x: np.ndarray, k: int, chunk: int | None = None, rows: np.ndarray | None = None,
    device: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine k-NN of each row among all rows of ``x``, self excluded.

    Blocks of ``chunk`` query rows are multiplied against all n rows (``torch.mm`` on float32
    unit rows), so memory peaks at chunk × n similarities, never n × n. ``rows`` restricts the
    queries (e.g. the top-moving tokens); neighbours are still searched among all rows.
    Returns indices (m, k) int64 and similarities (m, k) float32, best first, ties broken by
    the lower index. ``chunk=None`` sizes blocks by :func:`auto_chunk` (≈256 MiB).
    ``device`` (``"cuda"``): the rows and blocks live there, products in float32 with float32
    accumulation (:func:`reportgen.core.accel.exact_float32`); None is the CPU.
    """
    n = x.shape[0]
    _check_k(k, n)
    chunk = auto_chunk(n) if chunk is None else chunk
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1, got {chunk}")
    import torch

    from reportgen.core.accel import exact_float32

    dev = torch.device(device or "cpu")
    xn = _normalised(x).to(dev)
    queries = np.arange(n, dtype=np.int64) if rows is None else np.asarray(rows, np.int64)
    on_dev = torch.from_numpy(queries).to(dev)
    idx = np.empty((len(queries), k), dtype=np.int64)
    sim = np.empty((len(queries), k), dtype=np.float32)
    from reportgen.core.progress import current

    with _all_cores(), torch.inference_mode(), exact_float32(), current().counter(
            f"k-NN over {n:,} rows", -(-len(queries) // chunk), quiet_under=2.0) as advance:
        buf = torch.empty((min(chunk, len(queries)), n), dtype=torch.float32, device=dev)
        for s in range(0, len(queries), chunk):
            q = on_dev[s : s + chunk]
            lhs = xn[s : s + len(q)] if rows is None else xn[q]
            block = torch.mm(lhs, xn.T, out=buf[: len(q)])
            block[torch.arange(len(q), device=dev), q] = -torch.inf
            idx[s : s + len(q)], sim[s : s + len(q)] = _topk_stable(block, k)
            advance(1)  # after the chunk: the counter and its ETA count work done
    return idx, sim

def shared_counts(a_idx: np.ndarray, b_idx: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """|A_i ∩ B_i| per row, rows being sets of indices (no repeats within a row)."""
    a, b = np.asarray(a_idx), np.asarray(b_idx)
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"row counts differ: {a.shape[0]} vs {b.shape[0]}")
    out = np.empty(a.shape[0], dtype=np.int64)
    for s in range(0, a.shape[0], chunk):
        eq = a[s : s + chunk, :, None] == b[s : s + chunk, None, :]
        out[s : s + chunk] = eq.any(axis=2).sum(axis=1)
    return out

def jaccard_rows(a_idx: np.ndarray, b_idx: np.ndarray) -> np.ndarray:
    """Per-row Jaccard |A ∩ B| / |A ∪ B| of two neighbour sets (rows hold distinct indices)."""
    shared = shared_counts(a_idx, b_idx)
    return shared / (a_idx.shape[1] + b_idx.shape[1] - shared)
