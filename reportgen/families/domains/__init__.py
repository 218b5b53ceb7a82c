"""Domain probes: plain texts per field, mean-pooled, drift and CKA by layer."""

from __future__ import annotations

from reportgen.core.family import Family, lazy
from reportgen.families.domains import metrics as _metrics  # noqa: F401  (metric names)

FAMILY = Family(
    name="domains",
    title="Domain probes",
    intro=("Plain texts from one field each (finance, legal, medical, …) are read by both models; "
           "their hidden states are averaged over tokens. Per domain and layer: the mean cosine "
           "distance between base and candidate, and linear CKA over the domain's texts."),
    tables=("domains",),
    pair=lazy(f"{__name__}.pair", "analyse"),
    view=lazy(f"{__name__}.view", "view"),
    keywords=("domain",),
)
