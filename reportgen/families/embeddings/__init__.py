"""Token-embedding drift over the whole vocabulary, tokens aligned by string."""

from __future__ import annotations

from reportgen.core.family import Family, headline, lazy
from reportgen.families.embeddings import metrics as _metrics  # noqa: F401  (metric names)

FAMILY = Family(
    name="embeddings",
    title="Token-embedding drift",
    intro=("Each token's row of the input-embedding matrix in the base model is compared with "
           "the same token's row in the candidate (tokens matched by their string). Drift is the "
           "cosine distance between the two rows."),
    tables=("tokens", "token_histogram", "new_tokens"),
    pair=lazy(f"{__name__}.pair", "analyse"),
    view=lazy(f"{__name__}.view", "view"),
    headline=headline("embeddings.cosine_distance.mean", "mean token drift",
                      ratio="embeddings.cosine_distance.noise_floor_ratio"),
    keywords=("token embedding", "embedding matrix", "tokenizer", "vocabular"),
    summary=lazy(f"{__name__}.view", "summary_clause"),
    floor_summary=lazy(f"{__name__}.view", "floor_clause"),
    glossary=(("Token", "A piece of text the model reads as one unit (a word, part of a word, or a "
               "symbol). '␣' marks a leading space."),
              ("Token embedding", "The vector a model looks up for each token before its first "
               "layer.")),
)
