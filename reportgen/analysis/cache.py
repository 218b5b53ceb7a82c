"""Analysis cache: a re-run that changes only checks, thresholds, formats, templates or audit
metadata reuses every metric, not only the captures.

An entry holds what :func:`reportgen.analysis.compare.compare_all` returns (comparisons with their
metrics and tables, warnings, the families' certificate-level analyses) as JSON,
keyed by everything those depend on: each model's name, role and capture-cache key (which
covers weights, adapter, dtype, probes and capture plan), the probe digests, the normalised
``analysis`` and ``probes`` sections of the spec, the registered pair-analysis families,
the numeric libraries' versions and :data:`ANALYSIS_VERSION`. Storage goes through
:func:`reportgen.capture.cache.save_blob` / :func:`~reportgen.cache.load_blob` (atomic rename,
SHA-256 checked on load, a corrupt entry dropped and recomputed).

Each (base, candidate) pair's result is also stored on its own (:class:`PairCache`), so when
the audit as a whole misses (a series gained a checkpoint, a candidate was added) only the
new pairs are computed.

Results are identical whether they came from the cache or not: JSON keeps every float
exactly (``repr`` round-trips), numpy scalars are stored as the Python numbers the
certificate would have made of them, and tuples as lists, which the certificate writes alike.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from reportgen.core.progress import Progress
from reportgen.core.records import Comparison, MetricValue

#: Bump whenever what the analysis computes or how it reports it changes for the same inputs:
#: any change in reportgen/analysis.py, reportgen/metrics/, a family's pair analysis or the
#: MetricValue/Comparison fields. A new family registering a pair analysis needs no bump (the
#: family names are in the key), nor does a change of checks, verdicts, render or templates.
ANALYSIS_VERSION = 10  # 9: probes, displays; 10: the int8 floor's weights in its load dtype

KIND = "analyses"
PAIR_KIND = "pair-analyses"
_LIBS = ("numpy", "scipy", "scikit-learn", "torch", "umap-learn", "pynndescent", "numba")

Result = tuple[list[Comparison], list[str], dict[str, Any]]


def _lib_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for lib in _LIBS:
        try:
            out[lib] = version(lib)
        except PackageNotFoundError:
            out[lib] = None
    return out


def analysis_key(loaded: Any, models: list, capture_keys: dict[str, str], probe: Any,
                 device: str | None = None) -> str:
    """The cache key of one audit's analysis (see the module docstring for what it covers);
    an analysis run on a GPU (``device``) is kept apart from the CPU's."""
    from reportgen.core.version import __version__
    from reportgen.families import ORDER

    blob = {
        "version": ANALYSIS_VERSION,
        "tool": __version__,
        "models": [_model_blob(m, capture_keys) for m in models],
        "probes": {"capture": probe.capture_digest, "digests": [i.digest for i in probe.infos],
                   "spec": loaded.normalised.get("probes")},
        "analysis": loaded.normalised.get("analysis"),
        "families": list(ORDER),
        "libraries": _lib_versions(),
    }
    if device is not None:
        blob["device"] = device
    text = json.dumps(blob, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _model_blob(m: Any, capture_keys: dict[str, str]) -> dict[str, Any]:
    """What of one model keys an analysis: its capture, and how the page names and uses it."""
    return {"name": m.name, "role": m.role, "capture": capture_keys[m.name],
            "derived_from": m.derived_from, "has_folder": m.path is not None}


class PairCache:
    """One (base, candidate) pair's result (its comparison, warnings and analysis entries)
    stored on its own, keyed like :func:`analysis_key` but by the pair's three captures
    (base, candidate, the floor its ratios use), its name and role."""

    def __init__(self, loaded: Any, models: list, capture_keys: dict[str, str], probe: Any,
                 device: str | None = None):
        self.capture_keys = capture_keys
        self.base = models[0]
        self.common = analysis_key(loaded, [], capture_keys, probe, device)

    def key(self, m: Any, floor: Any) -> str:
        blob = {"audit": self.common, "base": self.capture_keys[self.base.name],
                "model": _model_blob(m, self.capture_keys),
                "floor": None if floor is None else self.capture_keys[floor.name]}
        text = json.dumps(blob, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def load(self, m: Any, floor: Any) -> tuple[Comparison, list[str], dict] | None:
        from reportgen.capture import cache

        key = self.key(m, floor)
        payload = cache.load_blob(PAIR_KIND, key)
        if payload is None:
            return None
        try:
            comps, warnings, extra = decode(payload)
            return comps[0], warnings, extra
        except (ValueError, KeyError, TypeError, IndexError):
            cache.drop_blob(PAIR_KIND, key)
            return None

    def save(self, m: Any, floor: Any, result: tuple[Comparison, list[str], dict]) -> None:
        from reportgen.capture import cache

        comp, warnings, extra = result
        try:
            payload = encode(([comp], warnings, extra))
        except (TypeError, ValueError):  # a family returned something JSON cannot hold
            return
        cache.save_blob(PAIR_KIND, self.key(m, floor), payload)


def _plain(obj: Any) -> Any:
    """json.dumps fallback: numpy scalars and arrays as the Python values they hold."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def encode(result: Result) -> bytes:
    comparisons, warnings, extra = result
    data = {"comparisons": [asdict(c) for c in comparisons], "warnings": list(warnings),
            "extra": extra}
    return json.dumps(data, default=_plain, allow_nan=True).encode()


def decode(payload: bytes) -> Result:
    """Inverse of :func:`encode`; raises ValueError/KeyError/TypeError on a malformed entry."""
    data = json.loads(payload)
    comparisons = [
        Comparison(c["base"], c["candidate"], c["role"],
                   {k: MetricValue(**v) for k, v in c["metrics"].items()}, c["tables"])
        for c in data["comparisons"]]
    return comparisons, list(data["warnings"]), dict(data["extra"])


def compare_all_cached(loaded: Any, models: list, caps: dict, capture_keys: dict[str, str],
                       probe: Any, prog: Progress, device: str | None = None) -> Result:
    """:func:`reportgen.analysis.compare.compare_all`, or its stored result for the same inputs."""
    from reportgen.analysis import compare as analysis
    from reportgen.capture import cache

    key = analysis_key(loaded, models, capture_keys, probe, device)
    payload = cache.load_blob(KIND, key)
    if payload is not None:
        try:
            result = decode(payload)
        except (ValueError, KeyError, TypeError):
            cache.drop_blob(KIND, key)
        else:
            prog.say("analysis found in cache")
            return result
    result = analysis.compare_all(loaded.spec, models, caps, probe, prog, device,
                                  PairCache(loaded, models, capture_keys, probe, device))
    try:
        payload = encode(result)
    except (TypeError, ValueError):  # a family returned something JSON cannot hold
        return result
    cache.save_blob(KIND, key, payload)
    return result
