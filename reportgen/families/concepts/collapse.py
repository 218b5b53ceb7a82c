"""Representation collapse: do the candidate's concepts still read differently from each other?

A fine-tune can map every input to nearly the same hidden state (a collapsed representation).
Drift per concept then looks large but uniform, and every neighbour sits at cosine 1.00, so
neither the drift nor the neighbourhoods say what went wrong. The mean cosine between two
different concepts' states says it directly: it rises towards 1. It is compared with the
base's, since some models' states share a large common direction from the start.
"""

from __future__ import annotations

import numpy as np

from reportgen.core.names import definition, register
from reportgen.core.numfmt import num
from reportgen.core.numfmt import ratio as ratio_text
from reportgen.core.records import MetricValue

#: A candidate whose concept states are spread this many times less than the base's
#: (1 − mean pairwise cosine) has collapsed: ten times closer together.
COLLAPSE_SPREAD_RATIO = 0.1
#: The words every collapse warning carries (the concept section repeats those warnings).
COLLAPSED = ": the concept representations collapsed: "

STATE = "h = hidden state of the last non-padding token at the last layer of the prompt template"
register("concepts.pairwise_cosine.base",
         f"Mean over pairs of distinct concepts of cos(h_i, h_j) in the base, {STATE}.",
         higher_is_worse=False)
register("concepts.pairwise_cosine.candidate",
         f"Mean over pairs of distinct concepts of cos(h_i, h_j) in the candidate, {STATE}; "
         "near 1, every concept reads alike (a collapsed representation).",
         zero_when_unchanged=False)
register("concepts.spread_ratio",
         "(1 − concepts.pairwise_cosine.candidate) / (1 − concepts.pairwise_cosine.base): how "
         f"spread out the candidate's concept states are against the base's; below "
         f"{COLLAPSE_SPREAD_RATIO:g} the representation has collapsed.",
         higher_is_worse=False)


def mean_pairwise_cosine(x: np.ndarray) -> float:
    """Mean of cos(x_i, x_j) over ordered pairs i ≠ j, in O(n d): with unit rows u,
    Σ_{i≠j} u_i·u_j = ‖Σ u_i‖² − n. Zero rows count as cosine 0 with everything."""
    a = np.asarray(x, dtype=np.float64)
    n = a.shape[0]
    if n < 2:
        raise ValueError("the mean pairwise cosine needs at least two items")
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    unit = np.divide(a, norms, out=np.zeros_like(a), where=norms > 0)
    total = unit.sum(axis=0)
    ones = float((norms[:, 0] > 0).sum())
    return float((total @ total - ones) / (n * (n - 1)))


def collapse_metrics(base: np.ndarray, cand: np.ndarray) -> dict[str, MetricValue]:
    """The three metrics for (n_concepts, d) last-layer states of base and candidate."""
    pb, pc = mean_pairwise_cosine(base), mean_pairwise_cosine(cand)
    spread = 1.0 - pb
    ratio, error = ((1.0 - pc) / spread, None) if spread > 1e-12 else (
        None, "the base's concept states all point the same way (mean pairwise cosine 1), "
              "so there is no spread to compare with")

    def mv(name: str, value: float | None, err: str | None = None) -> MetricValue:
        return MetricValue(value, definition(name), "", None, err)

    return {"concepts.pairwise_cosine.base": mv("concepts.pairwise_cosine.base", pb),
            "concepts.pairwise_cosine.candidate": mv("concepts.pairwise_cosine.candidate", pc),
            "concepts.spread_ratio": mv("concepts.spread_ratio", ratio, error)}


def collapsed(metrics: dict[str, MetricValue]) -> bool:
    """Whether the metrics of :func:`collapse_metrics` show a collapse."""
    ratio = metrics["concepts.spread_ratio"].value
    return ratio is not None and ratio < COLLAPSE_SPREAD_RATIO


def collapse_message(candidate: str, metrics: dict[str, MetricValue]) -> str:
    """One sentence for the warnings (the concept section repeats it)."""
    pb = metrics["concepts.pairwise_cosine.base"].value
    pc = metrics["concepts.pairwise_cosine.candidate"].value
    ratio = metrics["concepts.spread_ratio"].value
    spread = (f"their spread (1 − mean cosine) fell to {ratio_text(ratio)} the base's"
              if ratio else "every concept now has the same state")
    return (f"{candidate}{COLLAPSED}the mean cosine between two different concepts' "
            f"last-layer states rose from {num(pb, 3)} in the base to {_below_one(pc)}, so "
            f"{spread}; its concept drift and neighbourhoods describe that collapse, not what "
            "each concept means.")


def _below_one(v: float) -> str:
    """A cosine near 1 with enough decimals that it does not read as exactly 1."""
    for decimals in range(3, 10):
        text = f"{v:.{decimals}f}"
        if float(text) != 1.0:
            return text
    return f"{v:.9f}"
