"""The certificate: one versioned JSON document, the single source of truth.

The pipeline fills the records of :mod:`reportgen.core.records`;
:meth:`CertificateBuilder.build` turns them into the JSON dict (floats rounded, order fixed)
that every view is rendered from. :class:`Certificate` wraps that dict for queries
(``.verdict``, ``.metric()``, ``.to_json()``); :class:`reportgen.api.Certificate` adds what
needs the views (``.summary()``, ``.save()``, notebook display).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from reportgen.core.records import (
    CheckResult,
    Comparison,
    ModelInfo,
    ProbeInfo,
    overall_verdict,
)
from reportgen.families.sae import TRAINED_SAE
from reportgen.sae.files import DICTIONARY_FILES

SCHEMA_VERSION = "1.1"  # 1.1: the optional ``series`` block
#: A document without a series is exactly a 1.0 document and says so: every 1.x reader
#: reads it, and certificates, signatures and archives of plain audits stay byte-identical.
PLAIN_SCHEMA_VERSION = "1.0"
#: The certificate's file name, in a folder and attached to its PDF.
JSON_NAME = "certificate.json"


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
    series: list[dict[str, Any]] = field(default_factory=list)  # analysis.series

    def build(self) -> dict[str, Any]:
        return json.loads(canonical_json(self._raw()))

    def certificate(self, attachments: dict[str, Path | bytes] | None = None,
                    cls: type[Certificate] | None = None) -> Certificate:
        """The certificate (a ``cls``, :class:`Certificate` by default), its JSON made once
        (seconds for a large audit): the text is canonical JSON, so reading it back and
        writing it again gives the same bytes."""
        text = canonical_json(self._raw())
        cert = (cls or Certificate)(json.loads(text), attachments)
        cert._json = text
        return cert

    def _raw(self) -> dict[str, Any]:
        data = {
            "schema_version": SCHEMA_VERSION if self.series else PLAIN_SCHEMA_VERSION,
            "verdict": overall_verdict([c.status for c in self.checks]),
            "audit": self.audit,
            "tool": self.tool,
            "spec": self.spec,
            "models": [asdict(m) for m in self.models],
            "probes": [asdict(p) for p in self.probes],
            "analysis": self.analysis,
            "comparisons": [_comparison_dict(c) for c in self.comparisons],
            "checks": [asdict(c) for c in self.checks],
            "warnings": list(self.warnings),
            "limitations": list(self.limitations),
        }
        if self.series:
            data["series"] = self.series
        return data


def _comparison_dict(c: Comparison) -> dict[str, Any]:
    """``asdict(c)`` without deep-copying the tables (plain lists of dicts, hundreds of
    thousands of values in a large audit): :func:`round_floats` rebuilds them anyway."""
    return {"base": c.base, "candidate": c.candidate, "role": c.role,
            "metrics": {k: asdict(v) for k, v in c.metrics.items()}, "tables": c.tables}


#: Folders beside the views that belong to the certificate: each save replaces them, or
#: removes them when the certificate has nothing to put there.
OWNED_FOLDERS = (TRAINED_SAE,)


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
    from reportgen.core.untrusted import inside, symlink_error

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
        from reportgen.certificate.schema import load_certificate

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
        from reportgen.core.errors import UnknownNameError

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
        from reportgen.core.errors import UnknownNameError
        from reportgen.core.names import lookup, unknown_metric_message

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

    @property
    def data(self) -> dict[str, Any]:
        return self._data

    @data.setter
    def data(self, value: dict[str, Any]) -> None:
        self._data, self._json = value, None

    def to_json(self) -> str:
        """The canonical JSON, made once (1-3 s for a large audit, and a render asks for it
        several times: the digest, the cache key, the PDF's attachment). A certificate's
        ``data`` is not changed in place after the JSON is made: to change one, make a new
        Certificate from a copy (as verify and the archive do)."""
        if self._json is None:
            self._json = canonical_json(self.data)
        return self._json

    @property
    def digest(self) -> str:
        """SHA-256 of the certificate JSON bytes, as printed in the HTML and PDF footers."""
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()

    def __repr__(self) -> str:
        a = self.data.get("audit", {})
        return f"<Certificate {a.get('name')!r} {a.get('release')!r}: {self.verdict}>"
