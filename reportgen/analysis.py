"""Metrics for every (base, candidate) pair, from the captures alone (no model loaded)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .certificate import Comparison
from .metrics.concepts import ConceptDrift, concept_drift, concept_metrics
from .metrics.embeddings import align_vocabularies, embedding_metrics, token_drift


def _pair_drift(base, cand) -> tuple[ConceptDrift, np.ndarray, Any]:
    cd = concept_drift(base.last, cand.last, base.mean, cand.mean, base.layer_ids)
    align = align_vocabularies(base.vocab, cand.vocab)
    td = token_drift(base.embeddings, cand.embeddings, align)
    return cd, td, align


def compare_all(spec, models: list, caps: dict, probe) -> tuple[list[Comparison], list[str]]:
    """One Comparison per candidate; noise-floor ratios use the first noise-floor variant."""
    warnings: list[str] = []
    a = spec.analysis
    base = caps["base"]
    drifts = {m.name: _pair_drift(base, caps[m.name]) for m in models[1:]}
    floors = [m.name for m in models[1:] if m.role == "noise_floor"]
    if len(floors) > 1:
        warnings.append(f"Several noise-floor variants; ratios use the first, {floors[0]!r}.")
    floor = drifts[floors[0]] if floors else None
    comparisons = []
    for m in models[1:]:
        cd, td, align = drifts[m.name]
        own_floor = None if (floor is None or m.name == floors[0]) else floor
        cm, ctables = concept_metrics(
            cd, own_floor[0] if own_floor else None, probe.terms, probe.categories,
            n_boot=a.bootstrap, seed=a.seed)
        em, etables = embedding_metrics(
            td, own_floor[1] if own_floor else None, align, top=a.top_tokens,
            n_boot=a.bootstrap, seed=a.seed)
        if align.new_tokens:
            warnings.append(f"{m.name}: the tokenizer grew by {len(align.new_tokens)} tokens; "
                            "they are listed, not compared.")
        metrics = {**cm, **em}
        if floors and m.name == floors[0]:
            for name, mv in metrics.items():
                if name.endswith("noise_floor_ratio"):
                    mv.error = f"{m.name} is the noise floor itself"
        comparisons.append(Comparison("base", m.name, m.role, metrics, {**ctables, **etables}))
    return comparisons, warnings
