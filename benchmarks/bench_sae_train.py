"""TopK SAE training throughput on CPU: tokens (activation rows) per second.

    python benchmarks/bench_sae_train.py            # d_in 384, d_sae 3072, k 32, 2 threads

Activations are synthetic (sums of k unit atoms from a Zipf-weighted dictionary, plus an
offset, at a residual-stream-like scale), since speed does not depend on where they came
from. The first steps (thread pools warming up) are left out of the rate.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reportgen.sae import TrainStatus, train_topk_sae  # noqa: E402


def synthetic(n: int, d_in: int, n_atoms: int, k: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    atoms = rng.standard_normal((n_atoms, d_in)).astype(np.float32)
    atoms /= np.linalg.norm(atoms, axis=1, keepdims=True)
    p = 1.0 / np.arange(1, n_atoms + 1) ** 0.7
    idx = rng.choice(n_atoms, size=(n, k), p=p / p.sum())
    vals = rng.exponential(1.0, (n, k)).astype(np.float32)
    x = np.zeros((n, d_in), np.float32)
    for j in range(k):
        x += vals[:, j : j + 1] * atoms[idx[:, j]]
    return (x + rng.standard_normal(d_in).astype(np.float32) * 3) * 20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--d-in", type=int, default=384)
    ap.add_argument("--d-sae", type=int, default=3072)
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=4096)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--n", type=int, default=200_000, help="activation rows to sample from")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    acts = synthetic(args.n, args.d_in, 2 * args.d_sae // 3, args.k // 2)
    warm, marks = 5, {}

    def mark(status: TrainStatus) -> None:
        marks[status.step] = (time.perf_counter(), status.fvu)

    t0 = time.perf_counter()
    train_topk_sae(acts, args.d_sae, args.k, seed=0, steps=args.steps,
                   batch_size=args.batch_size, progress=mark, log_every=warm)
    total = time.perf_counter() - t0
    (t_warm, _), (t_end, fvu) = marks[warm], marks[args.steps]
    rate = (args.steps - warm) * args.batch_size / (t_end - t_warm)
    per_epoch_1m = 1_000_000 / rate
    default_steps = max(1_000_000 // args.batch_size, 500)
    print(f"d_in {args.d_in}, d_sae {args.d_sae}, k {args.k}, batch {args.batch_size}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"throughput: {rate:,.0f} tokens/s  ({1e3 * args.batch_size / rate:.0f} ms/step; "
          f"whole call incl. setup {total:.1f}s for {args.steps} steps; batch FVU {fvu:.3f})")
    print(f"projected: one pass over 1M activations {per_epoch_1m:.0f}s; the default "
          f"schedule for 1M ({default_steps} steps) {default_steps * args.batch_size / rate:.0f}s")


if __name__ == "__main__":
    main()
