"""The steps of benchmarks/gpu_check.sh: one short check of reportgen on a CUDA GPU.

    python3 benchmarks/gpu_check.py env             torch sees a CUDA GPU? (exit 3 if not)
    python3 benchmarks/gpu_check.py parity WORK     a small Llama-shaped model, the same audit
                                                    on the CPU and on cuda: numbers compared
    python3 benchmarks/gpu_check.py big WORK        a ~1B Llama-shaped random model on cuda in
                                                    bfloat16: the audit, its bare forwards,
                                                    the ratio, and the certificate's shape
                                                    against the small model's CPU audit

Each step prints its findings and appends a markdown section to ``$OUT/steps/<step>.md``
(gpu_check.sh joins them into ``$OUT/RESULTS-gpu.md``); exit 0 is PASS, anything else FAIL.
Models are random (no download: the GPU machine has no network) with a byte-level BPE
trained here on the built-in probe texts plus seeded random words, so the vocabulary is full.

``GPU_CHECK_DRY=1`` rehearses the steps without a GPU: "cuda" becomes the CPU and the big
model a small one (its numbers then say nothing about a GPU).
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import sys
import time
from pathlib import Path
from typing import Any

OUT = Path(os.environ.get("OUT", "/tmp/gpu_out"))
REPO = Path(__file__).resolve().parents[1]
SMALL = {"hidden_size": 256, "intermediate_size": 704, "num_hidden_layers": 4,
         "num_attention_heads": 8, "num_key_value_heads": 4, "vocab": 4096}
BIG = {"hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 16,
       "num_attention_heads": 16, "num_key_value_heads": 8, "vocab": 32000}
DRY = os.environ.get("GPU_CHECK_DRY") == "1"
CUDA = "cpu" if DRY else "cuda"
if DRY:
    BIG = {**SMALL, "hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 9,
           "vocab": 6000}
#: Parity of a cuda audit with the CPU's: forward passes and products round differently.
RTOL, ATOL = 1e-3, 1e-4
#: A dictionary trained on the GPU follows another trajectory: its metrics agree this loosely.
SAE_RTOL, SAE_ATOL = 0.05, 0.02
#: behavior.* are differences of two sums of continuation log-probabilities (tens of nats each):
#: float32 reductions that differ by ~1e-6 relative per token move them by ~1e-4 nats (the
#: first H200 run: int8 floor margin_change.mean 0.02932 on cuda, 0.02917 on the CPU).
BEHAVIOR_ATOL = 5e-4


def section(step: str, lines: list[str]) -> None:
    """Print ``lines`` and append them to this step's markdown section."""
    print("\n".join(lines), flush=True)
    folder = OUT / "steps"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{step}.md", "a", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")


def env() -> int:
    import platform

    import torch

    lines = [f"- python {platform.python_version()}, torch {torch.__version__} (CUDA build "
             f"{torch.version.cuda}), {os.cpu_count()} CPU cores"]
    if DRY:
        section("env", lines + ["- **dry run (GPU_CHECK_DRY=1): cuda is the CPU; these numbers "
                                "say nothing about a GPU**"])
        return 0
    if not torch.cuda.is_available():
        section("env", lines + [
            f"- **FAIL: torch {torch.__version__} sees no CUDA GPU** (a CPU-only build of torch, "
            "or no driver). Run gpu_check.sh with the GPU machine's python3 (PYTHON=...), not "
            "the repository's .venv, whose torch is a CPU build."])
        return 3
    p = torch.cuda.get_device_properties(0)
    versions = []
    for lib in ("transformers", "accelerate", "safetensors", "tokenizers", "numpy", "scipy",
                "pydantic", "altair"):
        try:
            versions.append(f"{lib} {__import__(lib).__version__}")
        except ImportError:
            versions.append(f"{lib} missing")
    section("env", lines + [
        f"- device: **{torch.cuda.get_device_name(0)}**, {p.total_memory / 2**30:.0f} GiB, "
        f"{torch.cuda.device_count()} GPU(s)", "- " + ", ".join(versions)])
    import reportgen  # noqa: F401 (fails here, clearly, when a dependency did not travel)

    return 0


def corpus(n_words: int = 60000, seed: int = 0) -> list[str]:
    """The built-in probe texts, then seeded random words (enough pairs for a full BPE)."""
    texts = [p.read_text(encoding="utf-8") for p in sorted((REPO / "specs").rglob("*.txt"))]
    texts.append((REPO / "specs/probes/concepts.yaml").read_text(encoding="utf-8"))
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 9)))
             for _ in range(n_words)]
    texts += [" ".join(words[i:i + 12]) for i in range(0, len(words), 12)]
    return texts


def build(root: Path, shape: dict[str, int], device: str, dtype: str) -> tuple[Path, Path]:
    """A random Llama-shaped base and a perturbed copy (the "fine-tune"), saved in ``dtype``."""
    import torch
    import transformers as tf
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    base, ft = root / "base", root / "ft"
    if (ft / "config.json").exists():
        return base, ft
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(corpus(), trainers.BpeTrainer(
        vocab_size=shape["vocab"], special_tokens=["</s>", "<s>"], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])])
    fast = tf.PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                      model_max_length=128,
                                      model_input_names=["input_ids", "attention_mask"])
    cfg = tf.LlamaConfig(vocab_size=len(fast), bos_token_id=1, eos_token_id=0,
                         max_position_embeddings=256, initializer_range=0.05,
                         **{k: v for k, v in shape.items() if k != "vocab"})
    torch.manual_seed(0)
    t_dtype = getattr(torch, dtype)
    with torch.device(device):
        model = tf.LlamaForCausalLM(cfg).to(t_dtype).eval()
    for folder in (base, ft):
        if folder is ft:  # a fine-tune: every weight nudged by 2 % of its spread
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(torch.randn_like(p) * (0.02 * float(p.float().std()) + 1e-4))
        model.save_pretrained(folder)
        fast.save_pretrained(folder)
    del model
    torch.cuda.empty_cache() if torch.cuda.is_available() else None
    return base, ft


def spec(work: Path, base: Path, ft: Path, device: str, dtype: str, sae_layer: int,
         d_sae: int, html: bool = False) -> dict[str, Any]:
    """The audit: every family but the UMAP projection (umap-learn does not travel); JSON,
    and HTML when asked and altair and vl-convert are there (no PDF: no Typst)."""
    fmts = ["json", "html"] if html and _have("altair") and _have("vl_convert") else ["json"]
    model = {"device": device, "dtype": dtype}
    return {
        "audit": {"name": f"gpu check ({device}, {dtype})", "release": "gpu-check",
                  "created": "2026-11-27T00:00:00Z"},
        "models": {"base": {"path": str(base), **model}, "candidates": [
            {"name": "ft", "path": str(ft), **model},
            {"name": "int8", "derive": {"from": "base", "quantize": "int8"},
             "role": "noise_floor"}]},
        "probes": {"concepts": {"vocabulary": "builtin:concepts",
                                "template": "The concept of {term} is"},
                   "domains": [{"name": "finance", "texts": "builtin:domains/finance"}],
                   "risk": [{"name": "fin", "prompts": "builtin:risk/financial_advice"}]},
        "analysis": {"max_length": 64, "batch_size": 16, "bootstrap": 200, "umap": False,
                     "neighborhoods": {"k": 10, "tokens": "full-vocabulary"},
                     "sae": [{"layer": sae_layer, "train": {"d_sae": d_sae, "k": 16,
                                                            "epochs": 2}}]},
        "checks": [{"id": "drift", "metric": "concepts.cosine_distance.mean",
                    "candidate": "ft", "fail_if": "> 0.9"}],
        "output": {"dir": str(work / f"out-{device}"), "formats": fmts},
    }


def _have(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def audit(s: dict[str, Any], cache: Path) -> tuple[Any, float]:
    """The audit of spec ``s`` with its own capture cache, written; (certificate, seconds)."""
    os.environ["REPORTGEN_CACHE"] = str(cache)
    import reportgen

    t0 = time.perf_counter()
    cert = reportgen.audit(s, out=s["output"]["dir"], progress=True)
    _sync()
    return cert, time.perf_counter() - t0


def metrics(cert: Any) -> dict[tuple[str, str], float | None]:
    doc = json.loads(cert.to_json())
    return {(c["candidate"], n): mv["value"] for c in doc["comparisons"]
            for n, mv in c["metrics"].items()}


def tolerance(metric: str) -> tuple[float, float]:
    """(rtol, atol) for one metric's cuda-against-CPU comparison."""
    if metric.startswith("sae."):
        return SAE_RTOL, SAE_ATOL
    return (RTOL, BEHAVIOR_ATOL) if metric.startswith("behavior.") else (RTOL, ATOL)


def compare(gpu: dict, cpu: dict) -> tuple[list[str], list[tuple[float, str]]]:
    """(problems, deviations sorted worst first) of the cuda metrics against the CPU's."""
    problems, devs = [], []
    for key in sorted(set(gpu) | set(cpu)):
        g, c = gpu.get(key), cpu.get(key)
        name = f"{key[0]}:{key[1]}"
        if (g is None) != (c is None):
            problems.append(f"{name}: cuda {g} vs cpu {c}")
            continue
        if g is None:
            continue
        rtol, atol = tolerance(key[1])
        dev = abs(g - c)
        devs.append((dev / (atol + rtol * abs(c)), f"{name}: cuda {g:.6g} cpu {c:.6g}"))
        if not math.isclose(g, c, rel_tol=rtol, abs_tol=atol):
            problems.append(f"{name}: cuda {g:.6g} vs cpu {c:.6g}")
    return problems, sorted(devs, reverse=True)


def parity(work: Path) -> int:
    """The same small audit on the CPU and on cuda (float32): every number within tolerance."""
    base, ft = build(work / "small", SMALL, "cpu", "float32")
    small = work / "small-cpu-metrics.json"  # the big step compares its shape with this
    small.unlink(missing_ok=True)
    cpu, t_cpu = audit(spec(work, base, ft, "cpu", "float32", 2, 512), work / "cache-cpu")
    small.write_text(json.dumps({f"{c}:{n}": v for (c, n), v in metrics(cpu).items()}))
    gpu, t_gpu = audit(spec(work, base, ft, CUDA, "float32", 2, 512), work / "cache-gpu")
    problems, devs = compare(metrics(gpu), metrics(cpu))
    same_verdict = gpu.verdict == cpu.verdict
    ok = not problems and same_verdict
    lines = [f"- small Llama (d {SMALL['hidden_size']}, {SMALL['num_hidden_layers']} layers, "
             f"V {SMALL['vocab']}), float32, the same spec on cpu and cuda: audit "
             f"{t_cpu:.1f} s on the CPU, {t_gpu:.1f} s on cuda; {len(devs)} numbers compared "
             f"(rtol {RTOL}, atol {ATOL}; behavior.* atol {BEHAVIOR_ATOL} nats; sae.* rtol "
             f"{SAE_RTOL}, atol {SAE_ATOL}: its "
             f"dictionary is trained on each device); verdict cpu {cpu.verdict}, "
             f"cuda {gpu.verdict}: **{'PASS' if ok else 'FAIL'}**",
             "- largest deviations (in units of the tolerance): "
             + "; ".join(f"{r:.2f} ({what})" for r, what in devs[:4])]
    lines += [f"  - out of tolerance: {p}" for p in problems[:15]]
    section("parity", lines)
    return 0 if ok else 1


def bare_forwards(s: dict[str, Any], models: list[Path]) -> list[float]:
    """Seconds of one plain forward (LM head included) per model over the audit's texts,
    batched and truncated as the audit does: the floor the audit's cost is measured against."""
    import torch
    import transformers as tf

    from reportgen.spec.load import load_spec
    from reportgen.spec.probeset import build_probes

    texts = build_probes(load_spec(s, models=True)).all_texts
    a = s["analysis"]
    out = []
    for folder in models:
        model = tf.AutoModelForCausalLM.from_pretrained(
            folder, dtype=torch.bfloat16, device_map={"": CUDA}).eval()
        tok = tf.AutoTokenizer.from_pretrained(folder)
        tok.pad_token = tok.pad_token or tok.eos_token
        _sync()
        t0 = time.perf_counter()
        with torch.inference_mode():
            for i in range(0, len(texts), a["batch_size"]):
                b = tok(texts[i:i + a["batch_size"]], padding=True, truncation=True,
                        max_length=a["max_length"], return_tensors="pt").to(CUDA)
                model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]
                      ).logits.float().log_softmax(-1)
        _sync()
        out.append(time.perf_counter() - t0)
        del model
        if not DRY:
            torch.cuda.empty_cache()
    return out


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def shape_of(values: dict[str, float | None]) -> set[tuple[str, bool]]:
    """Metric names with layer and block numbers blanked, and whether each has a value."""
    return {(re.sub(r"(layer|block)\.\d+", r"\1.N", k), v is not None)
            for k, v in values.items()}


def big(work: Path) -> int:
    import torch

    t0 = time.perf_counter()
    base, ft = build(work / "big", BIG, CUDA, "bfloat16")
    n_params = _parameters(base)
    t_build = time.perf_counter() - t0
    s = spec(work, base, ft, CUDA, "bfloat16", 8, 512 if DRY else 4096, html=True)
    cert, t_audit = audit(s, work / "cache-big")
    peak = torch.cuda.max_memory_allocated() / 2**30 if not DRY else 0.0
    fwd = bare_forwards(s, [base, ft])
    floor = sum(fwd) + fwd[0]  # the int8 floor is a third forward of the base's shape
    ratio = t_audit / floor
    small_path = work / "small-cpu-metrics.json"
    lines = [f"- ~1B Llama (d {BIG['hidden_size']}, {BIG['num_hidden_layers']} layers, "
             f"V {BIG['vocab']}, {n_params / 1e9:.2f} B parameters), bfloat16 on cuda, built "
             f"in {t_build:.0f} s; audit (base, ft, int8 floor; full-vocabulary k-NN, CKA, "
             f"SAE trained on layer 8, weights, probabilities) {t_audit:.1f} s, verdict "
             f"{cert.verdict}, peak GPU memory {peak:.1f} GiB; wrote "
             f"{' + '.join(s['output']['formats'])}",
             f"- bare forwards with LM head over the same texts: "
             f"{', '.join(f'{t:.2f} s' for t in fwd)} (+ the floor's, counted as the base's)"
             f" = {floor:.2f} s; audit / bare forwards = **{ratio:.1f}x** (first run: "
             "includes hashing, loading each model, SAE training and the analysis)"]
    ok = True
    if small_path.exists():
        small = json.loads(small_path.read_text())
        got = {f"{c}:{n}": v for (c, n), v in metrics(cert).items()}
        missing = sorted(shape_of(small) - shape_of(got))
        extra = sorted(shape_of(got) - shape_of(small))
        ok = not missing and not extra
        lines.append(f"- certificate shape against the small model's CPU audit (metric names, "
                     f"layers blanked, and which have values): "
                     f"**{'PASS: the same' if ok else 'FAIL'}**")
        lines += [f"  - only on the CPU: {m}" for m in missing[:10]]
        lines += [f"  - only on cuda: {m}" for m in extra[:10]]
    else:
        lines.append("- certificate shape: not compared (the parity step wrote no CPU audit)")
    section("big", lines)
    return 0 if ok else 1


def _parameters(folder: Path) -> int:
    """Parameters stored in the checkpoint's safetensors files (shapes only, nothing read)."""
    from safetensors import safe_open

    n = 0
    for f in sorted(folder.glob("*.safetensors")):
        with safe_open(str(f), framework="pt") as h:
            n += sum(math.prod(h.get_slice(k).get_shape()) for k in h.keys())  # noqa: SIM118
    return n


def main(argv: list[str]) -> int:
    step = argv[0] if argv else ""
    if step == "env":
        return env()
    if step in ("parity", "big") and len(argv) == 2:
        work = Path(argv[1])
        work.mkdir(parents=True, exist_ok=True)
        return parity(work) if step == "parity" else big(work)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
