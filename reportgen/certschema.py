"""Validate a certificate document against its hand-written JSON Schema (draft 2020-12).

The schema file ships inside the package (``reportgen/schemas/certificate.schema.json``) so
third parties can validate ``certificate.json`` without reportgen; this module adds the one
rule a schema cannot state: the verdict is the worst status of the checks.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

SCHEMA_FILE = "certificate.schema.json"
_ORDER = ["PASS", "WARN", "FAIL", "ERROR"]
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@functools.lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    from .resources import schemas_dir

    return json.loads((schemas_dir() / SCHEMA_FILE).read_text(encoding="utf-8"))


def certificate_problems(data: Any) -> list[str]:
    """Every problem found, each as '$.path: message', sorted by path."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(load_schema())
    problems = sorted(
        (json_path(err.absolute_path), err.message) for err in validator.iter_errors(data)
    )
    out = [f"{path}: {msg}" for path, msg in problems]
    if not problems:
        out += _verdict_problems(data)
    return out


def validate_certificate(data: Any) -> None:
    """Raise ValueError listing every way ``data`` departs from the certificate schema."""
    problems = certificate_problems(data)
    if problems:
        noun = "problem" if len(problems) == 1 else "problems"
        raise ValueError(
            f"not a valid certificate ({len(problems)} {noun}):\n"
            + "\n".join(f"  {p}" for p in problems)
        )


def json_path(parts: Any) -> str:
    """``$.comparisons[0].metrics["concepts.cosine_distance.mean"].value``."""
    out = "$"
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif _IDENT.match(p):
            out += f".{p}"
        else:
            out += "[" + json.dumps(p, ensure_ascii=False) + "]"
    return out


def _verdict_problems(data: dict[str, Any]) -> list[str]:
    statuses = [c["status"] for c in data["checks"]]
    expected = max(statuses, key=_ORDER.index) if statuses else "PASS"
    if data["verdict"] != expected:
        return [f"$.verdict: {data['verdict']!r} but the worst check status is {expected!r}"]
    return []
