"""The family protocol: what a metric family brings, and the contexts it is called with.

A family (concept drift, token embeddings, next-token probabilities, sparse features, ...) is
one folder under ``reportgen/families/`` whose ``__init__`` defines ``FAMILY``, a
:class:`Family`. Everything about it hangs off that object:

- ``collectors``: factories asked, per model and before it loads, for a collector riding on
  that model's one forward pass (:class:`reportgen.capture.forward.Collector`). Their settings
  key the capture cache, so a factory decides from the spec and the model's identity alone;
- ``pair``: a pure function from the base's and one candidate's captures to metrics, tables,
  warnings and certificate-level facts (no model loads here);
- ``audit``: once per audit, over every variant at once (a map fitted on all of them);
- ``tables``: the names of the certificate tables the family writes: a table belongs to the
  family that declares it, and only its view reads it;
- the page side: ``title``, ``intro``, ``keywords`` and a lazily imported ``view``
  (figures, tables under them, notes, which metrics head the section, an explorer);
- ``headline``: the one number the family shows per candidate in the findings table that
  opens the page (:class:`Headline`), chosen by the family, not by the page;
- ``limitations``, ``summary`` (a candidate's findings: one clause or a list of them),
  ``floor_summary`` and ``glossary`` terms.

Heavy code (torch, altair) sits in the family's own modules behind :func:`lazy`, so importing
the family list costs nothing: ``reportgen validate`` reads the metric names the families
register on import without loading a model library.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class CollectorContext:
    loaded: Any  # spec.load.LoadedSpec
    probe: Any  # spec.probeset.ProbeSet
    model: Any  # spec.resolve.ResolvedModel: name, role, digest, and
    # kind: 'causal-lm' | 'masked-lm' | 'encoder'
    base: Any  # the base's capture.forward.Capture, for candidates (the base goes first)
    device: str | None = None  # the analysis device (core.accel): None is the CPU's path


@dataclass(frozen=True)
class PairContext:
    """One (base, candidate) pair. ``shared`` is one dict per audit, for work several
    candidates or families reuse (the base's k-NN, a token alignment), keyed by its maker."""

    spec: Any  # spec.types.AuditSpec
    probe: Any  # spec.probeset.ProbeSet
    base: Any  # capture.forward.Capture
    candidate: Any
    model: Any  # the candidate's spec.resolve.ResolvedModel
    floor: Any  # the noise-floor variant's Capture (None for the floor itself or no floor)
    base_model: Any = None  # the base's ResolvedModel
    floor_model: Any = None  # the noise floor's ResolvedModel, when ``floor`` is set
    shared: dict[Any, Any] = field(default_factory=dict)
    progress: Any = None  # core.progress.Progress
    #: where matmul-heavy analysis runs (core.accel): None is the CPU's default path
    device: str | None = None

    def memo(self, key: Any, make: Callable[[], Any]) -> Any:
        """``make()`` once per audit for ``key``."""
        if key not in self.shared:
            self.shared[key] = make()
        return self.shared[key]


@dataclass(frozen=True)
class AuditContext:
    """Every variant at once: the base first, then the candidates in spec order."""

    spec: Any
    probe: Any
    models: list[Any]  # ResolvedModel
    captures: dict[str, Any]  # by model name
    shared: dict[Any, Any]
    progress: Any = None
    device: str | None = None  # as PairContext.device


@dataclass
class PairResult:
    metrics: dict[str, Any] = field(default_factory=dict)  # name -> certificate MetricValue
    tables: dict[str, list[dict]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: merged into the certificate's ``analysis[family]`` (how it was measured; same for all
    #: candidates, so the last one written wins)
    analysis: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditResult:
    analysis: dict[str, Any] = field(default_factory=dict)  # the certificate's analysis[family]
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LimitationContext:
    models: list[Any]  # ResolvedModel
    probe: Any
    analysis: Any  # spec.types.Analysis
    certificate_analysis: dict[str, Any]  # what the families recorded (analysis[family])


Factory = Callable[[CollectorContext], Any]  # -> Collector | None
PairAnalysis = Callable[[PairContext], PairResult | None]
AuditAnalysis = Callable[[AuditContext], AuditResult | None]
Data = dict[str, Any]  # the certificate's JSON


def _none(*_: Any) -> Any:
    return None


def _empty(*_: Any) -> list[Any]:
    return []


@dataclass(frozen=True)
class View:
    """A family's section of the page, from the certificate's JSON alone."""

    #: figures (views.charts.Figure, ``family`` set to this family), in reading order
    figures: Callable[[Data], list[Any]] = _empty
    #: (figure id -> tables shown under it; tables keyed by a name not among the figure ids
    #: are shown after the figures; notes shown under the headline table)
    tables: Callable[[Data], tuple[dict[str, list[Any]], list[str]]] = lambda _: ({}, [])
    #: which of the family's metric names go into the headline table (None: all of them but
    #: those sharing one definition pattern with others)
    headline: Callable[[str], bool] | None = None
    #: an extra interactive part of the HTML page (an Explorer: data, terms, words), or None
    explorer: Callable[[Data], Any] = _none
    #: the section's intro when it depends on what was measured (None: ``Family.intro``)
    intro: Callable[[Data], str | None] = _none


@dataclass(frozen=True)
class Headline:
    """The number a family shows for one comparison in the page's findings table."""

    metric: str  # the metric's name in the comparison
    label: str  # what it is, in a few words ("mean concept drift")
    #: the metric holding its ratio to the noise floor, where the family registers one
    ratio: str | None = None
    #: no ratio metric, but a drift a noise floor can scale: the page divides the value by
    #: the noise floor's value of the same metric (never for similarities such as CKA)
    vs_floor: bool = False


def headline(metric: str, label: str, ratio: str | None = None,
             vs_floor: bool = False) -> Callable[[Data], Headline | None]:
    """A fixed headline metric, shown wherever the comparison has it."""
    head = Headline(metric, label, ratio, vs_floor)
    return lambda comp: head if metric in (comp.get("metrics") or {}) else None


@dataclass(frozen=True)
class Family:
    name: str  # the metric-name prefix, e.g. "concepts"
    title: str
    intro: str
    tables: tuple[str, ...] = ()
    collectors: tuple[Factory, ...] = ()
    pair: PairAnalysis | None = None
    audit: AuditAnalysis | None = None
    view: Callable[[], View] | None = None
    #: lower-case words that tie one of the certificate's limitations to this section
    keywords: tuple[str, ...] = ()
    limitations: Callable[[LimitationContext], list[str]] = _empty
    #: findings about one comparison: one clause, or a list of them (one finding each)
    summary: Callable[[Data], str | list[str]] = lambda _: ""
    floor_summary: Callable[[Data], str] = lambda _: ""  # a clause about the noise floor
    glossary: tuple[tuple[str, str], ...] = ()
    #: the comparison's headline number for the findings table, or None (nothing measured)
    headline: Callable[[Data], Headline | None] = _none
    #: libraries its analysis uses beyond every audit's, named in the certificate's footer
    #: when the family recorded an analysis (``analysis[name]``)
    libraries: tuple[str, ...] = ()


def lazy(module: str, attr: str) -> Callable[..., Any]:
    """A function that imports ``module`` on its first call and calls ``module.attr``: a
    family's heavy modules load only when the family runs or renders."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), attr)(*args, **kwargs)

    call.__name__ = attr
    call.__qualname__ = f"lazy({module}.{attr})"
    return call
