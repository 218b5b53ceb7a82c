"""Real PEFT adapters over the tiny models, each with the merged copy PEFT itself saves.

Every trainable tensor of the adapter (LoRA A and B, LoRA biases, modules_to_save copies) is
moved by seeded noise, so every part of it changes the model; the merged copy is
``merge_and_unload().save_pretrained`` of that same in-memory model, the independent
reference for everything computed from the adapter's files.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "vocab.json", "merges.txt", "vocab.txt")


def make_adapter(base: Path, model_cls: Any, config: Any, root: Path, seed: int = 0,
                 scale: float = 0.3) -> dict[str, Path]:
    """``{"adapter": DIR, "merged": DIR}`` for ``config`` (a peft config) over ``base``."""
    import peft

    model = model_cls.from_pretrained(base, dtype=torch.float32)
    pm = peft.get_peft_model(model, config)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in sorted(pm.named_parameters()):
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=gen) * scale)
    pm.save_pretrained(root / "adapter")
    pm.merge_and_unload().save_pretrained(root / "merged")
    for f in TOKENIZER_FILES:
        if (base / f).is_file():
            shutil.copy(base / f, root / "merged" / f)
    return {"adapter": root / "adapter", "merged": root / "merged"}
