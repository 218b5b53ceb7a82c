"""Peak memory and time of the probabilities capture at a 50k vocabulary, from one run.

A randomly initialised GPT-2 (50,257 tokens, 2 layers × 128) reads 20,000 positions through
the real ``probabilities`` collector, batch by batch as ``reportgen.capture.forward`` drives it (the
backbone's forward with hidden states, then the collector on the scored rows): the base
streams its final hidden states to a disk store (its LM head once), then a perturbed
candidate's pass reads the store back, applies both heads and keeps only the statistics
(issue 17; before it, the store held the base's log-probabilities, V floats per position).
Printed: peak RSS (VmHWM) of both captures next to the model's own size and one full
(positions × vocab) float32 matrix, and each capture's time next to a bare forward pass
of the model with its LM head over the same tokens (same batches, logits computed, nothing
kept). The bare pass runs last so its full-batch logits do not inflate the peak reported.

    .venv/bin/python benchmarks/bench_logprobs.py [--texts 40] [--length 500]
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a checkout without install
from reportgen.capture.forward import Extra  # noqa: E402
from reportgen.families.probabilities.collect import BLOCK_ROWS  # noqa: E402

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
    from bench_decoder import make_model as gpt2  # the one random-GPT-2 builder (same folder)

    return gpt2(VOCAB, 2, 128, 4, seed, noise)


def batches(n_texts: int, length: int, batch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    rng = np.random.default_rng(0)
    ids = torch.from_numpy(rng.integers(0, VOCAB, size=(n_texts, length)))
    return [(ids[s:s + batch], torch.ones_like(ids[s:s + batch]))
            for s in range(0, n_texts, batch)]


def model_bytes(model: torch.nn.Module) -> int:
    seen = {p.data_ptr(): p.numel() * p.element_size() for p in model.parameters()}
    return sum(seen.values())


class IdTokenizer:
    """Texts are token ids written out ("17 4 999"): the benchmark feeds random ids, so the
    collector's re-tokenization (alignment check, positions in context) is the identity."""

    all_special_ids: list[int] = []

    def __call__(self, text: str, **_: object) -> dict[str, list[int]]:
        return {"input_ids": [int(t) for t in text.split()]}

    def decode(self, ids: list[int], **_: object) -> str:
        return " ".join(str(i) for i in ids)


def run_capture(model: torch.nn.Module, data: list, collector: Any, workdir: Path) -> Extra:
    """What reportgen.capture.capture does per batch, minus pooling: backbone, collector."""
    from reportgen.capture.forward import Batch, backbone
    from reportgen.core.progress import Progress

    texts = [" ".join(str(int(t)) for t in row) for ids, _ in data for row in ids]
    workdir.mkdir(parents=True, exist_ok=True)
    collector.start(model, IdTokenizer(), texts, workdir)
    body, row = backbone(model), 0
    for ids, mask in data:
        out = body(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        collector.batch(Batch(list(range(row, row + len(ids))), ids, mask, out))
        row += len(ids)
    return collector.finish(Progress(False))


def collector_for(n_texts: int, length: int, base: Extra | None) -> Any:
    from reportgen.families.probabilities.collect import ProbabilityCollector

    settings = {"max_length": length, "batch_size": 4, "seed": 0, "masked_positions": 8,
                "top_positions": 20, "greedy_prompts": 0, "max_new_tokens": 1}
    return ProbabilityCollector("causal-lm", dict.fromkeys(range(n_texts), "bench"), settings,
                                [], base)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--texts", type=int, default=40)
    ap.add_argument("--length", type=int, default=500)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--dir", type=Path, default=None, help="where the store goes (default: tmp)")
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    data = batches(args.texts, args.length, args.batch)
    n_pos = args.texts * args.length
    rss_start = peak_rss_bytes()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        base = make_model(0)
        size = model_bytes(base)
        t0 = time.perf_counter()
        extra = run_capture(base, data, collector_for(args.texts, args.length, None),
                            Path(tmp) / "base")
        t_capture = time.perf_counter() - t0
        disk = extra.files["hidden"].stat().st_size
        del base
        gc.collect()
        cand = make_model(0, noise=0.05)
        t0 = time.perf_counter()
        res = run_capture(cand, data, collector_for(args.texts, args.length, extra),
                          Path(tmp) / "cand")
        t_compare = time.perf_counter() - t0
        peak = peak_rss_bytes()
        t0 = time.perf_counter()
        for ids, mask in data:  # the bare floor: the same tokens through the full model
            cand(input_ids=ids, attention_mask=mask).logits.sum()
        t_bare = time.perf_counter() - t0
    mb = 1 / 2**20
    print(f"positions {n_pos:,} × vocab {VOCAB:,}; store float32, "
          f"block {BLOCK_ROWS} rows; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print(f"model size (parameters)          {size * mb:10.1f} MiB")
    print(f"one full float32 matrix          {n_pos * VOCAB * 4 * mb:10.1f} MiB")
    print(f"store on disk                    {disk * mb:10.1f} MiB")
    print(f"peak RSS before models           {rss_start * mb:10.1f} MiB")
    print(f"peak RSS capture + compare       {peak * mb:10.1f} MiB")
    print(f"bare forward + LM head, same tokens {t_bare:7.2f} s")
    print(f"capture base (→ disk store)      {t_capture:10.2f} s   "
          f"({t_capture / t_bare:.2f}× the bare forward)")
    print(f"capture candidate (+ comparison) {t_compare:10.2f} s   "
          f"({t_compare / t_bare:.2f}× the bare forward)")
    kl, top1 = res.arrays["stat_kl_bc"], res.arrays["stat_top1"]
    print(f"check: {kl.size:,} positions; mean KL(base‖cand) {kl.mean():.4f}, "
          f"JS {res.arrays['stat_js'].mean():.4f}, top-1 agreement {top1.mean():.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
