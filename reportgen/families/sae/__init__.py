"""Sparse features: one dictionary fixed on the base (SAELens/sparsify folder or trained here)
encodes every model's residual stream; fit, overlap, moved and risky features. The dictionary
code itself is the library :mod:`reportgen.sae`."""

from __future__ import annotations

from reportgen.core.family import Family, Headline, lazy
from reportgen.families.sae import metrics as _metrics  # noqa: F401  (metric names)

#: Folder beside the views that holds the SAE dictionaries the audit trained.
TRAINED_SAE = "trained-sae"


def _headline(comp: dict) -> Headline | None:
    """Feature-set overlap at the first SAE layer (1: the same features fire)."""
    names = sorted((n for n in comp.get("metrics") or {}
                    if n.startswith("sae.layer.") and n.endswith(".jaccard.mean")),
                   key=lambda n: int(n.split(".")[2]) if n.split(".")[2].isdigit() else 0)
    if not names:
        return None
    return Headline(names[0], f"feature overlap at layer {names[0].split('.')[2]}")


FAMILY = Family(
    name="sae",
    title="Sparse features (SAE)",
    intro=("One sparse autoencoder fixed on the base model encodes both models' activations, "
           "token by token. Dense cosine can stay near 1 while the features behind it change; "
           "the tables put the two side by side, name the features that moved most by their "
           "top-activating tokens, and flag features selective for risk prompts whose "
           "activation rose. If the dictionary fits the candidate much worse than the base, "
           "the findings are marked low-confidence in the warnings."),
    tables=("sae_fit", "sae_dense_sparse", "sae_moved", "sae_heatmap", "sae_risky"),
    collectors=(lazy(f"{__name__}.collect", "factory"),),
    pair=lazy(f"{__name__}.pair", "sae_pair"),
    view=lazy(f"{__name__}.view", "view"),
    headline=_headline,
    keywords=("sparse",),
    limitations=lazy(f"{__name__}.pair", "limitations"),
    summary=lazy(f"{__name__}.view", "summary_parts"),
    glossary=(
        ("SAE", "Sparse autoencoder: a dictionary learned on one model's activations that "
         "writes each activation as a few active features. Fixed on the base model, it is "
         "used to read both models."),
        ("Feature", "One direction of an SAE dictionary, often interpretable (labelled by the "
         "tokens and contexts that activate it most)."),
        ("Fraction of variance unexplained", "How much of an activation an SAE fails to "
         "reconstruct (0 is perfect). If it rises on the candidate, the base dictionary no "
         "longer fits it well and SAE results should be read with care."),
        ("L0", "The number of SAE features active for one token, on average."),
    ),
)
