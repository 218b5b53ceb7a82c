"""Domain probes: plain texts of one field (finance, legal, …), mean-pooled per layer.

Where concept probes ask "did this word move?", a domain probe asks "did the model's reading
of this kind of text move, and at which depth?": per layer, the mean over texts of the
cosine distance between the base's and the candidate's mean-pooled hidden states, and linear
CKA of the two sets of mean-pooled states (see :mod:`reportgen.families.cka.metrics`).
"""

from __future__ import annotations

import numpy as np

from reportgen.core.names import lookup, register
from reportgen.core.records import MetricValue
from reportgen.core.stats import bootstrap_ci, cosine_distance_rows

POOLED = "hidden state mean-pooled over the non-padding tokens of each of the domain's texts"
register("domains.{domain}.cosine_distance.mean",
         f"Mean over the texts of domain {{domain}} of 1 − cos(h_base, h_candidate) at the last "
         f"captured layer, h = {POOLED}.")
register("domains.{domain}.layer.{layer}.cosine_distance.mean",
         f"Mean over the texts of domain {{domain}} of 1 − cos(h_base, h_candidate) after block "
         f"{{layer}} (0 = embedding output), h = {POOLED}.")


def _mv(name: str, pattern: str, value: float | None, ci: list[float] | None = None
        ) -> MetricValue:
    info = lookup(pattern)
    assert info is not None, pattern
    return MetricValue(value, info.definition, info.unit, ci, None)


def domain_metrics(
    name: str, base_mean: np.ndarray, cand_mean: np.ndarray, layer_ids: list[int], *,
    n_boot: int, seed: int, device: str | None = None,
) -> tuple[dict[str, MetricValue], list[dict]]:
    """Metrics and per-layer rows ``{domain, layer, cosine_distance_mean, cka}`` for one
    domain; arrays are (n_layers, n_texts, d) mean-pooled hidden states."""
    from reportgen.families.cka.metrics import (
        cka_by_layer,  # cka imports the registry, which imports this module
    )

    drift = cosine_distance_rows(base_mean, cand_mean)  # (n_layers, n_texts)
    m: dict[str, MetricValue] = {}
    m[f"domains.{name}.cosine_distance.mean"] = _mv(
        f"domains.{name}.cosine_distance.mean", "domains.{domain}.cosine_distance.mean",
        float(drift[-1].mean()), bootstrap_ci(drift[-1], n_boot, seed))
    for j, layer in enumerate(layer_ids):
        key = f"domains.{name}.layer.{layer}.cosine_distance.mean"
        m[key] = _mv(key, "domains.{domain}.layer.{layer}.cosine_distance.mean",
                     float(drift[j].mean()))
    cm, crows = cka_by_layer(base_mean, cand_mean, layer_ids, probe=f"domains.{name}",
                             n_boot=n_boot, seed=seed, device=device)  # mean-pooled: all vary
    m.update(cm)
    rows = [{"domain": name, "layer": layer, "cosine_distance_mean": float(drift[j].mean()),
             "cka": crows[j]["cka"]} for j, layer in enumerate(layer_ids)]
    return m, rows
