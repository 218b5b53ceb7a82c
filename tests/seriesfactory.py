"""A tiny training run: the base with seeded noise of growing scale, saved as Trainer does;
and the spec the series tests audit it with (conftest's ``series_cert``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

#: step -> scale of the noise added to every weight (relative to the weight's std)
STEPS = {100: 0.01, 200: 0.05, 300: 0.2}


def perturbed(base: Path, out: Path, scale: float, seed: int = 7) -> Path:
    """``base`` with ``scale × std(W) × N(0, 1)`` added to each floating weight (seeded)."""
    import torch
    import transformers as tf

    model = tf.AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            noise = torch.randn(p.shape, generator=g)
            p.add_(scale * float(p.std() if p.numel() > 1 else 1.0) * noise)
    model.save_pretrained(out)
    for f in base.iterdir():  # tokenizer files as the Trainer saves them beside the weights
        if f.name.startswith(("tokenizer", "vocab", "merges", "special_tokens")):
            shutil.copy(f, out / f.name)
    return out


def build_series(base: Path, root: Path, steps: dict[int, float] | None = None) -> Path:
    """``root/out/checkpoint-STEP`` for each step; the run folder ``root/out``."""
    run = root / "out"
    for step, scale in (steps or STEPS).items():
        perturbed(base, run / f"checkpoint-{step}", scale)
    return run


METRIC = "concepts.cosine_distance.mean"
DOMAIN = ["The bank raised the price of every loan.", "A dog and a cat sat by the door.",
          "He paid cash for the hammer and the rope."]


def audit_spec(tmp: Path, base: Path, candidate: dict, checks: list | None = None) -> dict:
    """A spec auditing ``candidate`` against ``base`` beside an int8 noise floor; its probe
    files are written to ``tmp``."""
    (tmp / "vocab.yaml").write_text(json.dumps(
        {"animals": ["cat", "dog", "horse", "bird"], "money": ["bank", "loan", "cash", "price"]}))
    (tmp / "domain.txt").write_text("\n".join(DOMAIN) + "\n")
    return {
        "audit": {"name": "run", "release": "r1", "created": "2026-01-02T03:04:05Z"},
        "models": {"base": {"path": str(base)}, "candidates": [
            candidate, {"name": "int8", "derive": {"from": "base", "quantize": "int8"},
                        "role": "noise_floor"}]},
        "probes": {"concepts": {"vocabulary": str(tmp / "vocab.yaml")},
                   "domains": [{"name": "mixed", "texts": str(tmp / "domain.txt")}]},
        "analysis": {"batch_size": 8, "bootstrap": 20, "umap": False,
                     "sae": [{"layer": 1, "train": {"d_sae": 16, "k": 4, "epochs": 1}}],
                     "series": {"concepts": 3, "features": 2}},
        "checks": checks or [],
    }


CHECKS = [
    {"id": "every", "metric": METRIC, "candidate": "run", "warn_if": "> 0.001",
     "fail_if": "> 0.01"},
    {"id": "final", "metric": METRIC, "candidate": "run", "step": "final", "fail_if": "> 0.5"},
    {"id": "early", "metric": METRIC, "candidate": "run", "warn_if": "> 0.001",
     "fail_if_onset_before": 300},
    {"id": "late", "metric": METRIC, "candidate": "run", "warn_if": "> 0.001",
     "fail_if_onset_before": 200},
    {"id": "never", "metric": METRIC, "candidate": "run", "fail_if": "> 0.5",
     "warn_if_onset_before": 300},
    {"id": "calm", "metric": METRIC, "candidate": "run", "fail_if": "> 0.5"},
]
