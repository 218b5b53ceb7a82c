"""The typed records the stages hand on: digests, probe and model identities, metric values,
comparisons and check results. The certificate is built from them (its JSON mirrors their
fields); they live here because every stage from spec to analysis makes some of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STATUS_ORDER = ["PASS", "WARN", "FAIL", "ERROR"]


@dataclass
class FileDigest:
    name: str
    digest: str


@dataclass
class Digest:
    algorithm: str
    root: str
    files: list[FileDigest] = field(default_factory=list)


@dataclass
class ModelInfo:
    name: str
    role: str  # base | candidate | noise_floor
    kind: str  # causal-lm | masked-lm | encoder
    architecture: str
    parameters: int
    source: str  # as written in the spec; never an absolute path unless the spec wrote one
    digest: Digest
    layers: int
    hidden_size: int
    vocab_size: int
    derived_from: str | None = None
    derivation: str | None = None
    adapter: Digest | None = None  # a PEFT adapter applied over ``source``, by its own digest
    dtype: str = "float32"


@dataclass
class ProbeInfo:
    name: str
    kind: str
    count: int
    digest: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class MetricValue:
    value: float | None
    definition: str
    unit: str = ""
    ci: list[float] | None = None
    error: str | None = None


@dataclass
class Comparison:
    base: str
    candidate: str
    role: str
    metrics: dict[str, MetricValue] = field(default_factory=dict)
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


@dataclass
class CheckResult:
    id: str
    metric: str
    candidate: str
    condition: str
    value: float | None
    status: str
    message: str
    fail_if: str | None = None
    warn_if: str | None = None
    description: str = ""


def overall_verdict(statuses: list[str]) -> str:
    """The worst status; an audit without checks passes (and says so in its warnings)."""
    if not statuses:
        return "PASS"
    return max(statuses, key=STATUS_ORDER.index)
