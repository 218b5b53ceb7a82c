"""Validate a certificate document against its hand-written JSON Schema (draft 2020-12).

The schema file ships inside the package (``reportgen/schemas/certificate.schema.json``) so
third parties can validate ``certificate.json`` without reportgen; this module adds the one
rule a schema cannot state: the verdict is the worst status of the checks.

:func:`load_certificate` is the only way a certificate file from disk becomes data: a
certificate may come from someone the reader does not trust, so it is read as a regular file
within limits, parsed with limits, and refused (one line, exit 2) unless its major schema
version is one this reportgen reads and it passes the schema and the verdict rule. Every view
is then drawn from a document whose verdict is the one its checks give.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from pathlib import Path
from typing import Any

from .errors import InputError

SCHEMA_FILE = "certificate.schema.json"
_ORDER = ["PASS", "WARN", "FAIL", "ERROR"]
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SUPPORTED_MAJOR = "1"
MAX_BYTES = 256 * 2**20
MAX_MESSAGE = 300


class CertificateError(InputError):
    """A certificate file that cannot be read, is not JSON, or is not a valid certificate."""


def load_certificate(path: Path, tables: bool = True) -> tuple[bytes, dict[str, Any]]:
    """The exact bytes of a certificate file and its validated document (``tables=False``
    skips the per-candidate tables, for readers such as the archive index that never look
    at them: they are most of a certificate and most of the time validation takes)."""
    from .untrusted import read_regular

    try:
        raw = read_regular(path, MAX_BYTES)
    except FileNotFoundError:
        raise CertificateError(f"{path}: no such certificate file") from None
    return raw, parse_certificate(raw, str(path), tables)


def parse_certificate(raw: bytes, where: str, tables: bool = True) -> dict[str, Any]:
    """Parse and validate certificate bytes; ``where`` names them in the error."""
    from .untrusted import BadJSON, parse_json

    try:
        data = parse_json(raw)
    except BadJSON as e:
        raise CertificateError(f"{where}: not a certificate JSON document ({e})") from None
    check_certificate(data, where, tables)
    return data


def check_certificate(data: Any, where: str, tables: bool = True) -> None:
    """Raise :class:`CertificateError` naming the first problem (and how many more)."""
    version = data.get("schema_version") if isinstance(data, dict) else None
    if isinstance(version, str) and version.split(".")[0] != SUPPORTED_MAJOR:
        raise CertificateError(
            f"{where}: schema_version {_short(repr(version))} is not supported; this reportgen "
            f"reads certificates of schema {SUPPORTED_MAJOR}.x (a newer reportgen may read it)")
    problems = certificate_problems(data, tables)
    if problems:
        more = len(problems) - 1
        tail = f" (and {more} more problem{'s' if more != 1 else ''})" if more else ""
        raise CertificateError(f"{where}: not a valid certificate: {_short(problems[0])}{tail}")


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE - 1] + "…"


@functools.lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    from .resources import schemas_dir

    return json.loads((schemas_dir() / SCHEMA_FILE).read_text(encoding="utf-8"))


def certificate_problems(data: Any, tables: bool = True) -> list[str]:
    """Every problem found, each as '$.path: message', sorted by path."""
    problems = sorted(
        (json_path(err.absolute_path), err.message) for err in _validator(tables).iter_errors(data)
    )
    out = [f"{path}: {msg}" for path, msg in problems]
    if not problems:
        out += _verdict_problems(data)
    return out


@functools.lru_cache(maxsize=2)
def _validator(tables: bool) -> Any:
    from jsonschema import Draft202012Validator

    schema = load_schema()
    if not tables:
        schema = copy.deepcopy(schema)
        del schema["$defs"]["comparison"]["properties"]["tables"]
    return Draft202012Validator(schema)


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
