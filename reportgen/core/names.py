"""String-keyed registry of metric names and their one-line definitions.

Checks in a spec name metrics by dotted name; families with one value per category or layer
register a pattern (``concepts.category.{category}.cosine_distance.mean``). The registry
imports nothing heavy, so ``reportgen validate`` can check metric names without torch. The
families register their names when the family list is imported (see :func:`set_loader`).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass

_PLACEHOLDERS = {"category": r"[^.]+", "layer": r"\d+", "domain": r"[^.]+", "block": r"\d+"}


@dataclass(frozen=True)
class MetricInfo:
    name: str  # may hold {category} / {layer} / {domain} / {block} placeholders
    family: str
    definition: str
    unit: str = ""
    higher_is_worse: bool = True
    #: 0 for a model that did not change (a distance, a divergence, a share): only then is
    #: "k times the noise floor's value" a measure of change (analysis.series); a ratio is
    #: 1 and a candidate's own statistic is the base's when nothing changed
    zero_when_unchanged: bool = True

    @property
    def pattern(self) -> re.Pattern[str]:
        parts = re.split(r"(\{\w+\})", self.name)
        rx = "".join(
            f"({_PLACEHOLDERS[p[1:-1]]})" if p.startswith("{") else re.escape(p) for p in parts
        )
        return re.compile(rx + r"\Z")

    def filled(self, name: str, text: str) -> str:
        """``text`` with this pattern's placeholders replaced by their values in ``name``
        ('after block {layer}' reads 'after block 3' for concepts.layer.3.…)."""
        found = self.pattern.match(name)
        if found is None:
            return text
        for key, value in zip(re.findall(r"\{(\w+)\}", self.name), found.groups(),
                              strict=True):
            text = text.replace("{" + key + "}", value)
        return text


REGISTRY: dict[str, MetricInfo] = {}
_LOADERS: list[Callable[[], object]] = []


def set_loader(load: Callable[[], object]) -> None:
    """``load()`` registers every family's metrics; it runs before the first lookup (the
    package sets it to import the family list, so core imports nothing of ours)."""
    _LOADERS[:] = [load]


def registry() -> dict[str, MetricInfo]:
    """Every registered metric name (or pattern), the families loaded first."""
    while _LOADERS:
        _LOADERS.pop()()
    return REGISTRY


def register(name: str, definition: str, unit: str = "", higher_is_worse: bool = True,
             zero_when_unchanged: bool = True) -> None:
    if name in REGISTRY:
        raise ValueError(f"metric {name!r} registered twice")
    family = name.split(".", 1)[0]
    REGISTRY[name] = MetricInfo(name, family, definition, unit, higher_is_worse,
                                zero_when_unchanged)


def lookup(name: str) -> MetricInfo | None:
    """The registered metric (or pattern) that ``name`` denotes, if any."""
    known = registry()
    if name in known:
        return known[name]
    for info in known.values():
        if "{" in info.name and info.pattern.match(name):
            return info
    return None


def unknown_metric_message(name: str) -> str:
    """'Unknown metric 'x'. Did you mean: …?' with the closest registered names."""
    names = sorted(registry())
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    msg = f"unknown metric {name!r}."
    if close:
        msg += " Did you mean: " + ", ".join(close) + "?"
    else:
        msg += " Run 'reportgen metrics' for the list."
    return msg


def concrete_definition(name: str, text: str) -> str:
    """A definition as one concrete metric reads it: its pattern's placeholders filled in
    from ``name`` (``text`` unchanged when ``name`` is not a registered pattern's)."""
    info = lookup(name)
    return text if info is None or "{" not in info.name else info.filled(name, text)


def definition(name: str) -> str:
    info = lookup(name)
    if info is None:
        raise KeyError(name)
    return info.definition
