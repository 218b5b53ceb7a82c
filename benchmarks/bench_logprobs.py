"""Peak memory and time of streaming log-probability capture at a 50k vocabulary.

A randomly initialised GPT-2 (50,257 tokens, small width) reads 20,000 positions. The base
model's per-position log-probabilities stream to a disk store; a perturbed candidate is then
run and compared block by block (KL, JS, entropy, top-1, logit shift, mass moved). Printed:
peak RSS of that whole path (VmHWM) next to the model's own size and the size of one full
(positions × vocab) float32 matrix, and the capture time next to a bare forward pass over the
same tokens (same batches, logits computed, nothing kept). All from one run; the bare pass
runs last so its full-batch logits do not inflate the peak that is reported.

    .venv/bin/python benchmarks/bench_logprobs.py [--texts 40] [--length 500] [--dtype float32]
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a checkout without install
from reportgen.logprobs import (  # noqa: E402
    LogProbReader,
    LogProbWriter,
    model_logprob_blocks,
    paired_blocks,
)
from reportgen.metrics.probabilities import ShiftAccumulator  # noqa: E402

VOCAB = 50_257


def peak_rss_bytes() -> int:
    """High-water mark of resident memory (psutil when present, else /proc VmHWM)."""
    try:
        import psutil

        info = psutil.Process().memory_full_info()
        return int(getattr(info, "peak_wset", 0) or _vmhwm())
    except ImportError:
        return _vmhwm()


def _vmhwm() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def make_model(seed: int, noise: float = 0.0) -> torch.nn.Module:
    """GPT-2 with a 50k vocabulary, 2 layers × 128; ``noise`` perturbs every weight."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=VOCAB, n_layer=2, n_embd=128, n_head=4, n_positions=512)
    model = GPT2LMHeadModel(cfg).eval()
    if noise:
        gen = torch.Generator().manual_seed(seed + 1)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn(p.shape, generator=gen) * noise * p.std().clamp_min(1e-3))
    return model


def batches(n_texts: int, length: int, batch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    rng = np.random.default_rng(0)
    ids = torch.from_numpy(rng.integers(0, VOCAB, size=(n_texts, length)))
    return [(ids[s:s + batch], torch.ones_like(ids[s:s + batch]))
            for s in range(0, n_texts, batch)]


def model_bytes(model: torch.nn.Module) -> int:
    seen = {p.data_ptr(): p.numel() * p.element_size() for p in model.parameters()}
    return sum(seen.values())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--texts", type=int, default=40)
    ap.add_argument("--length", type=int, default=500)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--block-rows", type=int, default=256)
    ap.add_argument("--dtype", choices=("float32", "float16"), default="float32")
    ap.add_argument("--dir", type=Path, default=None, help="where the store goes (default: tmp)")
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    data = batches(args.texts, args.length, args.batch)
    n_pos = args.texts * args.length
    rss_start = peak_rss_bytes()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        store = Path(tmp) / "base.logprobs"
        base = make_model(0)
        size = model_bytes(base)
        t0 = time.perf_counter()
        with LogProbWriter(store, VOCAB, dtype=np.dtype(args.dtype)) as w:
            for block in model_logprob_blocks(base, data, args.block_rows):
                w.append(block)
        t_capture = time.perf_counter() - t0
        del base
        gc.collect()
        cand = make_model(0, noise=0.05)
        t0 = time.perf_counter()
        acc = ShiftAccumulator(VOCAB, top_n=20)
        for b, c in paired_blocks(LogProbReader(store),
                                  model_logprob_blocks(cand, data, args.block_rows)):
            acc.update(b, c, "bench")
        res = acc.result()
        t_compare = time.perf_counter() - t0
        disk = store.stat().st_size
        peak = peak_rss_bytes()
        t0 = time.perf_counter()
        for ids, mask in data:  # the bare floor: the same tokens through the full model
            cand(input_ids=ids, attention_mask=mask).logits.sum()
        t_bare = time.perf_counter() - t0
    mb = 1 / 2**20
    print(f"positions {n_pos:,} × vocab {VOCAB:,}; store dtype {args.dtype}, "
          f"block {args.block_rows} rows; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print(f"model size (parameters)          {size * mb:10.1f} MiB")
    print(f"one full float32 matrix          {n_pos * VOCAB * 4 * mb:10.1f} MiB")
    print(f"store on disk                    {disk * mb:10.1f} MiB")
    print(f"peak RSS before models           {rss_start * mb:10.1f} MiB")
    print(f"peak RSS capture + compare       {peak * mb:10.1f} MiB")
    print(f"capture (base → disk)            {t_capture:10.2f} s")
    print(f"bare forward pass, same tokens   {t_bare:10.2f} s   "
          f"(capture / bare = {t_capture / t_bare:.2f}×)")
    print(f"compare (candidate pass + stats) {t_compare:10.2f} s")
    st = res.stats
    print(f"check: {res.n_positions:,} positions; mean KL(base‖cand) {st['kl_bc'].mean():.4f}, "
          f"JS {st['js'].mean():.4f}, top-1 agreement {st['top1'].mean():.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
