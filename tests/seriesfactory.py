"""A tiny training run: the base with seeded noise of growing scale, saved as Trainer does."""

from __future__ import annotations

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
