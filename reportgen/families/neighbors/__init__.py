"""Neighbourhood rewiring: each concept's and token's k nearest neighbours, base against
candidate."""

from __future__ import annotations

from reportgen.core.family import Family, headline, lazy
from reportgen.families.neighbors import metrics as _metrics  # noqa: F401  (metric names)

FAMILY = Family(
    name="neighbors",
    title="Neighbourhoods",
    intro=("A concept can keep its vector nearly in place and still change what it sits next to. "
           "Each concept's k nearest concepts (cosine, itself excluded) are found in the base and "
           "in each candidate separately; the Jaccard overlap of the two sets is 1 when the "
           "neighbourhood is unchanged and 0 when no neighbour was kept. The same is done for "
           "tokens of the input-embedding matrix."),
    tables=("neighbors_concepts", "rewired_concepts", "neighbors_categories",
            "neighbors_concepts_distribution", "rewired_tokens", "neighbors_tokens",
            "neighbors_tokens_distribution"),
    pair=lazy(f"{__name__}.pair", "analyse"),
    view=lazy(f"{__name__}.view", "view"),
    headline=headline("neighbors.concepts.jaccard.mean", "mean neighbour overlap"),
    keywords=("neighbour", "neighbor", "prompt template"),
    glossary=(("Neighbours (k-NN)", "The k items whose representations are most similar (cosine) "
               "to a given item in one model. A fine-tune can change an item's neighbours without "
               "moving it far."),
              ("Jaccard overlap", "The size of the intersection of two sets divided by the size "
               "of their union: 1 when a neighbour set is unchanged, 0 when no neighbour was "
               "kept.")),
)
