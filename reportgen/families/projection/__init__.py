"""The joint projection: one UMAP of every variant's concept states, arrows from the base.

The proof that the family protocol is enough: this folder and its line in
``reportgen.families.ORDER`` are everything the projection needs; nothing outside names it.
"""

from __future__ import annotations

from reportgen.core.family import Family, lazy

FAMILY = Family(
    name="projection",
    title="Joint projection (UMAP)",
    intro=("One UMAP is fitted on every variant's last-layer concept states together, so all "
           "share one map; a line joins each concept's base point to its point in a candidate. "
           "UMAP keeps near points near but distorts distances: read neighbourhoods, not "
           "lengths, and the tables for exact numbers."),
    audit=lazy(f"{__name__}.pair", "analyse_audit"),
    view=lazy(f"{__name__}.view", "view"),
    keywords=("umap", "projection"),
    libraries=("umap-learn", "numba", "scikit-learn"),
    glossary=(
        ("UMAP", "A method that draws high-dimensional points on a 2-D map while keeping near "
         "points near. Distances on the map are approximate; the tables hold the exact "
         "numbers."),
    ),
)
