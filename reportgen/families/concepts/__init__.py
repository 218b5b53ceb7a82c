"""Concept drift: a categorised vocabulary in a prompt template, per concept, category and layer."""

from __future__ import annotations

from reportgen.core.family import Family, headline, lazy
from reportgen.families.concepts import collapse as _collapse  # noqa: F401  (metric names)
from reportgen.families.concepts import metrics as _metrics  # noqa: F401  (metric names)

FAMILY = Family(
    name="concepts",
    title="Concept drift",
    intro=("Each concept term is placed in the probe template and run through the base "
           "model and each candidate. A concept's drift is the cosine distance 1 − cos between "
           "its two hidden states: 0 means unchanged, larger means it moved further."),
    tables=("concepts", "categories", "layers", "concept_layers"),
    collectors=(lazy(f"{__name__}.pieces", "factory"),),
    pair=lazy(f"{__name__}.pair", "analyse"),
    audit=lazy(f"{__name__}.pair", "analyse_audit"),
    view=lazy(f"{__name__}.view", "view"),
    headline=headline("concepts.cosine_distance.mean", "mean concept drift",
                      ratio="concepts.cosine_distance.noise_floor_ratio"),
    keywords=("concept", "prompt template"),
    limitations=lazy(f"{__name__}.pair", "limitations"),
    summary=lazy(f"{__name__}.view", "summary_clause"),
    floor_summary=lazy(f"{__name__}.view", "floor_clause"),
    glossary=(("Concept", "A word or short phrase from a categorised vocabulary (finance, "
               "medicine, …), placed in a prompt template and read by each model."),),
)
