"""Verify a certificate: its signature, its JSON bytes, and the checkpoints it names.

Why each step: the signature proves the statement was not changed since signing; the
statement's ``certificate.json`` subject proves the JSON is the one that was signed (compared
byte for byte, so even a whitespace edit shows); and re-hashing a model folder, file by file,
against the per-file digests in that now-trusted JSON says exactly which files were changed,
added or removed, where a root digest alone could only say "different".

Every check runs even after one fails, so a single run reports everything that differs.
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .certificate import FileDigest
from .digest import file_sha256, list_files, root_digest
from .errors import InputError
from .pdfattach import JSON_NAME, read_attachments
from .signing import (
    CERTIFICATE_SUBJECT,
    SIGNATURE_FILENAME,
    SignatureError,
    SignedStatement,
    load_public_key,
    open_envelope,
    subject_digests,
)
from .untrusted import BadJSON, parse_json

MAX_NAMES = 5


@dataclass(frozen=True)
class Finding:
    """One verified (or failed) property, printed as one line."""

    ok: bool
    subject: str
    message: str

    def line(self) -> str:
        return f"{'ok' if self.ok else 'FAIL'}: {self.subject}: {self.message}"


@dataclass(frozen=True)
class VerifyReport:
    source: str
    findings: list[Finding]

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.findings)

    @property
    def failures(self) -> list[Finding]:
        return [f for f in self.findings if not f.ok]


@dataclass(frozen=True)
class Bundle:
    """The bytes to verify: certificate JSON and its signature, from a folder or a PDF."""

    source: str
    certificate: bytes
    signature: bytes | None
    missing_signature: str  # what to say when ``signature`` is None


def verify(target: Path, public_key: Path | None = None,
           models: dict[str, Path] | None = None) -> VerifyReport:
    """Verify a certificate folder, certificate JSON file or PDF; check ``models`` folders.

    Raises :class:`InputError` for bad arguments (a missing path, an unknown model name);
    everything the certificate or checkpoints get wrong becomes a failed :class:`Finding`.
    """
    key = load_public_key(public_key) if public_key is not None else None
    bundle = load_bundle(Path(target))
    data = _parse_certificate(bundle)
    signed, sig_finding = _check_signature(bundle, key)
    findings = [sig_finding]
    statement = signed.statement if signed else None
    findings.append(_check_json_digest(bundle, statement))
    cert_models = _cert_models(data)
    for name, folder in (models or {}).items():
        model = _find_model(cert_models, name, folder)
        findings.append(check_model(model, Path(folder), _signed_root(statement, model)))
    return VerifyReport(bundle.source, findings)


# ------------------------------------------------------------------------------ loading


def load_bundle(target: Path) -> Bundle:
    """Read a folder (certificate.json + certificate.sig.json, else certificate.pdf),
    a certificate JSON file (signature beside it) or a PDF (both attached)."""
    if target.is_dir():
        if (target / JSON_NAME).is_file() or not (target / "certificate.pdf").is_file():
            return _json_bundle(target / JSON_NAME)
        return _pdf_bundle(target / "certificate.pdf")
    if not target.exists():
        raise InputError(f"{target}: no such certificate folder or file")
    with open(target, "rb") as fh:
        magic = fh.read(5)
    return _pdf_bundle(target) if magic == b"%PDF-" else _json_bundle(target)


def _json_bundle(path: Path) -> Bundle:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such certificate file") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read the certificate ({e.strerror})") from None
    sig_path = path.with_name(SIGNATURE_FILENAME)
    sig = sig_path.read_bytes() if sig_path.is_file() else None
    return Bundle(str(path), data, sig,
                  f"no {SIGNATURE_FILENAME} next to {path.name}; the certificate is not signed")


def _pdf_bundle(path: Path) -> Bundle:
    files = read_attachments(path)
    if JSON_NAME not in files:
        raise InputError(f"{path}: no {JSON_NAME} is attached to this PDF, so it cannot be "
                         "verified alone (re-render it with 'reportgen render')")
    return Bundle(f"{path} (attached {JSON_NAME})", files[JSON_NAME],
                  files.get(SIGNATURE_FILENAME),
                  f"no {SIGNATURE_FILENAME} is attached to {path.name}; "
                  "the certificate is not signed")


# ------------------------------------------------------------------------------- checks


def _check_signature(bundle: Bundle, key: Ed25519PublicKey | None
                     ) -> tuple[SignedStatement | None, Finding]:
    if bundle.signature is None:
        return None, Finding(False, "signature", bundle.missing_signature)
    try:
        signed = open_envelope(bundle.signature, key)
    except SignatureError as e:
        return None, Finding(False, "signature", str(e))
    if signed.pinned:
        how = "the key given with --public-key"
    else:
        how = ("the signer's key embedded in the statement; pass --public-key to check "
               "it is the key you expect")
    return signed, Finding(True, "signature", f"valid, key id {signed.keyid} ({how})")


def _check_json_digest(bundle: Bundle, statement: dict[str, Any] | None) -> Finding:
    actual = hashlib.sha256(bundle.certificate).hexdigest()
    if statement is None:
        return Finding(False, CERTIFICATE_SUBJECT,
                       f"sha256 {actual} (not checked: no valid signature)")
    signed = subject_digests(statement).get(CERTIFICATE_SUBJECT, {}).get("sha256")
    if signed is None:
        return Finding(False, CERTIFICATE_SUBJECT, "the signed statement has no subject "
                                                   f"named {CERTIFICATE_SUBJECT!r}")
    if signed != actual:
        return Finding(False, CERTIFICATE_SUBJECT,
                       f"sha256 {actual} differs from the signed {signed} "
                       "(the certificate was edited after signing)")
    return Finding(True, CERTIFICATE_SUBJECT, f"sha256 {actual} matches the signed digest")


def _parse_certificate(bundle: Bundle) -> Any:
    """The certificate JSON, parsed within limits (a crafted document is bad input)."""
    try:
        return parse_json(bundle.certificate)
    except BadJSON as e:
        raise InputError(f"{bundle.source}: not a certificate JSON document ({e})") from None


def _cert_models(data: Any) -> list[dict[str, Any]]:
    try:
        return [m for m in data["models"] if isinstance(m, dict)]
    except (KeyError, TypeError):
        return []


def _find_model(models: list[dict[str, Any]], name: str, folder: Path) -> dict[str, Any]:
    by_name = {str(m.get("name")): m for m in models}
    if name not in by_name:
        have = ", ".join(by_name) or "none readable"
        close = difflib.get_close_matches(name, list(by_name), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise InputError(f"--model {name}={folder}: the certificate has no model {name!r} "
                         f"(it has: {have}).{hint}")
    model = by_name[name]
    digest = model.get("digest") or {}
    if digest.get("algorithm") != "sha256" or not digest.get("files"):
        source = model.get("derived_from")
        instead = f"; give its source model {source!r} instead" if source else ""
        raise InputError(f"--model {name}={folder}: {name!r} is a derived variant with no "
                         f"files of its own to re-hash{instead}")
    if not Path(folder).is_dir():
        raise InputError(f"--model {name}={folder}: not a folder")
    return model


def _signed_root(statement: dict[str, Any] | None, model: dict[str, Any]) -> str | None:
    if statement is None:
        return None
    return subject_digests(statement).get(str(model["name"]), {}).get("sha256")


def check_model(model: dict[str, Any], folder: Path, signed_root: str | None) -> Finding:
    """Re-hash ``folder`` and compare it, file by file, with the certificate's digests."""
    subject = f"model {model['name']}"
    expected = {f["name"]: f["digest"] for f in model["digest"]["files"]}
    actual = {n: file_sha256(folder / n) for n in list_files(folder)}
    diff = file_differences(expected, actual)
    root = root_digest([FileDigest(n, d) for n, d in actual.items()]) if actual else ""
    recorded = model["digest"]["root"]
    if diff:
        return Finding(False, subject, "; ".join(diff))
    if signed_root is not None and recorded != signed_root:
        return Finding(False, subject, f"the certificate records root {recorded} but the "
                                       f"signed statement names {signed_root}")
    if root != recorded:
        return Finding(False, subject, f"root {root} differs from the recorded {recorded}")
    n = len(actual)
    return Finding(True, subject, f"{n} file{'s' if n != 1 else ''} match, root {root}")


def file_differences(expected: dict[str, str], actual: dict[str, str]) -> list[str]:
    """'2 changed files (a, b)', '1 extra file (c)', '1 missing file (d)', in that order."""
    changed = sorted(n for n in expected.keys() & actual.keys() if expected[n] != actual[n])
    extra = sorted(actual.keys() - expected.keys())
    missing = sorted(expected.keys() - actual.keys())
    return [f"{_plural(len(names), label + ' file')} ({_names(names)})"
            for label, names in (("changed", changed), ("extra", extra),
                                 ("missing", missing)) if names]


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:MAX_NAMES])
    return shown + (f" and {len(names) - MAX_NAMES} more" if len(names) > MAX_NAMES else "")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
