"""Representation similarity: linear CKA (Kornblith et al. 2019) per layer."""

from __future__ import annotations

from reportgen.core.family import Family, headline, lazy
from reportgen.families.cka import metrics as _metrics  # noqa: F401  (metric names)

FAMILY = Family(
    name="cka",
    title="Layers: representation similarity",
    intro=("Linear CKA (Kornblith et al. 2019) compares the geometry of all concept "
           "representations at once, layer by layer: 1 means the same geometry up to rotation and "
           "scale. Read with the drift-by-layer chart of the concept section, it shows where in "
           "the network a fine-tune changed the space."),
    tables=("cka",),
    pair=lazy(f"{__name__}.pair", "analyse"),
    view=lazy(f"{__name__}.view", "view"),
    headline=headline("cka.concepts.min", "lowest CKA over layers"),
    keywords=("cka", "prompt template"),
    glossary=(("CKA", "Centered kernel alignment (linear; Kornblith et al. 2019): a similarity "
               "between two sets of representations of the same inputs, from 0 to 1, unchanged by "
               "rotation and scaling. 1 means the same geometry."),),
)
