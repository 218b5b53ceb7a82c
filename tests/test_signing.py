"""Keys, in-toto statements and DSSE envelopes, checked against the specs' own rules."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from pathlib import Path
from typing import Any

import pytest
from certfactory import make_certificate
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from reportgen.api import Certificate
from reportgen.cli import commands as cli
from reportgen.core.records import Digest
from reportgen.release.signing import (
    PAYLOAD_TYPE,
    PREDICATE_TYPE,
    KeyFileError,
    SignatureError,
    generate_keypair,
    keyid,
    load_private_key,
    open_envelope,
    pae,
    sign_certificate,
)
from reportgen.spec.digest import derived_digest


def run_cli(argv: list[str]) -> int:
    return cli.main(argv)


@pytest.fixture
def cert() -> Certificate:
    return Certificate(make_certificate())


@pytest.fixture
def keys(tmp_path: Path):
    return generate_keypair(tmp_path / "keys")


def _pem_body(path: Path) -> bytes:
    """DER from a PEM file, decoded by hand (no cryptography involved)."""
    lines = path.read_text().strip().splitlines()
    return base64.b64decode("".join(lines[1:-1]))


def _sslib_keyid(public: Path) -> str:
    """securesystemslib's default key id, by hand: SHA-256 of the key's canonical JSON."""
    raw_hex = _pem_body(public)[12:].hex()  # an Ed25519 SPKI is 12 header bytes + the key
    canonical = '{"keytype":"ed25519","keyval":{"public":"' + raw_hex + '"},"scheme":"ed25519"}'
    return hashlib.sha256(canonical.encode()).hexdigest()


def _sslib_key(signer: Any, public: Path) -> Any:
    """securesystemslib's key for a PEM file, made as its docs show: no key id passed."""
    return signer.SSlibKey.from_crypto(serialization.load_pem_public_key(public.read_bytes()))


def _payload(envelope: dict) -> dict:
    return json.loads(base64.b64decode(envelope["payload"]))


def test_pae_is_the_dsse_v1_encoding() -> None:
    # The example from the DSSE protocol description.
    assert pae("http://example.com/HelloWorld", b"hello world") == \
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    # Lengths are byte lengths, not character counts.
    assert pae("t", "é".encode()) == b"DSSEv1 1 t 2 " + "é".encode()


def test_keygen_writes_pem_pair_and_refuses_to_overwrite(tmp_path: Path, capsys) -> None:
    out = tmp_path / "keys"
    assert run_cli(["keygen", "--out", str(out)]) == 0
    private, public = out / "private.pem", out / "public.pem"
    assert private.read_text().startswith("-----BEGIN PRIVATE KEY-----\n")
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----\n")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    kid = _sslib_keyid(public)
    assert capsys.readouterr().out.splitlines() == [
        f"private key: {private} (keep it secret; sign with --sign {private})",
        f"public key:  {public} (give it to whoever verifies)",
        f"key id:      {kid}",
    ]
    before = private.read_bytes()
    assert run_cli(["keygen", "--out", str(out)]) == 2
    assert capsys.readouterr().err == (
        f"error: {private}: already exists; refusing to overwrite a key "
        "(choose another --out folder)\n")
    assert private.read_bytes() == before


def test_keyid_is_securesystemslib_default_keyid(keys) -> None:
    # An Ed25519 SubjectPublicKeyInfo is 12 bytes of header then the 32-byte key.
    der = _pem_body(keys.public)
    assert len(der) == 44 and der[:12].hex() == "302a300506032b6570032100"
    assert keys.keyid == _sslib_keyid(keys.public)
    signer = pytest.importorskip("securesystemslib.signer")
    assert keys.keyid == _sslib_key(signer, keys.public).keyid


def test_statement_names_every_checkpoint_and_the_certificate(cert, keys) -> None:
    envelope = json.loads(sign_certificate(cert, keys.private))
    statement = _payload(envelope)
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == PREDICATE_TYPE
    json_sha = hashlib.sha256(cert.to_json().encode("utf-8")).hexdigest()
    assert statement["subject"] == [
        {"name": m["name"], "digest": {"sha256": m["digest"]["root"]}}
        for m in cert.data["models"]
    ] + [{"name": "certificate.json", "digest": {"sha256": json_sha}}]
    predicate = statement["predicate"]
    assert predicate["verdict"] == "FAIL"
    assert predicate["spec"] == {"digest": {"sha256": cert.data["spec"]["digest"]}}
    assert predicate["audit"] == {"name": "support-bot fine-tune", "release": "v1.3",
                                  "created": "2025-03-14T09:26:53Z"}
    assert predicate["signer"]["keyid"] == keys.keyid
    assert predicate["signer"]["publicKey"] == keys.public.read_text()


def test_derived_variant_is_named_by_its_recorded_algorithm(keys) -> None:
    data = make_certificate()
    floor = next(m for m in data["models"] if m["role"] == "noise_floor")
    d = derived_digest(Digest("sha256", data["models"][0]["digest"]["root"]), "int8")
    floor["digest"] = {"algorithm": d.algorithm, "root": d.root, "files": []}
    statement = _payload(json.loads(sign_certificate(Certificate(data), keys.private)))
    assert {"name": "base-int8", "digest": {"sha256-derived": d.root}} in statement["subject"]


def test_signature_is_ed25519_over_pae_checked_independently(cert, keys) -> None:
    envelope = json.loads(sign_certificate(cert, keys.private))
    assert envelope["payloadType"] == PAYLOAD_TYPE == "application/vnd.in-toto+json"
    assert [s["keyid"] for s in envelope["signatures"]] == [keys.keyid]
    payload = base64.b64decode(envelope["payload"])
    message = b"DSSEv1 %d application/vnd.in-toto+json %d " % (28, len(payload)) + payload
    raw_key = Ed25519PublicKey.from_public_bytes(_pem_body(keys.public)[12:])
    raw_key.verify(base64.b64decode(envelope["signatures"][0]["sig"]), message)  # no raise


def test_securesystemslib_verifies_the_envelope_with_its_defaults(cert, keys) -> None:
    """The call a third party makes, with no key id passed: it must find our signature."""
    dsse = pytest.importorskip("securesystemslib.dsse")
    signer = pytest.importorskip("securesystemslib.signer")
    envelope = dsse.Envelope.from_dict(json.loads(sign_certificate(cert, keys.private)))
    key = _sslib_key(signer, keys.public)
    assert list(envelope.verify([key], 1)) == [keys.keyid]
    exceptions = pytest.importorskip("securesystemslib.exceptions")
    other = generate_keypair(keys.public.parent.parent / "other")
    with pytest.raises(exceptions.VerificationError):
        envelope.verify([_sslib_key(signer, other.public)], 1)


def test_signing_is_deterministic(cert, keys) -> None:
    assert sign_certificate(cert, keys.private) == sign_certificate(cert, keys.private)


def test_open_envelope_with_another_key_fails(cert, keys, tmp_path: Path) -> None:
    other = generate_keypair(tmp_path / "other")
    raw = sign_certificate(cert, keys.private)
    other_key = load_private_key(other.private).public_key()
    with pytest.raises(SignatureError) as e:
        open_envelope(raw, other_key)
    assert str(e.value) == ("certificate.sig.json: the signature does not verify with the "
                            f"given public key (key id {other.keyid[:16]}…)")
    signed = open_envelope(raw, None)
    assert (signed.keyid, signed.pinned) == (keys.keyid, False)
    assert keyid(load_private_key(keys.private).public_key()) == keys.keyid


def test_edited_payload_fails_even_with_the_embedded_key(cert, keys) -> None:
    envelope = json.loads(sign_certificate(cert, keys.private))
    statement = _payload(envelope)
    statement["predicate"]["verdict"] = "PASS"
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    with pytest.raises(SignatureError) as e:
        open_envelope(json.dumps(envelope).encode(), None)
    assert str(e.value) == ("certificate.sig.json: the signature does not verify with the key "
                            f"embedded in the statement (key id {keys.keyid[:16]}…)")


def test_bad_key_files_say_what_is_wrong(tmp_path: Path) -> None:
    not_pem = tmp_path / "notes.txt"
    not_pem.write_text("hello")
    with pytest.raises(KeyFileError) as e:
        load_private_key(not_pem)
    assert str(e.value) == (f"{not_pem}: not a PEM private key (expected the private.pem "
                            "written by 'reportgen keygen')")
    with pytest.raises(KeyFileError) as e:
        load_private_key(tmp_path / "nope.pem")
    assert str(e.value) == f"{tmp_path / 'nope.pem'}: no such private key file"
