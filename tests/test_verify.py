"""sign → verify, and every kind of tampering named; the PDF verified alone."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from certfactory import make_certificate, small_pdf

from reportgen.api import Certificate
from reportgen.cli import commands as cli
from reportgen.release.pdfattach import embedded_files
from reportgen.release.pdfsign import append_signature
from reportgen.release.signing import generate_keypair, sign_certificate
from reportgen.spec.digest import digest_folder


def run_cli(argv: list[str]) -> int:
    return cli.main(argv)


def _write_checkpoint(folder: Path, seed: str) -> None:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2", "seed": seed}))
    (folder / "model.safetensors").write_bytes(hashlib.sha256(seed.encode()).digest() * 64)
    (folder / "tokenizer.json").write_text('{"version": "1.0"}')
    (folder / "sub").mkdir()
    (folder / "sub" / "extra.txt").write_text("nested file")


@pytest.fixture
def signed(tmp_path: Path) -> dict[str, Any]:
    """An audit folder signed with a fresh key, over two real checkpoint folders."""
    data = make_certificate()
    paths = {}
    for m in data["models"][:2]:
        paths[m["name"]] = tmp_path / "ckpt" / m["name"]
        _write_checkpoint(paths[m["name"]], m["name"])
        m["digest"] = asdict(digest_folder(paths[m["name"]]))
    cert = Certificate(data)
    keys = generate_keypair(tmp_path / "keys")
    out = tmp_path / "out"
    out.mkdir()
    (out / "certificate.json").write_text(cert.to_json(), encoding="utf-8")
    (out / "certificate.sig.json").write_bytes(sign_certificate(cert, keys.private))
    return {"out": out, "public": keys.public, "private": keys.private, "keyid": keys.keyid,
            **paths}


def _verify(signed: dict[str, Any], *extra: str, target: Path | None = None) -> list[str]:
    return ["verify", str(target or signed["out"]), "--public-key", str(signed["public"]),
            "--model", f"base={signed['base']}", "--model", f"finetuned={signed['finetuned']}",
            *extra]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _flip_byte(path: Path, at: int) -> None:
    blob = bytearray(path.read_bytes())
    blob[at] ^= 0x01
    path.write_bytes(bytes(blob))


def _root(folder: Path) -> str:
    return digest_folder(folder).root


def test_sign_then_verify_passes(signed, capsys) -> None:
    assert run_cli(_verify(signed)) == 0
    out = signed["out"]
    assert capsys.readouterr().out.splitlines() == [
        f"verifying {out / 'certificate.json'}",
        f"ok: signature: valid, key id {signed['keyid']} (the key given with --public-key)",
        f"ok: certificate.json: sha256 {_sha(out / 'certificate.json')} matches the signed "
        "digest",
        f"ok: model base: 4 files match, root {_root(signed['base'])}",
        f"ok: model finetuned: 4 files match, root {_root(signed['finetuned'])}",
        "verified: the signature is valid and the certificate is unchanged, and 2 checkpoint "
        "folders match it",
    ]


def test_one_byte_changed_in_the_json_fails(signed, capsys) -> None:
    path = signed["out"] / "certificate.json"
    signed_sha = _sha(path)
    text = path.read_bytes()
    _flip_byte(path, text.index(b"support-bot"))  # 's' -> 'r'
    assert run_cli(_verify(signed)) == 1
    lines = capsys.readouterr().out.splitlines()
    assert (f"FAIL: certificate.json: sha256 {_sha(path)} differs from the signed {signed_sha} "
            "(the certificate was edited after signing)") in lines
    assert lines[-1] == "verification failed: 1 problem"


def test_one_byte_changed_in_a_checkpoint_file_fails(signed, capsys) -> None:
    _flip_byte(signed["finetuned"] / "model.safetensors", 100)
    assert run_cli(_verify(signed)) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2:] == ["FAIL: model finetuned: 1 changed file (model.safetensors)",
                          "verification failed: 1 problem"]


def test_a_file_added_to_a_checkpoint_fails(signed, capsys) -> None:
    (signed["finetuned"] / "sub" / "notes.txt").write_text("added later")
    assert run_cli(_verify(signed)) == 1
    assert "FAIL: model finetuned: 1 extra file (sub/notes.txt)" in \
        capsys.readouterr().out.splitlines()


def test_missing_changed_and_extra_files_are_all_named(signed, capsys) -> None:
    base = signed["base"]
    (base / "tokenizer.json").unlink()
    (base / "config.json").write_text("{}")
    (base / "sub" / "extra.txt").write_text("edited")
    (base / "a.bin").write_bytes(b"1")
    assert run_cli(_verify(signed)) == 1
    assert ("FAIL: model base: 2 changed files (config.json, sub/extra.txt); 1 extra file "
            "(a.bin); 1 missing file (tokenizer.json)") in capsys.readouterr().out.splitlines()


def test_git_files_are_ignored_as_model_signing_ignores_them(signed, capsys) -> None:
    (signed["base"] / ".git").mkdir()
    (signed["base"] / ".git" / "HEAD").write_text("ref: refs/heads/main")
    (signed["base"] / ".gitattributes").write_text("*.safetensors filter=lfs")
    assert run_cli(_verify(signed)) == 0


def test_wrong_public_key_fails_the_signature(signed, tmp_path: Path, capsys) -> None:
    other = generate_keypair(tmp_path / "other")
    argv = _verify(signed)
    argv[argv.index("--public-key") + 1] = str(other.public)
    assert run_cli(argv) == 1
    lines = capsys.readouterr().out.splitlines()
    sha = _sha(signed["out"] / "certificate.json")
    assert lines[1:3] == [
        "FAIL: signature: certificate.sig.json: the signature does not verify with the given "
        f"public key (key id {other.keyid[:16]}…)",
        f"FAIL: certificate.json: sha256 {sha} (not checked: no valid signature)",
    ]
    assert lines[-1] == "verification failed: 2 problems"


def test_a_signer_nobody_checked_is_not_verified(signed, tmp_path: Path, capsys) -> None:
    """The attack: the vendor signs with a key made a minute ago; without --public-key the
    signature verifies with its own embedded key, which proves nothing about who signed."""
    forger = generate_keypair(tmp_path / "forger")
    cert = Certificate(json.loads((signed["out"] / "certificate.json").read_text()))
    (signed["out"] / "certificate.sig.json").write_bytes(sign_certificate(cert, forger.private))
    assert run_cli(["verify", str(signed["out"])]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == (
        f"FAIL: signature: valid with the key embedded in the statement (key id "
        f"{forger.keyid}), but who signed was not checked: anyone can make a key and sign; "
        "pass --public-key with the signer's public key (or --trust-embedded-key to accept "
        "any signer)")
    assert lines[-1] == "verification failed: 1 problem"
    # the pinned key shows the forgery for what it is
    assert run_cli(["verify", str(signed["out"]), "--public-key", str(signed["public"])]) == 1


def test_trust_embedded_key_is_an_explicit_opt_in_and_says_so(signed, capsys) -> None:
    assert run_cli(["verify", str(signed["out"]), "--trust-embedded-key"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == (f"ok: signature: valid, key id {signed['keyid']} (the key embedded in "
                        "the statement, accepted with --trust-embedded-key: who signed was NOT "
                        "checked)")
    assert lines[-1] == ("verified: the signature is valid and the certificate is unchanged; "
                         "who signed was NOT checked")
    argv = ["verify", str(signed["out"]), "--trust-embedded-key", "--public-key",
            str(signed["public"])]
    assert run_cli(argv) == 2
    assert capsys.readouterr().err == ("error: --trust-embedded-key: give it or --public-key, "
                                       "not both\n")


def test_an_unsigned_certificate_fails(signed, capsys) -> None:
    (signed["out"] / "certificate.sig.json").unlink()
    assert run_cli(_verify(signed)) == 1
    assert capsys.readouterr().out.splitlines()[1] == (
        "FAIL: signature: no certificate.sig.json next to certificate.json; "
        "the certificate is not signed")


@pytest.mark.parametrize(("model", "message"), [
    ("finetune={p}", "--model finetune={p}: the certificate has no model 'finetune' (it has: "
                     "base, finetuned, lora, base-int8). Did you mean 'finetuned'?"),
    ("finetuned", "--model finetuned: expected NAME=PATH (a model name from the certificate "
                  "and its checkpoint folder)"),
    ("finetuned={p}/nope", "--model finetuned={p}/nope: not a folder"),
])
def test_bad_model_arguments_exit_2(signed, capsys, model: str, message: str) -> None:
    p = str(signed["finetuned"])
    argv = ["verify", str(signed["out"]), "--model", model.format(p=p)]
    assert run_cli(argv) == 2
    assert capsys.readouterr().err == f"error: {message.format(p=p)}\n"


def test_a_derived_variant_cannot_be_rehashed(tmp_path: Path, capsys) -> None:
    data = make_certificate()
    floor = next(m for m in data["models"] if m["role"] == "noise_floor")
    floor["digest"] = {"algorithm": "sha256-derived", "root": "ab" * 32, "files": []}
    (tmp_path / "certificate.json").write_text(Certificate(data).to_json())
    assert run_cli(["verify", str(tmp_path), "--model", f"base-int8={tmp_path}"]) == 2
    assert capsys.readouterr().err == (
        f"error: --model base-int8={tmp_path}: 'base-int8' is a derived variant with no files "
        "of its own to re-hash; give its source model 'base' instead\n")


# ----------------------------------------------------------------------------- the PDF


def _pdf(cert_json: bytes, signature: bytes | None = None) -> bytes:
    """A small PDF carrying ``cert_json``, with ``signature`` appended as reportgen does."""
    cert = Certificate(json.loads(cert_json))
    assert cert.to_json().encode() == cert_json
    pdf = small_pdf("Alignment certificate", cert)
    return pdf if signature is None else append_signature(pdf, signature)


def _signed_pdf(signed: dict[str, Any]) -> tuple[bytes, bytes]:
    """(PDF, signature) as ``audit --sign`` makes them: the signature names the PDF's digest
    and is then appended to it."""
    cert_json = (signed["out"] / "certificate.json").read_bytes()
    pages = _pdf(cert_json)
    sig = sign_certificate(Certificate(json.loads(cert_json)), signed["private"],
                           {"certificate.pdf": pages})
    return append_signature(pages, sig), sig


def test_pdf_with_attached_json_verifies_alone(signed, tmp_path: Path, capsys) -> None:
    cert_json = (signed["out"] / "certificate.json").read_bytes()
    data, sig = _signed_pdf(signed)
    pdf = tmp_path / "certificate.pdf"
    pdf.write_bytes(data)
    assert run_cli(_verify(signed, target=pdf)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"verifying {pdf} (attached certificate.json)"
    assert lines[2] == (f"ok: certificate.json: sha256 {hashlib.sha256(cert_json).hexdigest()} "
                        "matches the signed digest")
    pages = hashlib.sha256(data[:data.index(b"%%EOF") + 6]).hexdigest()
    assert lines[3] == (f"ok: certificate.pdf: its pages are the ones signed (sha256 {pages}, "
                        "before the signature)")
    assert lines[-1] == ("verified: the signature is valid and the certificate is unchanged, "
                         "its view shows it, and 2 checkpoint folders match it")


def test_signed_pdf_is_read_by_pypdf_with_both_attachments(signed) -> None:
    pypdf = pytest.importorskip("pypdf")
    data, sig = _signed_pdf(signed)
    reader = pypdf.PdfReader(io.BytesIO(data), strict=True)
    cert_json = (signed["out"] / "certificate.json").read_bytes()
    assert reader.attachments == {"certificate.json": [cert_json],
                                  "certificate.sig.json": [sig]}
    assert len(reader.pages) == 1
    af = [ref.get_object()["/UF"] for ref in reader.trailer["/Root"]["/AF"]]
    assert af[-1] == "certificate.sig.json"


def test_pdf_is_pdf_a3_with_the_json_as_its_source(signed) -> None:
    cert_json = (signed["out"] / "certificate.json").read_bytes()
    pdf = _pdf(cert_json)
    assert pdf == _pdf(cert_json)  # attachment dates come from the certificate
    assert embedded_files(pdf) == {"certificate.json": cert_json}
    pypdf = pytest.importorskip("pypdf")
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert reader.attachments == {"certificate.json": [cert_json]}
    xmp = reader.xmp_metadata.stream.get_data().decode()
    assert "<pdfaid:part>3</pdfaid:part>" in xmp or 'pdfaid:part="3"' in xmp
    catalog = reader.trailer["/Root"]
    assert catalog["/OutputIntents"][0]["/S"] == "/GTS_PDFA1"  # the PDF/A output intent
    filespec = catalog["/AF"][0].get_object()
    assert (filespec["/UF"], filespec["/AFRelationship"]) == ("certificate.json", "/Source")


def test_pdf_with_edited_json_fails(signed, tmp_path: Path, capsys) -> None:
    cert_json = (signed["out"] / "certificate.json").read_bytes()
    sig = (signed["out"] / "certificate.sig.json").read_bytes()
    data = json.loads(cert_json)
    data["verdict"] = "PASS"
    edited = Certificate(data).to_json().encode()
    pdf = tmp_path / "certificate.pdf"
    pdf.write_bytes(_pdf(edited, sig))
    assert run_cli(["verify", str(pdf)]) == 1
    assert capsys.readouterr().out.splitlines()[2] == (
        f"FAIL: certificate.json: sha256 {hashlib.sha256(edited).hexdigest()} differs from the "
        f"signed {hashlib.sha256(cert_json).hexdigest()} (the certificate was edited after "
        "signing)")


def test_pdf_without_attachment_is_an_input_error(tmp_path: Path, capsys) -> None:
    pdf = tmp_path / "plain.pdf"
    pdf.write_bytes(small_pdf("no attachment"))
    assert run_cli(["verify", str(pdf)]) == 2
    assert capsys.readouterr().err == (
        f"error: {pdf}: no certificate.json is attached to this PDF, so it cannot be verified "
        "alone (re-render it with 'reportgen render')\n")


# ------------------------------------------------------------ digests vs. model signing


def _library_root(folder: Path) -> str:
    """The root digest OpenSSF model signing computes (its in-toto subject digest)."""
    ms = pytest.importorskip("model_signing", reason="model-signing is not installed")
    from model_signing._signing.signing import Payload

    manifest = ms.hashing.Config().use_file_serialization().hash(folder)
    return Payload(manifest).statement.pb.subject[0].digest["sha256"]


def test_root_digest_equals_openssf_model_signing(signed) -> None:
    for name in ("base", "finetuned"):
        assert digest_folder(signed[name]).root == _library_root(signed[name])


def test_root_digest_equals_model_signing_on_real_checkpoints(tiny_models) -> None:
    folder = tiny_models["tiny-gpt2"]
    assert digest_folder(folder).root == _library_root(folder)


def test_ignored_paths_are_model_signings_own(tmp_path: Path) -> None:
    """Only the top-level git names are left out; nested ones are hashed, as it hashes them."""
    for rel in (".git/HEAD", ".github/ci.yml", ".gitattributes", ".gitignore", "w.bin",
                "sub/.gitignore", "sub/.git/HEAD", "sub/model.sig"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    assert [f.name for f in digest_folder(tmp_path).files] == [
        "sub/.git/HEAD", "sub/.gitignore", "sub/model.sig", "w.bin"]
    assert digest_folder(tmp_path).root == _library_root(tmp_path)


def test_root_digest_orders_paths_like_model_signing(tmp_path: Path) -> None:
    for rel in ("a/b", "a-b/x", "a.b"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    assert digest_folder(tmp_path).root == _library_root(tmp_path)


def test_a_model_signed_with_the_model_signing_cli_still_verifies(signed, tmp_path: Path,
                                                                   capsys) -> None:
    """The model signing CLI writes model.sig into the folder and leaves it out of its hash;
    reportgen leaves it out too, and both compute the same root."""
    pytest.importorskip("model_signing", reason="model-signing is not installed")
    import subprocess
    import sys

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "ms.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    folder = signed["finetuned"]
    r = subprocess.run([sys.executable, "-m", "model_signing", "sign", "key", ".",
                        "--private_key", str(tmp_path / "ms.pem")],
                       cwd=folder, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    bundle = json.loads((folder / "model.sig").read_text())
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    assert statement["subject"][0]["digest"]["sha256"] == _root(folder)
    assert run_cli(_verify(signed)) == 0
    assert f"ok: model finetuned: 4 files match, root {_root(folder)}" in \
        capsys.readouterr().out.splitlines()
