"""Extension points of the metric families that need more than pooled hidden states.

Such a family (next-token probabilities and behaviour, sparse features) plugs in twice:

- a **collector factory**: the pipeline asks every factory for a collector per model, so one
  forward pass serves every family (see :class:`reportgen.capture.Collector`). Factories
  decide from the spec and the model's identity alone, before the model loads, because the
  collectors' settings key the capture cache;
- a **pair analysis**: a pure function from the base's and a candidate's captures to metrics,
  tables, warnings and certificate-level facts (no model loads here).

The pipeline and ``analysis.compare_all`` call whatever is registered, so adding a family
touches its own modules plus one import line in :func:`_import_families`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .capture import Capture, Collector


@dataclass(frozen=True)
class CollectorContext:
    loaded: Any  # specload.LoadedSpec
    probe: Any  # pipeline.ConceptProbe
    model: Any  # models.ResolvedModel: name, role, digest, and
    # kind: 'causal-lm' | 'masked-lm' | 'encoder'
    base: Capture | None  # the base's capture, for candidates (the base is captured first)


Factory = Callable[[CollectorContext], Collector | None]
_FACTORIES: dict[str, Factory] = {}


def register_collector(name: str, factory: Factory) -> None:
    if name in _FACTORIES:
        raise ValueError(f"collector {name!r} registered twice")
    _FACTORIES[name] = factory


def collectors_for(ctx: CollectorContext) -> list[Collector]:
    """The collectors this model's pass needs, in registration order."""
    _import_families()
    out = []
    for factory in _FACTORIES.values():
        c = factory(ctx)
        if c is not None:
            out.append(c)
    return out


@dataclass(frozen=True)
class PairContext:
    spec: Any  # spec.AuditSpec
    probe: Any  # pipeline.ConceptProbe
    base: Capture
    candidate: Capture
    model: Any  # the candidate's models.ResolvedModel
    floor: Capture | None  # the noise-floor variant's capture (None for the floor itself)


@dataclass
class PairResult:
    metrics: dict[str, Any] = field(default_factory=dict)  # name -> certificate.MetricValue
    tables: dict[str, list[dict]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: merged into the certificate's ``analysis[family]`` (how it was measured; same for all
    #: candidates, so the last one written wins)
    analysis: dict[str, Any] = field(default_factory=dict)


PairAnalysis = Callable[[PairContext], PairResult | None]
_PAIRS: dict[str, PairAnalysis] = {}


def register_pair_analysis(family: str, fn: PairAnalysis) -> None:
    if family in _PAIRS:
        raise ValueError(f"pair analysis {family!r} registered twice")
    _PAIRS[family] = fn


def pair_analyses() -> dict[str, PairAnalysis]:
    _import_families()
    return dict(_PAIRS)


def _import_families() -> None:
    """Families register on import (lazy: importing a family may import torch)."""
    from . import (
        collapsefamily,  # noqa: F401  (concept collapse, from the concept captures)
        probfamily,  # noqa: F401  (probabilities, behaviour)
        termpieces,  # noqa: F401  (concept terms' token counts)
    )
    from .sae import family as _sae  # noqa: F401
