"""Sparse autoencoders: load SAELens / sparsify dictionaries, train TopK ones, save SAELens.

``load_sae(path)`` returns an :class:`SAE` whose ``encode(x)`` reproduces the source
library's encoder exactly; ``train_topk_sae`` fits a TopK SAE to activations and
``save_saelens`` writes it where SAELens (and ``load_sae``) can read it.
"""

from __future__ import annotations

from reportgen.sae.fit import fvu, l0
from reportgen.sae.formats import load_sae, save_saelens
from reportgen.sae.model import ARCHITECTURES, NORMALIZATIONS, SAE, HookInfo, check_width
from reportgen.sae.train import TrainStatus, train_topk_sae

__all__ = [
    "ARCHITECTURES",
    "NORMALIZATIONS",
    "SAE",
    "HookInfo",
    "TrainStatus",
    "check_width",
    "fvu",
    "l0",
    "load_sae",
    "save_saelens",
    "train_topk_sae",
]
