"""Check the views of a certificate (HTML page, model card, PDF) against the signed JSON.

A reader looks at the page, not at the JSON, so a view that shows another certificate (a PASS
page over a FAIL certificate's signed JSON) must fail ``verify``, naming the file. How each
view is held to the signed JSON:

- ``certificate.html`` and ``model-card.md``: the file is the view the signer signed (its
  SHA-256 is in the statement's ``views``), or it is byte for byte what this reportgen renders
  from the signed JSON. Both views are deterministic (the same JSON and versions give the
  same bytes), so a view re-rendered later with ``reportgen render`` still verifies, and one
  rendered by other versions verifies by the signed digest.
- ``certificate.pdf``: its pages are the bytes whose digest was signed, followed by nothing but
  the signature (see :mod:`reportgen.release.pdfsign`). It is not re-rendered: PDF bytes depend
  on the fonts installed, so two machines rarely agree byte for byte, and comparing extracted
  text
  would pass a page whose verdict is drawn as shapes or covered by an image.

What this does not prove: that a signer who holds the pinned key did not sign a lying view.
The signer is trusted; ``verify`` proves that what you hold is what they signed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from reportgen.core.errors import ReportgenError
from reportgen.release.pdfsign import signed_pdf_problem
from reportgen.release.signing import view_digests

HTML, MODEL_CARD, PDF = "certificate.html", "model-card.md", "certificate.pdf"
VIEW_FILES = (HTML, MODEL_CARD, PDF)
PAGE_SIZES = ("A4", "Letter")
#: What re-rendering a signed but unusual certificate may raise: reported, never a traceback.
_RENDER_ERRORS = (ReportgenError, ValueError, KeyError, TypeError, AttributeError, IndexError,
                  RecursionError)


def views_beside(folder: Path) -> dict[str, Path]:
    """The views found in a certificate's folder, by their standard names."""
    return {name: folder / name for name in VIEW_FILES if (folder / name).is_file()}


def check_view(name: str, path: Path, statement: dict[str, Any], cert_json: bytes,
               signature: bytes | None) -> tuple[bool, str]:
    """(ok, message) for one view; ``name`` is its role (one of :data:`VIEW_FILES`)."""
    try:
        data = path.read_bytes()
    except OSError as e:
        return False, f"cannot read it ({e.strerror})"
    signed = view_digests(statement).get(name)
    if name == PDF:
        return _check_pdf(data, signed, signature)
    actual = hashlib.sha256(data).hexdigest()
    if signed == actual:
        return True, f"sha256 {actual} is the view the signer signed"
    rendered = _rerenders(name, data, cert_json)
    if rendered is True:
        return True, f"sha256 {actual} is what this reportgen renders from the signed JSON"
    why = "it is not the view the signer signed" if signed else "the signature names no view"
    return False, (f"sha256 {actual} does not show the signed certificate: {why}, nor is it "
                   f"what this reportgen renders from the signed JSON{rendered or ''}")


def _check_pdf(data: bytes, signed: str | None, signature: bytes | None) -> tuple[bool, str]:
    if signed is None:
        return False, ("the signature names no digest for the PDF, so its pages are not "
                       "vouched for (sign again: 'reportgen render DIR --sign KEY')")
    problem = signed_pdf_problem(data, signature, signed)
    if problem:
        return False, problem
    return True, f"its pages are the ones signed (sha256 {signed}, before the signature)"


def _rerenders(name: str, data: bytes, cert_json: bytes) -> bool | str:
    """True when ``data`` is byte for byte this reportgen's rendering of ``cert_json``;
    else a note on why it could not be rendered (or '')."""
    from reportgen.certificate.document import Certificate
    from reportgen.certificate.schema import certificate_problems

    try:
        doc = json.loads(cert_json.decode("utf-8"))
        problems = certificate_problems(doc)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return " (the JSON cannot be read)"
    if problems:
        return f" (it cannot be rendered: {problems[0]})"
    cert = Certificate(doc)
    try:
        if name == MODEL_CARD:
            from reportgen.views.modelcard import render_model_card

            return render_model_card(cert).encode("utf-8") == data or ""
        from reportgen.views.html import render_html

        return any(render_html(cert, size).encode("utf-8") == data for size in PAGE_SIZES) or ""
    except _RENDER_ERRORS as e:
        return f" (it cannot be rendered: {str(e).splitlines()[0] if str(e) else e!r})"
