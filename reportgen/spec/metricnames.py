"""Metric names in checks against what this spec (and its models' configs) will compute.

A registered pattern such as ``concepts.category.{category}.cosine_distance.mean`` accepts any
category, but only the spec's own categories, domains, risk sets and layers are measured: a
check naming another one would be an ERROR after every forward pass. Each placeholder is
therefore checked against the values the spec determines, before any model loads, with the
known names and the nearest one. So is a metric whose family the spec does not run (behaviour
without risk probes, weight drift with ``analysis.weights: false``, …).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reportgen.core.names import lookup, registry

#: what each placeholder of a registered pattern ranges over, decided by the text before it
#: (the first rule that matches wins); tests keep every registered pattern covered
_RULES: tuple[tuple[str, str], ...] = (
    (r"^behavior\.category\.$", "risk"),
    (r"^weights\.block\.$", "block"),
    (r"^sae\.layer\.$", "sae_layer"),
    (r"(?:^|\.)domains\.$", "domain"),
    (r"(?:^|\.)category\.$", "category"),
    (r"(?:^|\.)layer\.$", "layer"),
)
_WHAT = {"risk": "risk set", "domain": "domain", "category": "concept category"}
_SPEC_KEY = {"risk": "probes.risk", "domain": "probes.domains", "category": "probes.concepts"}


@dataclass(frozen=True)
class Known:
    """The values the spec determines; None where they are not known yet (no config read)."""

    category: list[str] | None
    domain: list[str]
    risk: list[str]
    sae_layer: list[int]
    layer: list[int] | None  # captured layers (0 = embedding output)
    n_layers: int | None  # transformer blocks of the base (from its config.json)
    noise_floor: bool
    weights: bool
    full_vocabulary: bool


def placeholder_kinds(pattern: str) -> list[str | None]:
    """For each placeholder of a registered name, what it ranges over (None: no rule)."""
    out: list[str | None] = []
    for m in re.finditer(r"\{\w+\}", pattern):
        before = re.sub(r"\{\w+\}", "X", pattern[: m.start()])
        out.append(next((kind for rx, kind in _RULES if re.search(rx, before)), None))
    return out


def _values(name: str, pattern: str) -> list[str]:
    """The placeholder values of ``name``, which matches ``pattern``."""
    parts = re.split(r"(\{\w+\})", pattern)
    rx = "".join(r"([^.]+)" if p.startswith("{") else re.escape(p) for p in parts)
    m = re.fullmatch(rx, name)
    return list(m.groups()) if m else []


def metric_problem(name: str, known: Known) -> str | None:
    """Why the audit of this spec will not compute metric ``name``; None when it will (or
    when the name is not registered at all: that is reported elsewhere)."""
    info = lookup(name)
    if info is None:
        return None
    for kind, value in zip(placeholder_kinds(info.name), _values(name, info.name), strict=True):
        problem = _placeholder_problem(name, kind, value, known)
        if problem:
            return problem
    return _family_problem(name, known)


def _placeholder_problem(name: str, kind: str | None, value: str, known: Known) -> str | None:
    if kind in _WHAT:
        names = getattr(known, kind)
        if names is None or value in names:
            return None
        if not names:
            return (f"{name!r} names the {_WHAT[kind]} {value!r}, but the spec has no "
                    f"{_SPEC_KEY[kind]}")
        from reportgen.spec.messages import did_you_mean

        return f"unknown {_WHAT[kind]} {value!r} in {name!r}." + did_you_mean(value, names)
    index = int(value)
    if kind == "sae_layer" and index not in known.sae_layer:
        have = (f"analysis.sae has layers {_listed(known.sae_layer)}" if known.sae_layer
                else "the spec has no analysis.sae")
        return f"{name!r} names layer {index}, which has no sparse dictionary: {have}"
    if kind == "block" and known.n_layers is not None and index >= known.n_layers:
        return (f"{name!r} names block {index}, but base has blocks "
                f"0..{known.n_layers - 1}")
    if kind == "layer" and known.layer is not None and index not in known.layer:
        return f"{name!r} names layer {index}, which is not captured: {_captured(known)}"
    return None


def _captured(known: Known) -> str:
    layers = known.layer or []
    if known.n_layers is not None and layers == list(range(known.n_layers + 1)):
        return f"base has layers 0..{known.n_layers}"
    return f"analysis.layers captures {_listed(layers)}"


def _listed(values: list[int]) -> str:
    return ", ".join(str(v) for v in values) or "none"


#: metrics that only some specs compute: (name pattern, computed?, why not)
_FAMILIES: tuple[tuple[str, Callable[[Known], bool], str], ...] = (
    (r"behavior\.|sae\.layer\.\d+\.risky\.", lambda k: bool(k.risk),
     "is measured on the risk probes, and the spec has no probes.risk"),
    (r"probabilities\.", lambda k: bool(k.risk or k.domain),
     "is measured on the domain and risk probe texts, and the spec has neither probes.domains "
     "nor probes.risk"),
    (r"weights\.", lambda k: k.weights, "is computed only with analysis.weights: true"),
    (r"neighbors\.tokens\.(?:jaccard\.mean|mutual_knn)$", lambda k: k.full_vocabulary,
     "is computed only with analysis.neighborhoods.tokens: full-vocabulary"),
    (r".*noise_floor", lambda k: k.noise_floor,
     "is a ratio to the noise floor, and no candidate has role: noise_floor"),
    (r"(?:cka\.|neighbors\.)?concepts\.", lambda k: k.category is None or bool(k.category),
     "is measured on the concept probes, and the spec has no probes.concepts"),
)


def _family_problem(name: str, known: Known) -> str | None:
    for rx, computed, why in _FAMILIES:
        if re.match(rx, name) and not computed(known):
            return f"{name!r} {why}"
    return None


def known_from_spec(raw: dict, categories: list[str] | None, n_layers: int | None) -> Known:
    """What the raw spec data determines. ``categories``: None when the vocabulary could not
    be read; ``n_layers``: None before any config.json is read."""
    probes = _dict(raw.get("probes"))
    analysis = _dict(raw.get("analysis"))
    models = _dict(raw.get("models"))
    layers = analysis.get("layers", "all")
    if isinstance(layers, list):
        captured: list[int] | None = sorted({v for v in layers if _is_int(v) and v >= 0})
    else:
        captured = list(range(n_layers + 1)) if n_layers is not None else None
    if captured is not None and n_layers is not None:
        captured = [v for v in captured if v <= n_layers]
    neighborhoods = _dict(analysis.get("neighborhoods"))
    candidates = models.get("candidates")
    return Known(
        category=categories if "concepts" in probes else [],
        domain=_names(probes.get("domains")),
        risk=_names(probes.get("risk")),
        sae_layer=sorted({s["layer"] for s in _list(analysis.get("sae"))
                          if isinstance(s, dict) and _is_int(s.get("layer"))}),
        layer=captured,
        n_layers=n_layers,
        noise_floor=any(isinstance(c, dict) and c.get("role") == "noise_floor"
                        for c in _list(candidates)),
        weights=analysis.get("weights", True) is not False,
        full_vocabulary=neighborhoods.get("tokens") == "full-vocabulary",
    )


def check_metric_names(raw: dict, known: Known, problem: Callable[[tuple, str], Any],
                       out: list) -> None:
    """One problem per check whose metric this spec will not compute (unless the metric
    already has one in ``out``)."""
    claimed = {getattr(p, "field", None) for p in out}
    for i, chk in enumerate(_list(raw.get("checks"))):
        metric = chk.get("metric") if isinstance(chk, dict) else None
        if isinstance(metric, str) and f"checks[{i}].metric" not in claimed:
            why = metric_problem(metric, known)
            if why:
                out.append(problem(("checks", i, "metric"), why))


def registered_patterns() -> list[str]:
    """Every registered name with a placeholder (for the completeness test)."""
    return sorted(n for n in registry() if "{" in n)


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _names(items: Any) -> list[str]:
    return [x["name"] for x in _list(items) if isinstance(x, dict)
            and isinstance(x.get("name"), str)]
