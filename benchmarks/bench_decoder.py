"""Cost of the probabilities capture for a GPT-2-small-shaped decoder, against issue 17's targets.

Run 1: a randomly initialised GPT-2 with GPT-2 small's shape (12 layers, d 768, 12 heads,
V 50,257) and a perturbed copy as the candidate read the same positions through the real
``probabilities`` collector, batch by batch as ``reportgen.capture.forward`` drives it. The
base's pass stores its final hidden states and its LM head; the candidate's pass applies
both heads and keeps the statistics. One model is in memory at a time. Printed against the
targets:

- capture of base + candidate / their bare forwards with LM heads (``model(...).logits``,
  same batches, nothing kept) ≤ 1.5;
- disk written per scored position (the hidden store plus every per-position array both
  captures keep) ≤ 8·d bytes; the base's head is written once per base (not per position)
  and is printed beside it;
- peak RSS (VmHWM, the whole process) ≤ largest model + one LM head + 2 GiB.

Run 2: a narrow model (2 layers × 128) at V 50,257 and at V 128,256: the bytes written per
position are the same at both vocabularies (they grow with d, not V).

    .venv/bin/python benchmarks/bench_decoder.py [--texts 8] [--length 256] [--skip-narrow]
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
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_logprobs import collector_for, model_bytes, peak_rss_bytes, run_capture  # noqa: E402

GIB = 2**30


def make_model(vocab: int, layers: int, width: int, heads: int, seed: int,
               noise: float = 0.0) -> torch.nn.Module:
    """A random GPT-2 of the given shape; ``noise`` perturbs every weight (the candidate)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=vocab, n_layer=layers, n_embd=width, n_head=heads,
                     n_positions=1024)
    model = GPT2LMHeadModel(cfg).eval()
    if noise:
        gen = torch.Generator().manual_seed(seed + 1)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn(p.shape, generator=gen) * noise * p.std().clamp_min(1e-3))
    return model


def batches(vocab: int, n_texts: int, length: int, batch: int) -> list[tuple[Any, Any]]:
    rng = np.random.default_rng(0)
    ids = torch.from_numpy(rng.integers(0, vocab, size=(n_texts, length)))
    return [(ids[s:s + batch], torch.ones_like(ids[s:s + batch]))
            for s in range(0, n_texts, batch)]


def bare(model: torch.nn.Module, data: list) -> float:
    """The floor: the same tokens through the whole model with its LM head, nothing kept."""
    t0 = time.perf_counter()
    for ids, mask in data:
        model(input_ids=ids, attention_mask=mask).logits.sum()
    return time.perf_counter() - t0


def per_position_bytes(extra: Any, n: int) -> int:
    """Bytes a capture writes that grow with the positions: the hidden store (and its
    header) and every array with a row per position. The head and the per-token vectors
    (V each) are written once, whatever the number of positions."""
    files = sum(p.stat().st_size for k, p in extra.files.items() if not k.startswith("head_"))
    return files + sum(a.nbytes for a in extra.arrays.values() if a.ndim and a.shape[0] == n)


def one_run(vocab: int, layers: int, width: int, heads: int, n_texts: int, length: int,
            batch: int, tmp: Path) -> dict[str, Any]:
    """Bare forwards and captures of base and candidate, one model in memory at a time."""
    data = batches(vocab, n_texts, length, batch)
    out: dict[str, Any] = {"positions": n_texts * length}
    base = make_model(vocab, layers, width, heads, 0)
    out["model_bytes"] = model_bytes(base)
    out["head_bytes"] = vocab * width * 4
    out["bare_base"] = bare(base, data)
    t0 = time.perf_counter()
    extra = run_capture(base, data, collector_for(n_texts, length, None), tmp / "base")
    out["cap_base"] = time.perf_counter() - t0
    out["head_file"] = sum(p.stat().st_size for k, p in extra.files.items()
                           if k.startswith("head_"))
    del base
    gc.collect()
    cand = make_model(vocab, layers, width, heads, 0, noise=0.05)
    t0 = time.perf_counter()
    res = run_capture(cand, data, collector_for(n_texts, length, extra), tmp / "cand")
    out["cap_cand"] = time.perf_counter() - t0
    out["bare_cand"] = bare(cand, data)
    del cand
    gc.collect()
    assert "unavailable" not in res.meta, res.meta.get("unavailable")
    out["disk"] = per_position_bytes(extra, n_texts * length) + per_position_bytes(
        res, n_texts * length)
    out["kl"] = float(res.arrays["stat_kl_bc"].mean())
    out["top1"] = float(res.arrays["stat_top1"].mean())
    return out


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report_main(r: dict[str, Any], width: int, vocab: int) -> None:
    n = r["positions"]
    bare_t, cap_t = r["bare_base"] + r["bare_cand"], r["cap_base"] + r["cap_cand"]
    ratio = cap_t / bare_t
    print(f"bare forwards with LM heads: base {r['bare_base']:.2f} s, candidate "
          f"{r['bare_cand']:.2f} s, total {bare_t:.2f} s")
    print(f"capture with probabilities: base {r['cap_base']:.2f} s, candidate "
          f"{r['cap_cand']:.2f} s, total {cap_t:.2f} s")
    print(f"ratio capture / bare = {ratio:.2f}x (target <= 1.5) {verdict(ratio <= 1.5)}")
    per = r["disk"] / n
    print(f"disk per scored position {per:,.0f} B (hidden store {4 * width} B + arrays) vs "
          f"8*d = {8 * width:,} B {verdict(per <= 8 * width)}; before: {4 * vocab:,} B "
          f"(V float32); base LM head once: {r['head_file'] / 2**20:.1f} MiB")
    peak = peak_rss_bytes()
    limit = r["model_bytes"] + r["head_bytes"] + 2 * GIB
    print(f"peak RSS {peak / GIB:.2f} GiB vs model {r['model_bytes'] / GIB:.2f} + head "
          f"{r['head_bytes'] / GIB:.2f} + 2 GiB = {limit / GIB:.2f} GiB "
          f"{verdict(peak <= limit)}")
    print(f"check: mean KL(base||cand) {r['kl']:.4f}, top-1 agreement {r['top1']:.3f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--texts", type=int, default=8)
    ap.add_argument("--length", type=int, default=256)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--skip-narrow", action="store_true", help="only the GPT-2-small run")
    ap.add_argument("--dir", type=Path, default=None, help="where the stores go (default: tmp)")
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{args.texts} texts x {args.length} tokens = {args.texts * args.length:,} positions")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        print("run 1: GPT-2-small shape (12 layers, d 768, V 50,257), random weights")
        r = one_run(50_257, 12, 768, 12, args.texts, args.length, args.batch, Path(tmp) / "s")
        report_main(r, 768, 50_257)
        if not args.skip_narrow:
            print("run 2: narrow model (2 layers, d 128), two vocabularies")
            for vocab in (50_257, 128_256):
                n = run_narrow(vocab, args, Path(tmp) / f"n{vocab}")
                print(f"  V {vocab:>7,}: disk per scored position {n['disk'] / n['positions']:,.0f}"
                      f" B (8*d = {8 * 128:,} B; before: {4 * vocab:,} B); base LM head once "
                      f"{n['head_file'] / 2**20:.1f} MiB; capture / bare "
                      f"{(n['cap_base'] + n['cap_cand']) / (n['bare_base'] + n['bare_cand']):.2f}x")
    return 0


def run_narrow(vocab: int, args: Any, tmp: Path) -> dict[str, Any]:
    return one_run(vocab, 2, 128, 4, args.texts, args.length, args.batch, tmp)


if __name__ == "__main__":
    raise SystemExit(main())
