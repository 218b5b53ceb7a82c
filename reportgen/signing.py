"""Sign a certificate: an in-toto Statement v1 in a DSSE envelope, signed with Ed25519.

Why these formats: in-toto Statements and DSSE envelopes are what supply-chain tools
(Sigstore, SLSA, OpenSSF model signing) already read, so a regulator can check a
certificate with tools other than ours. The statement's subjects are every checkpoint, named
by its model-signing root digest, and the certificate JSON itself; its predicate repeats the
verdict and spec digest so that the signed payload alone says what was certified.

The predicate also names the views the signer vouches for (``views``: the SHA-256 of
``certificate.html``, ``model-card.md`` and ``certificate.pdf``), so that ``verify`` can say
the pages a reader sees are the ones signed. The PDF's digest is of the PDF as rendered,
before this signature is appended to it as an incremental update (:mod:`reportgen.pdfsign`):
a file cannot carry a signature over its own final bytes.

Keys are PEM files (PKCS#8 private, SubjectPublicKeyInfo public). A key id is the one
securesystemslib (and so in-toto and python-tuf) computes by default for the same key: the
SHA-256 of the canonical JSON ``{"keytype": "ed25519", "keyval": {"public": HEX}, "scheme":
"ed25519"}``, so ``Envelope.verify`` with ``SSlibKey.from_pem(public.pem)`` finds our
signature without being told the key id. The signer's public key also travels inside the
signed predicate: without ``--public-key`` a verifier can still check that nothing was edited
after signing, but not who signed (anyone can make a key), and ``verify`` says so.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .certificate import Certificate
from .errors import InputError, ReportgenError

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://reportgen.dev/alignment-certificate/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
SIGNATURE_FILENAME = "certificate.sig.json"
CERTIFICATE_SUBJECT = "certificate.json"
PRIVATE_KEY_FILENAME = "private.pem"
PUBLIC_KEY_FILENAME = "public.pem"


class KeyFileError(InputError):
    """A key file that is missing, unreadable, not PEM, not Ed25519, or already exists."""


class SignatureError(ReportgenError):
    """A signature envelope that does not verify: the certificate cannot be trusted."""

    exit_code = 1


@dataclass(frozen=True)
class KeyPair:
    private: Path
    public: Path
    keyid: str


@dataclass(frozen=True)
class SignedStatement:
    """A statement whose signature verified, and which key vouched for it."""

    statement: dict[str, Any]
    keyid: str
    pinned: bool  # True when checked against a key the user gave, not the embedded one


# -------------------------------------------------------------------------------- keys


def generate_keypair(out_dir: Path) -> KeyPair:
    """Write a new Ed25519 key pair into ``out_dir``; never overwrites an existing key.

    The private key file is created with mode 0600 and O_EXCL, so a second ``keygen`` into the
    same folder cannot silently replace a key that certificates were already signed with.
    """
    out_dir = Path(out_dir)
    private_path, public_path = out_dir / PRIVATE_KEY_FILENAME, out_dir / PUBLIC_KEY_FILENAME
    for p in (private_path, public_path):
        if p.exists() or p.is_symlink():
            raise KeyFileError(f"{p}: already exists; refusing to overwrite a key "
                               "(choose another --out folder)")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise KeyFileError(f"{out_dir}: cannot create the key folder ({e.strerror})") from None
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    _write_new(private_path, private_pem, 0o600)
    _write_new(public_path, public_pem(key.public_key()), 0o644)
    return KeyPair(private_path, public_path, keyid(key.public_key()))


def _write_new(path: Path, data: bytes, mode: int) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise KeyFileError(f"{path}: already exists; refusing to overwrite a key "
                           "(choose another --out folder)") from None
    except OSError as e:
        raise KeyFileError(f"{path}: cannot write the key ({e.strerror})") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def keyid(key: Ed25519PublicKey) -> str:
    """securesystemslib's default key id: SHA-256 (hex) of the key's canonical JSON."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    sslib = {"keytype": "ed25519", "keyval": {"public": raw.hex()}, "scheme": "ed25519"}
    return hashlib.sha256(json.dumps(sslib, sort_keys=True, separators=(",", ":"))
                          .encode("utf-8")).hexdigest()


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """An unencrypted PKCS#8 Ed25519 private key from a PEM file."""
    data = _read_key_file(Path(path), "private")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise KeyFileError(f"{path}: the private key is encrypted; reportgen needs an "
                           "unencrypted PKCS#8 PEM key") from None
    except ValueError:
        raise KeyFileError(f"{path}: not a PEM private key (expected the private.pem "
                           "written by 'reportgen keygen')") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: expected an Ed25519 key, got {_kind(key)}")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """An Ed25519 public key from a SubjectPublicKeyInfo PEM file."""
    data = _read_key_file(Path(path), "public")
    return parse_public_pem(data, str(path))


def parse_public_pem(data: bytes, where: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        raise KeyFileError(f"{where}: not a PEM public key (expected the public.pem "
                           "written by 'reportgen keygen')") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{where}: expected an Ed25519 key, got {_kind(key)}")
    return key


def _read_key_file(path: Path, which: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"{path}: no such {which} key file") from None
    except IsADirectoryError:
        raise KeyFileError(f"{path}: is a folder; expected a {which} key PEM file") from None
    except OSError as e:
        raise KeyFileError(f"{path}: cannot read the {which} key ({e.strerror})") from None


def _kind(key: object) -> str:
    return type(key).__name__.lstrip("_").replace("PrivateKey", "").replace("PublicKey", "")


# --------------------------------------------------------------------------- statement


def model_subjects(models: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One subject per checkpoint: its name and root digest under the algorithm it records,
    and one per adapter (``NAME/adapter``), since a model with an adapter is both.

    Derived variants (an int8 copy) have no bytes on disk; they are named by the digest the
    certificate records for them (``sha256-derived``), which pins their source and recipe.
    """
    out = []
    for m in models:
        for part, adapter in (("digest", False), ("adapter", True)):
            if m.get(part):
                out.append({"name": subject_name(m["name"], adapter),
                            "digest": {m[part]["algorithm"]: m[part]["root"]}})
    return out


def subject_name(model: str, adapter: bool = False) -> str:
    """The statement's subject name of a model's checkpoint, or of its adapter."""
    return f"{model}/adapter" if adapter else model


def build_statement(cert: Certificate, signer: Ed25519PublicKey,
                    views: dict[str, str] | None = None) -> dict[str, Any]:
    """The in-toto Statement v1 this tool signs for ``cert``; ``views``: file name → SHA-256
    of each view rendered with it."""
    data = cert.data
    audit = data.get("audit") or {}
    subjects = model_subjects(data.get("models") or [])
    subjects.append({"name": CERTIFICATE_SUBJECT, "digest": {"sha256": cert.digest}})
    return {
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "verdict": data.get("verdict"),
            "audit": {k: audit.get(k) for k in ("name", "release", "created")},
            "spec": {"digest": _digest_set((data.get("spec") or {}).get("digest"))},
            "schemaVersion": data.get("schema_version"),
            "tool": {k: (data.get("tool") or {}).get(k) for k in ("name", "version")},
            "signer": {"keyid": keyid(signer), "publicKey": public_pem(signer).decode("ascii")},
            **({"views": {n: {"sha256": d} for n, d in sorted(views.items())}} if views else {}),
        },
    }


def _digest_set(digest: str | None) -> dict[str, str]:
    """'sha256:ab…' or a bare hex SHA-256 as an in-toto DigestSet."""
    if not digest:
        return {}
    algorithm, sep, value = digest.partition(":")
    return {algorithm: value} if sep else {"sha256": digest}


# -------------------------------------------------------------------------------- DSSE


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what is actually signed."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def sign_statement(statement: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """A DSSE envelope holding ``statement``, signed with ``key`` (Ed25519 is deterministic)."""
    payload = json.dumps(statement, sort_keys=True, separators=(",", ":"),
                         ensure_ascii=False).encode("utf-8")
    sig = key.sign(pae(PAYLOAD_TYPE, payload))
    return {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode("ascii"),
        "signatures": [{"keyid": keyid(key.public_key()),
                        "sig": base64.b64encode(sig).decode("ascii")}],
    }


def sign_certificate(cert: Certificate, key_path: Path,
                     views: dict[str, bytes] | None = None) -> bytes:
    """The bytes of ``certificate.sig.json`` for ``cert``, signed with the key at ``key_path``.

    The models signed are ``cert.data["models"]``: their digests were computed by the audit,
    so signing needs no checkpoint on disk. ``views`` (file name → bytes, the PDF without its
    signature) are named by digest in the predicate.
    """
    key = load_private_key(key_path)
    digests = {name: hashlib.sha256(data).hexdigest() for name, data in (views or {}).items()}
    envelope = sign_statement(build_statement(cert, key.public_key(), digests), key)
    return (json.dumps(envelope, indent=2) + "\n").encode("utf-8")


def open_envelope(raw: bytes, public_key: Ed25519PublicKey | None,
                  where: str = SIGNATURE_FILENAME) -> SignedStatement:
    """Check the envelope's signature and return its statement; raise SignatureError if not.

    With ``public_key`` the signature must come from that key. Without it, the key embedded
    in the statement is used: that proves nothing was edited after signing, not who signed.
    """
    envelope = _parse_json(raw, where, "a DSSE signature envelope")
    try:
        payload_type = envelope["payloadType"]
        payload = base64.b64decode(envelope["payload"], validate=True)
        sigs = [(s.get("keyid", ""), base64.b64decode(s["sig"], validate=True))
                for s in envelope["signatures"]]
    except (KeyError, TypeError, AttributeError, binascii.Error):
        raise SignatureError(f"{where}: not a DSSE envelope (payloadType, payload and "
                             "signatures expected)") from None
    if payload_type != PAYLOAD_TYPE:
        raise SignatureError(f"{where}: payloadType is {payload_type!r}; expected "
                             f"{PAYLOAD_TYPE!r}")
    statement = _parse_json(payload, where, "an in-toto statement")
    pinned = public_key is not None
    key = public_key if pinned else _embedded_key(statement, where)
    kid = keyid(key)
    if not any(_valid(key, sig, pae(payload_type, payload)) for _, sig in sigs):
        whose = "the given public key" if pinned else "the key embedded in the statement"
        raise SignatureError(f"{where}: the signature does not verify with {whose} "
                             f"(key id {kid[:16]}…)")
    _check_statement(statement, where)
    return SignedStatement(statement, kid, pinned)


def _valid(key: Ed25519PublicKey, sig: bytes, message: bytes) -> bool:
    try:
        key.verify(sig, message)
    except InvalidSignature:
        return False
    return True


def _embedded_key(statement: Any, where: str) -> Ed25519PublicKey:
    try:
        pem = statement["predicate"]["signer"]["publicKey"].encode("ascii")
    except (KeyError, TypeError, AttributeError, UnicodeEncodeError):
        raise SignatureError(f"{where}: the statement names no signer key; "
                             "pass --public-key") from None
    try:
        return parse_public_pem(pem, where)
    except KeyFileError as e:
        raise SignatureError(str(e)) from None


def _check_statement(statement: Any, where: str) -> None:
    if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE:
        raise SignatureError(f"{where}: the payload is not an in-toto Statement v1")
    if statement.get("predicateType") != PREDICATE_TYPE:
        raise SignatureError(f"{where}: predicateType is {statement.get('predicateType')!r}; "
                             f"expected {PREDICATE_TYPE!r}")
    if not isinstance(statement.get("subject"), list):
        raise SignatureError(f"{where}: the statement has no subject list")


def _parse_json(raw: bytes, where: str, what: str) -> Any:
    from .untrusted import BadJSON, parse_json

    try:
        return parse_json(raw)
    except BadJSON as e:
        raise SignatureError(f"{where}: not {what} ({e})") from None


def view_digests(statement: dict[str, Any]) -> dict[str, str]:
    """View file name → signed SHA-256, from a verified statement ({} when it names none)."""
    predicate = statement.get("predicate")
    views = predicate.get("views") if isinstance(predicate, dict) else None
    if not isinstance(views, dict):
        return {}
    return {str(n): d["sha256"] for n, d in views.items()
            if isinstance(d, dict) and isinstance(d.get("sha256"), str)}


def subject_digests(statement: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Subject name → DigestSet, from a verified statement."""
    out: dict[str, dict[str, str]] = {}
    for s in statement.get("subject") or []:
        if isinstance(s, dict) and isinstance(s.get("digest"), dict):
            out[str(s.get("name"))] = s["digest"]
    return out
