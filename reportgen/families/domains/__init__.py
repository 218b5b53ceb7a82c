"""Domain probes: plain texts per field, mean-pooled, drift and CKA by layer."""

from __future__ import annotations

from reportgen.core.family import Family, Headline, lazy
from reportgen.families.domains import metrics as _metrics  # noqa: F401  (metric names)


def _headline(comp: dict) -> Headline | None:
    """The domain that moved most at the last layer measured: a reader's first question."""
    drift = {n: m.get("value") for n, m in (comp.get("metrics") or {}).items()
             if n.startswith("domains.") and n.endswith(".cosine_distance.mean")
             and ".layer." not in n and m.get("value") is not None}
    if not drift:
        return None
    name = max(drift, key=lambda n: drift[n])
    return Headline(name, f"drift on {name.split('.')[1]}, the most moved domain",
                    vs_floor=True)


FAMILY = Family(
    name="domains",
    title="Domain probes",
    intro=("Plain texts from one field each (finance, legal, medical, …) are read by both models; "
           "their hidden states are averaged over tokens. Per domain and layer: the mean cosine "
           "distance between base and candidate, and linear CKA over the domain's texts."),
    tables=("domains",),
    pair=lazy(f"{__name__}.pair", "analyse"),
    view=lazy(f"{__name__}.view", "view"),
    headline=_headline,
    keywords=("domain",),
)
