"""Verify a certificate: its signature and signer, its JSON bytes, its views, and the
checkpoints it names.

Why each step: the signature proves the statement was not changed since signing, and the
pinned public key proves who signed it (without one, anyone could have: a key made a minute
ago verifies its own signature, so that alone is never "verified"); the statement's
``certificate.json`` subject proves the JSON is the one that was signed (compared byte for
byte, so even a whitespace edit shows); the views beside it (HTML, model card, PDF pages) are
held to that JSON (:mod:`reportgen.verify_views`); and re-hashing a model folder, file by file,
against the per-file digests in that now-trusted JSON says exactly which files were changed,
added or removed, where a root digest alone could only say "different". A folder the loader
would read unhashed bytes from (a link, a config naming an ignored or outside file) is
refused, as ``audit`` refuses it.

Every check runs even after one fails, so a single run reports everything that differs.
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .certificate import FileDigest
from .digest import file_sha256, list_files, root_digest
from .errors import InputError
from .loadfiles import check_references
from .pdfattach import JSON_NAME, read_attachments
from .signing import (
    CERTIFICATE_SUBJECT,
    SIGNATURE_FILENAME,
    SignatureError,
    SignedStatement,
    load_public_key,
    open_envelope,
    subject_digests,
    subject_name,
)
from .untrusted import BadJSON, parse_json
from .verify_views import PDF, check_view, views_beside

MAX_NAMES = 5
ADAPTER = "adapter"  # the certificate's key for a model's adapter digest


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
    views: int = 0  # views checked (HTML, model card, PDF)
    signer_checked: bool = True  # False when the embedded key was trusted on request

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
    views: dict[str, Path] = field(default_factory=dict)  # role (certificate.pdf …) → file


def verify(target: Path, public_key: Path | None = None,
           models: dict[str, Path] | None = None,
           adapters: dict[str, Path] | None = None,
           trust_embedded_key: bool = False) -> VerifyReport:
    """Verify a certificate folder, certificate JSON file or PDF, the views beside it, and
    ``models`` folders and the ``adapters`` of models that have one (a model with an adapter
    is its base folder plus its adapter folder: checking only one of them is a failed
    finding). Without ``public_key`` the signer is not checked, which fails unless
    ``trust_embedded_key`` accepts whoever signed.

    Raises :class:`InputError` for bad arguments (a missing path, an unknown model name, a
    model folder the loader would read unhashed bytes from); everything the certificate,
    views or checkpoints get wrong becomes a failed :class:`Finding`.
    """
    if public_key is not None and trust_embedded_key:
        raise InputError("--trust-embedded-key: give it or --public-key, not both")
    key = load_public_key(public_key) if public_key is not None else None
    bundle = load_bundle(Path(target))
    data = _parse_certificate(bundle)
    signed, sig_finding = _check_signature(bundle, key, trust_embedded_key)
    findings = [sig_finding]
    statement = signed.statement if signed else None
    json_finding = _check_json_digest(bundle, statement)
    findings.append(json_finding)
    for role, path in bundle.views.items():
        findings.append(_check_view(role, path, bundle, statement if json_finding.ok else None))
    cert_models = _cert_models(data)
    for name, folder in (models or {}).items():
        model = _find_model(cert_models, name, folder)
        findings.append(check_model(model, Path(folder), _signed_root(statement, model),
                                    where=f"--model {name}={folder}"))
    findings += check_adapters(cert_models, models or {}, adapters or {}, statement)
    return VerifyReport(bundle.source, findings, len(bundle.views), key is not None)


def check_adapters(cert_models: list[dict[str, Any]], models: dict[str, Path],
                   adapters: dict[str, Path], statement: dict[str, Any] | None
                   ) -> list[Finding]:
    """Re-hash each given adapter folder; name every half of an adapter model left out."""
    findings = []
    by_name = {str(m.get("name")): m for m in cert_models}
    for name, folder in adapters.items():
        model = by_name.get(name) or _find_model(cert_models, name, folder, "--adapter")
        if not (model.get("adapter") or {}).get("files"):
            raise InputError(f"--adapter {name}={folder}: the certificate records no adapter "
                             f"for {name!r}")
        if not Path(folder).is_dir():
            raise InputError(f"--adapter {name}={folder}: not a folder")
        findings.append(check_model(model, Path(folder),
                                    _signed_root(statement, model, ADAPTER), ADAPTER,
                                    f"--adapter {name}={folder}"))
        if name not in models:
            findings.append(Finding(False, f"model {name}", "not checked: give --model "
                                    f"{name}=DIR for the folder its adapter applies to"))
    for name in models:
        adapter = (by_name.get(name) or {}).get("adapter")
        if adapter and name not in adapters:
            findings.append(Finding(False, f"adapter {name}", (
                f"not checked: {name} is its base folder with the adapter "
                f"{adapter.get('algorithm')}:{adapter.get('root')}; give --adapter "
                f"{name}=DIR to re-hash the adapter too")))
    return findings


# ------------------------------------------------------------------------------ loading


def load_bundle(target: Path) -> Bundle:
    """Read a folder (certificate.json + certificate.sig.json, else certificate.pdf),
    a certificate JSON file (signature beside it) or a PDF (both attached)."""
    if target.is_dir():
        if (target / JSON_NAME).is_file() or not (target / PDF).is_file():
            return _json_bundle(target / JSON_NAME)
        return replace(_pdf_bundle(target / PDF), views=views_beside(target))
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
                  f"no {SIGNATURE_FILENAME} next to {path.name}; the certificate is not signed",
                  views_beside(path.parent))


def _pdf_bundle(path: Path) -> Bundle:
    files = read_attachments(path)
    if JSON_NAME not in files:
        raise InputError(f"{path}: no {JSON_NAME} is attached to this PDF, so it cannot be "
                         "verified alone (re-render it with 'reportgen render')")
    return Bundle(f"{path} (attached {JSON_NAME})", files[JSON_NAME],
                  files.get(SIGNATURE_FILENAME),
                  f"no {SIGNATURE_FILENAME} is attached to {path.name}; "
                  "the certificate is not signed", {PDF: path})


# ------------------------------------------------------------------------------- checks


def _check_signature(bundle: Bundle, key: Ed25519PublicKey | None, trust_embedded: bool
                     ) -> tuple[SignedStatement | None, Finding]:
    """The statement, when its signature is valid (with the embedded key if none is pinned,
    so the other checks still run), and whether the signature and its signer hold."""
    if bundle.signature is None:
        return None, Finding(False, "signature", bundle.missing_signature)
    try:
        signed = open_envelope(bundle.signature, key)
    except SignatureError as e:
        return None, Finding(False, "signature", str(e))
    if signed.pinned:
        return signed, Finding(True, "signature", f"valid, key id {signed.keyid} (the key "
                                                  "given with --public-key)")
    if trust_embedded:
        return signed, Finding(True, "signature", f"valid, key id {signed.keyid} (the key "
                               "embedded in the statement, accepted with --trust-embedded-key: "
                               "who signed was NOT checked)")
    return signed, Finding(False, "signature", f"valid with the key embedded in the statement "
                           f"(key id {signed.keyid}), but who signed was not checked: anyone "
                           "can make a key and sign; pass --public-key with the signer's "
                           "public key (or --trust-embedded-key to accept any signer)")


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


def _check_view(role: str, path: Path, bundle: Bundle, statement: dict[str, Any] | None
                ) -> Finding:
    """A view against the signed JSON; not checked when the JSON itself is not the signed
    one (there is nothing trusted to hold the view to)."""
    subject = path.name
    if statement is None:
        return Finding(False, subject, "not checked: the certificate JSON is not verified")
    ok, message = check_view(role, path, statement, bundle.certificate, bundle.signature)
    return Finding(ok, subject, message)


def _cert_models(data: Any) -> list[dict[str, Any]]:
    try:
        return [m for m in data["models"] if isinstance(m, dict)]
    except (KeyError, TypeError):
        return []


def _find_model(models: list[dict[str, Any]], name: str, folder: Path,
                flag: str = "--model") -> dict[str, Any]:
    by_name = {str(m.get("name")): m for m in models}
    if name not in by_name:
        have = ", ".join(by_name) or "none readable"
        close = difflib.get_close_matches(name, list(by_name), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise InputError(f"{flag} {name}={folder}: the certificate has no model {name!r} "
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


def _signed_root(statement: dict[str, Any] | None, model: dict[str, Any],
                 part: str = "digest") -> str | None:
    if statement is None:
        return None
    name = subject_name(str(model["name"]), part == ADAPTER)
    return subject_digests(statement).get(name, {}).get("sha256")


def check_model(model: dict[str, Any], folder: Path, signed_root: str | None,
                part: str = "digest", where: str = "--model") -> Finding:
    """Re-hash ``folder`` and compare it, file by file, with the certificate's digests
    (``part``: ``digest`` for the model's folder, ``adapter`` for its adapter's).

    Raises :class:`ModelError` (exit 2) for a folder with links or whose configs name a file
    the digest does not cover: those bytes would be loaded but never compared.
    """
    subject = f"{'adapter' if part == ADAPTER else 'model'} {model['name']}"
    record = model[part]
    expected = {f["name"]: f["digest"] for f in record["files"]}
    names = list_files(folder)
    check_references(folder, names, where, str(folder))
    actual = {n: file_sha256(folder / n) for n in names}
    diff = file_differences(expected, actual)
    root = root_digest([FileDigest(n, d) for n, d in actual.items()]) if actual else ""
    recorded = record["root"]
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
