"""The certificate: one versioned JSON document, the single source of truth.

The pipeline fills the dataclasses below; :meth:`CertificateBuilder.build` turns them into
the JSON dict (floats rounded, order fixed) that every view is rendered from. The
:class:`Certificate` wraps that dict for Python users: ``.verdict``, ``.checks``,
``.summary()``, ``.to_json()``, ``.save()``.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = "1.0"
STATUS_ORDER = ["PASS", "WARN", "FAIL", "ERROR"]


def round_floats(obj: Any, digits: int = 6) -> Any:
    """Round every float to ``digits`` significant digits; NaN and inf become None.

    Rounding makes the JSON stable across BLAS builds and thread counts and keeps it small.
    """
    if isinstance(obj, float):
        if not math.isfinite(obj):
            return None
        return float(f"{obj:.{digits}g}")
    if isinstance(obj, dict):
        return {k: round_floats(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [round_floats(v, digits) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return round_floats(obj.item(), digits)
    return obj


def canonical_json(data: dict) -> str:
    """The exact bytes written to certificate.json (UTF-8, 2-space indent, final newline)."""
    return json.dumps(round_floats(data), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


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


@dataclass
class CertificateBuilder:
    """Everything the pipeline found, before it becomes JSON."""

    audit: dict[str, Any]
    tool: dict[str, Any]
    spec: dict[str, Any]
    models: list[ModelInfo]
    probes: list[ProbeInfo]
    comparisons: list[Comparison]
    checks: list[CheckResult]
    warnings: list[str] = field(default_factory=list)
    limitations: list[str] = field(default_factory=list)
    analysis: dict[str, Any] = field(default_factory=dict)

    def build(self) -> dict[str, Any]:
        data = {
            "schema_version": SCHEMA_VERSION,
            "verdict": overall_verdict([c.status for c in self.checks]),
            "audit": self.audit,
            "tool": self.tool,
            "spec": self.spec,
            "models": [asdict(m) for m in self.models],
            "probes": [asdict(p) for p in self.probes],
            "analysis": self.analysis,
            "comparisons": [asdict(c) for c in self.comparisons],
            "checks": [asdict(c) for c in self.checks],
            "warnings": list(self.warnings),
            "limitations": list(self.limitations),
        }
        return json.loads(canonical_json(data))


def overall_verdict(statuses: list[str]) -> str:
    """The worst status; an audit without checks passes (and says so in its warnings)."""
    if not statuses:
        return "PASS"
    return max(statuses, key=STATUS_ORDER.index)


#: Folder beside the views that holds the SAE dictionaries the audit trained.
TRAINED_SAE = "trained-sae"
#: Folders beside the views that belong to the certificate: each save replaces them, or
#: removes them when the certificate has nothing to put there.
OWNED_FOLDERS = (TRAINED_SAE,)
DICTIONARY_FILES = ("cfg.json", "sae_weights.safetensors")


def dictionary_files(data: dict[str, Any]) -> list[str]:
    """Relative paths of the trained dictionaries the certificate says lie beside it."""
    layers = ((data.get("analysis") or {}).get("sae") or {}).get("layers") or {}
    out = []
    for info in layers.values():
        rel = info.get("saved_as") if isinstance(info, dict) else None
        if (isinstance(rel, str) and Path(rel).parts[:1] == (TRAINED_SAE,)
                and ".." not in Path(rel).parts):
            out += [f"{rel}/{name}" for name in DICTIONARY_FILES]
    return out


def attachments_beside(folder: Path, data: dict[str, Any]) -> dict[str, Path | bytes]:
    """The certificate's attachments found in ``folder`` (where its JSON was read); a
    symbolic link on the way to one is refused (it could point at any local file)."""
    from .untrusted import inside, symlink_error

    out: dict[str, Path | bytes] = {}
    for rel in dictionary_files(data):
        path = inside(folder, rel)
        if path.is_symlink():
            raise symlink_error(path)
        if path.is_file():
            out[rel] = path
    return out


class Certificate:
    """A finished certificate, as returned by :func:`reportgen.audit` or read from JSON."""

    def __init__(self, data: dict[str, Any],
                 attachments: dict[str, Path | bytes] | None = None):
        self.data = data
        #: Files written beside the views (``{"trained-sae/layer2/cfg.json": a file or
        #: bytes}``): what the audit made that a reader needs, such as the dictionaries it
        #: trained (under :data:`OWNED_FOLDERS`).
        self.attachments = dict(attachments or {})

    @classmethod
    def from_json(cls, path: str | Path) -> Certificate:
        """Read ``certificate.json`` (or the folder holding it) as untrusted input: a regular
        file, parsed within limits and valid against the schema, else an InputError."""
        from .certschema import load_certificate

        p = Path(path)
        if p.is_dir():
            p = p / "certificate.json"
        _, data = load_certificate(p)
        return cls(data, attachments_beside(p.parent, data))

    @property
    def verdict(self) -> str:
        return self.data["verdict"]

    @property
    def checks(self) -> list[dict[str, Any]]:
        return self.data["checks"]

    @property
    def comparisons(self) -> list[dict[str, Any]]:
        return self.data["comparisons"]

    def comparison(self, candidate: str) -> dict[str, Any]:
        """One candidate's comparison with the base; an unknown name raises
        :class:`~reportgen.errors.UnknownNameError` with the closest names."""
        for c in self.comparisons:
            if c["candidate"] == candidate:
                return c
        from .errors import UnknownNameError

        names = [c["candidate"] for c in self.comparisons]
        close = difflib.get_close_matches(candidate, names, n=1, cutoff=0.6)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UnknownNameError(f"unknown candidate {candidate!r}.{hint} Known: "
                               f"{', '.join(names) or '(none)'}")

    def metric(self, candidate: str, name: str) -> float | None:
        """A metric's value (None when it could not be computed: see its ``error``).

        A name the registry does not know gets the same "did you mean" as a spec's check; a
        known one this candidate lacks says so, with the closest names it has."""
        metrics = self.comparison(candidate)["metrics"]
        if name in metrics:
            return metrics[name]["value"]
        from .errors import UnknownNameError
        from .metrics.registry import lookup, unknown_metric_message

        info = lookup(name)
        if info is None:
            raise UnknownNameError(unknown_metric_message(name))
        siblings = sorted(n for n in metrics if lookup(n) == info)  # another category, layer…
        close = difflib.get_close_matches(name, siblings, n=3, cutoff=0.6)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise UnknownNameError(f"metric {name!r} was not computed for {candidate!r} (this "
                               f"audit did not measure it).{hint}")

    def risky_features(self, top_k: int = 10, candidate: str | None = None,
                       layer: int | None = None) -> list[dict[str, Any]]:
        """SAE features selective for the risk probes in the base whose activation there rose
        most, ranked by that rise, across candidates and layers unless narrowed. Read from
        the certificate's ``sae_risky`` tables, so it works on a certificate loaded from JSON."""
        rows = [{"candidate": c["candidate"], **r} for c in self.comparisons
                if candidate in (None, c["candidate"])
                for r in (c.get("tables") or {}).get("sae_risky", [])
                if layer in (None, r["layer"])]
        rows.sort(key=lambda r: (-r["rise"], r["candidate"], r["layer"], r["feature"]))
        return rows[:top_k]

    def drift_heatmap(self, layer: int, candidate: str | None = None) -> Any:
        """An Altair heatmap of the top moved SAE features x probe sets at ``layer`` (the first
        candidate that is not a noise floor unless named)."""
        from .render.sae_view import heatmap_chart

        if candidate is None:
            cands = [c["candidate"] for c in self.comparisons if c["role"] == "candidate"]
            candidate = (cands or [c["candidate"] for c in self.comparisons])[0]
        return heatmap_chart(self.data, candidate, layer)

    def to_json(self) -> str:
        return canonical_json(self.data)

    @property
    def digest(self) -> str:
        """SHA-256 of the certificate JSON bytes, as printed in the HTML and PDF footers."""
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()

    def summary(self) -> str:
        from .summary import summary_lines

        return "\n".join(summary_lines(self.data))

    def save(
        self, out_dir: str | Path, formats: list[str] | tuple[str, ...] = ("html", "pdf", "json"),
        sign: str | Path | None = None,
    ) -> dict[str, Path]:
        """Write the views and the attachments; with ``sign`` (an Ed25519 PEM key) also
        certificate.sig.json, which names the JSON and the views written."""
        from .render import write_outputs

        return write_outputs(self, Path(out_dir), list(formats), attachments=self.attachments,
                             owned=OWNED_FOLDERS, sign=Path(sign) if sign is not None else None)

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, str]:
        from .render.html import notebook_html

        return {"text/html": notebook_html(self), "text/plain": self.summary()}

    def __repr__(self) -> str:
        a = self.data.get("audit", {})
        return f"<Certificate {a.get('name')!r} {a.get('release')!r}: {self.verdict}>"
