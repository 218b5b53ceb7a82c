"""What a reader sees is held to the signed JSON: each forgery as a vendor would make it.

Two genuine audits signed with the same key: one PASS, rendered by the real writer (JSON,
HTML, model card, PDF), and one FAIL. The vendor wants the FAIL audit to look like a PASS:
a PDF built from the PASS PDF's pages carrying the FAIL audit's signed JSON and signature, the
same with an update appended that redraws a page, a FAIL folder whose HTML page or model
card was replaced by the PASS one. ``verify`` fails each, naming the file.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from certfactory import CHECK_PLAN, make_certificate, small_pdf

from reportgen.api import Certificate
from reportgen.cli import commands as cli
from reportgen.release.pdfattach import embedded_files
from reportgen.release.pdfsign import append_signature
from reportgen.release.signing import generate_keypair, sign_certificate
from reportgen.release.write import write_outputs
from reportgen.views.html import render_html
from reportgen.views.modelcard import render_model_card

VIEWS = ["json", "html", "pdf", "model-card"]


def _small(**kwargs: Any) -> Certificate:
    return Certificate(make_certificate(n_concepts=12, noise_floor=False, **kwargs))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def audits(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("views")
    keys = generate_keypair(root / "keys")
    passing = _small(checks=CHECK_PLAN[3:5])
    failing = _small(checks=(CHECK_PLAN[0], *CHECK_PLAN[2:]))
    assert (passing.verdict, failing.verdict) == ("PASS", "FAIL")
    write_outputs(passing, root / "pass", VIEWS, sign=keys.private)
    # The FAIL audit signed as write_outputs signs (a one-page PDF keeps the test fast).
    html, card = render_html(failing).encode(), render_model_card(failing).encode()
    pages = small_pdf("FAIL", failing)
    sig = sign_certificate(failing, keys.private, {"certificate.html": html,
                                                    "model-card.md": card,
                                                    "certificate.pdf": pages})
    files = {"certificate.json": failing.to_json().encode(), "certificate.html": html,
             "model-card.md": card, "certificate.pdf": append_signature(pages, sig),
             "certificate.sig.json": sig}
    (root / "fail").mkdir()
    for name, data in files.items():
        (root / "fail" / name).write_bytes(data)
    return {"root": root, "keys": keys, "fail_pages": pages, "failing": failing}


@pytest.fixture
def folders(audits: dict[str, Any], tmp_path: Path) -> dict[str, Path]:
    """Fresh copies for a test to tamper with."""
    return {n: Path(shutil.copytree(audits["root"] / n, tmp_path / n)) for n in ("pass", "fail")}


def _verify(audits: dict[str, Any], target: Path, capsys) -> tuple[int, list[str]]:
    code = cli.main(["verify", str(target), "--public-key", str(audits["keys"].public)])
    return code, capsys.readouterr().out.splitlines()


def test_a_genuine_folder_verifies_with_its_views(audits, folders, capsys) -> None:
    out = folders["pass"]
    code, lines = _verify(audits, out, capsys)
    assert code == 0, lines
    pdf = (out / "certificate.pdf").read_bytes()
    pages = pdf[:pdf.index(b"%%EOF") + 6]
    assert lines[3:6] == [
        f"ok: certificate.html: sha256 {_sha((out / 'certificate.html').read_bytes())} is the "
        "view the signer signed",
        f"ok: model-card.md: sha256 {_sha((out / 'model-card.md').read_bytes())} is the view "
        "the signer signed",
        f"ok: certificate.pdf: its pages are the ones signed (sha256 {_sha(pages)}, before the "
        "signature)",
    ]
    assert lines[-1] == ("verified: the signature is valid and the certificate is unchanged, "
                         "and its views show it")
    # the PDF alone, as handed to an auditor
    code, lines = _verify(audits, out / "certificate.pdf", capsys)
    assert code == 0, lines
    assert embedded_files(pdf)["certificate.sig.json"] == \
        (out / "certificate.sig.json").read_bytes()


def test_a_pass_pdf_carrying_a_fail_certificate_fails(audits, folders, tmp_path, capsys
                                                      ) -> None:
    """The issue's forgery: the PASS PDF's pages, its attachments replaced by the FAIL
    audit's signed JSON and signature (with pypdf, as anyone would)."""
    pypdf = pytest.importorskip("pypdf")
    writer = pypdf.PdfWriter()
    writer.append(pypdf.PdfReader(folders["pass"] / "certificate.pdf"))
    for name in ("certificate.json", "certificate.sig.json"):
        writer.add_attachment(name, (folders["fail"] / name).read_bytes())
    forged = tmp_path / "forged.pdf"
    with open(forged, "wb") as fh:
        writer.write(fh)
    code, lines = _verify(audits, forged, capsys)
    assert code == 1
    assert lines[1].startswith("ok: signature: valid")  # the FAIL audit's genuine signature
    assert lines[2].startswith("ok: certificate.json: ")  # ... over its genuine JSON
    signed = _sha(audits["fail_pages"])
    assert lines[3] == (f"FAIL: forged.pdf: its pages are not the ones signed: no part of the "
                        f"file has the signed SHA-256 {signed} (the PDF was changed or "
                        "re-rendered after signing)")
    assert lines[-1] == "verification failed: 1 problem"


def test_a_page_redrawn_by_an_appended_update_fails(audits, folders, tmp_path, capsys) -> None:
    """The signed FAIL PDF, kept byte for byte, with an incremental update that writes PASS
    over its first page."""
    pypdf = pytest.importorskip("pypdf")
    from pypdf.annotations import FreeText

    signed = (folders["fail"] / "certificate.pdf").read_bytes()
    writer = pypdf.PdfWriter(io.BytesIO(signed), incremental=True)
    writer.add_annotation(0, FreeText(text="PASS", rect=(50, 550, 400, 800)))
    buf = io.BytesIO()
    writer.write(buf)
    assert buf.getvalue().startswith(signed)
    (folders["fail"] / "certificate.pdf").write_bytes(buf.getvalue())
    code, lines = _verify(audits, folders["fail"] / "certificate.pdf", capsys)
    assert code == 1
    extra = len(buf.getvalue()) - len(audits["fail_pages"])
    assert lines[3] == (f"FAIL: certificate.pdf: its signed pages are followed by {extra} "
                        "bytes that are not just the signature (an update appended after "
                        "signing can redraw any page)")


@pytest.mark.parametrize("view", ["certificate.html", "model-card.md"])
def test_a_replaced_html_page_or_model_card_fails(audits, folders, capsys, view: str) -> None:
    shutil.copyfile(folders["pass"] / view, folders["fail"] / view)
    code, lines = _verify(audits, folders["fail"], capsys)
    assert code == 1
    sha = _sha((folders["fail"] / view).read_bytes())
    assert (f"FAIL: {view}: sha256 {sha} does not show the signed certificate: it is not the "
            "view the signer signed, nor is it what this reportgen renders from the signed "
            "JSON") in lines
    assert lines[-1] == "verification failed: 1 problem"


def test_a_view_re_rendered_later_verifies_by_re_rendering(audits, folders, capsys) -> None:
    """A signature that names no views (or other bytes: another reportgen's rendering) still
    vouches for a page this reportgen renders, byte for byte, from the signed JSON."""
    out, failing = folders["fail"], audits["failing"]
    (out / "certificate.sig.json").write_bytes(sign_certificate(failing, audits["keys"].private))
    (out / "certificate.pdf").unlink()
    code, lines = _verify(audits, out, capsys)
    assert code == 0, lines
    for view in ("certificate.html", "model-card.md"):
        sha = _sha((out / view).read_bytes())
        assert (f"ok: {view}: sha256 {sha} is what this reportgen renders from the signed "
                "JSON") in lines


def test_render_re_signs_the_views_it_renders(audits, folders, capsys) -> None:
    out = folders["fail"]
    (out / "model-card.md").write_text("edited by hand\n")
    assert cli.main(["render", str(out), "--formats", "model-card", "--sign",
                     str(audits["keys"].private)]) == 0
    statement = json.loads(base64.b64decode(
        json.loads((out / "certificate.sig.json").read_bytes())["payload"]))
    card = (out / "model-card.md").read_bytes()
    assert statement["predicate"]["views"] == {"model-card.md": {"sha256": _sha(card)}}
    capsys.readouterr()
    code, lines = _verify(audits, out, capsys)
    # the old PDF and HTML are no longer the signed views, and say so; the card is
    assert f"ok: model-card.md: sha256 {_sha(card)} is the view the signer signed" in lines
    assert code == 1
    assert [line.split(":")[1] for line in lines if line.startswith("FAIL")] == \
        [" certificate.pdf"]


def test_views_are_not_checked_against_an_edited_json(audits, folders, capsys) -> None:
    path = folders["pass"] / "certificate.json"
    path.write_text(path.read_text().replace('"PASS"', '"FAIL"', 1))
    code, lines = _verify(audits, folders["pass"], capsys)
    assert code == 1
    assert "FAIL: certificate.html: not checked: the certificate JSON is not verified" in lines
