"""Sparse autoencoders: load SAELens / sparsify dictionaries, train TopK ones, save SAELens.

``load_sae(path)`` returns an :class:`SAE` whose ``encode(x)`` reproduces the source
library's encoder exactly; ``train_topk_sae`` fits a TopK SAE to activations and
``save_saelens`` writes it where SAELens (and ``load_sae``) can read it.

A library of its own: it imports only :mod:`reportgen.core`, and the audit's sparse-feature
family (:mod:`reportgen.families.sae`) is one of its users. Names load on first use, so
``reportgen.sae.files`` (the folder layout) is readable without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "fvu": "fit", "l0": "fit", "load_sae": "formats", "save_saelens": "formats",
    "ARCHITECTURES": "model", "NORMALIZATIONS": "model", "SAE": "model", "HookInfo": "model",
    "check_width": "model", "TrainStatus": "train", "train_topk_sae": "train",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
