"""The token alignment and per-token drift of one model against the base, made once per audit
and shared by the embedding and neighbourhood families."""

from __future__ import annotations

from typing import Any

import numpy as np

from reportgen.core.family import PairContext
from reportgen.families.embeddings.metrics import Alignment, align_vocabularies, token_drift


def drift_of(ctx: PairContext, cap: Any, name: str) -> tuple[Alignment, np.ndarray]:
    """(the tokens ``name`` shares with the base, aligned by string; their cosine drift)."""

    def make() -> tuple[Alignment, np.ndarray]:
        align = align_vocabularies(ctx.base.vocab, cap.vocab)
        return align, token_drift(ctx.base.embeddings, cap.embeddings, align)

    return ctx.memo(("embeddings.drift", name), make)
