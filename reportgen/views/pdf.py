"""The certificate as PDF: the page's content in 'pdf' mode, laid out by Typst.

Why Typst: WeasyPrint took about 16 s of single-threaded layout and drawing for the demo's
29 pages (benchmarks/RESULTS.md); Typst lays out the same pages in about a second. The
content is the HTML page's (:func:`reportgen.views.html.page_context`), turned into plain
data by :mod:`reportgen.views.pdfparts`; ``templates/certificate.typ`` reads that data with
``json()``, so no string from the certificate is ever parsed as markup.

Each chart is a static SVG made by vl-convert from the same Vega-Lite spec the HTML embeds,
in a worker process (:func:`prepare_pdf`) while this one renders the HTML. Typst compiles in
a private temporary folder holding only the template, the document, the charts and the
certificate JSON it attaches: it reads nothing else (no network, no other files).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import tempfile
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reportgen.certificate.document import JSON_NAME, Certificate
from reportgen.core.resources import templates_dir
from reportgen.views.html import page_context
from reportgen.views.pdfparts import blocks, masthead
from reportgen.views.svgpool import SvgPool

TEMPLATE = "certificate.typ"
PDF_STANDARD = "a-3b"
PAPER = {"A4": "a4", "Letter": "us-letter"}
#: the widest a chart is drawn (the A4 text width) and the tallest, with its caption on
#: the same page; a chart smaller than that keeps its size (CSS pixels of 0.2646 mm)
CHART_MAX_MM = (180.0, 80.0)
PX_MM = 25.4 / 96
_SIZE = re.compile(rb'<svg\b[^>]*?\bwidth="([0-9.]+)"[^>]*?\bheight="([0-9.]+)"')


@dataclass
class Prepared:
    """A PDF begun: its page context built, its charts converting in a worker process (see
    :mod:`reportgen.views.svgpool`) while the caller renders something else."""

    ctx: dict[str, Any]
    svgs: dict[str, Future[bytes]]


def prepare_pdf(cert: Certificate, page_size: str, pool: SvgPool) -> Prepared:
    ctx = page_context(cert, mode="pdf", page_size=page_size)
    return Prepared(ctx, {f.id: pool.submit(f.spec()) for f in ctx["figures"]})


def render_pdf(cert: Certificate, page_size: str = "A4",
               prepared: Prepared | None = None) -> bytes:
    """PDF/A-3b bytes on A4 or Letter pages with a running header (audit, release), a footer
    (page X of Y, digest), bookmarks from the headings, and the certificate JSON attached
    (a signature is appended by :mod:`reportgen.release.write`). The same certificate gives
    the same bytes: the PDF's dates are the certificate's ``created`` time."""
    if prepared is None:
        with SvgPool() as pool:
            return render_pdf(cert, page_size, prepare_pdf(cert, page_size, pool))
    charts = {fid: fut.result() for fid, fut in prepared.svgs.items()}
    return typeset(template_source(), pdf_files(cert, prepared.ctx, page_size, charts),
                   created_time(cert))


def template_source() -> bytes:
    return (templates_dir() / TEMPLATE).read_bytes()


def pdf_files(cert: Certificate, ctx: dict[str, Any], page_size: str,
              charts: dict[str, bytes]) -> dict[str, bytes]:
    """The folder Typst compiles in: the document, each chart's SVG (by figure id) and the
    certificate JSON the PDF attaches."""
    files = {f"charts/{i}.svg": svg for i, svg in enumerate(charts.values())}
    sizes = {fid: (f"charts/{i}.svg", chart_width(svg))
             for i, (fid, svg) in enumerate(charts.items())}
    doc = document(cert, ctx, page_size, sizes)
    files["doc.json"] = json.dumps(doc, ensure_ascii=False).encode("utf-8")
    files[JSON_NAME] = cert.to_json().encode("utf-8")
    return files


def document(cert: Certificate, ctx: dict[str, Any], page_size: str,
             charts: dict[str, tuple[str, float]]) -> dict[str, Any]:
    """What ``templates/certificate.typ`` lays out, as JSON-able data."""
    audit = ctx["audit"]
    release = str(audit.get("release") or "")
    body = blocks(ctx)
    for b in body:
        if b["t"] == "figure":
            b["file"], b["width"] = charts[b.pop("id")]
    return {
        "title": f"{ctx['verdict']} · Alignment certificate · {audit.get('name', '')} "
                 f"{release}".strip(),
        "author": str(ctx["tool"].get("name") or "reportgen"),
        "running": str(audit.get("name") or "") + (f" · {release}" if release else ""),
        "verdict": ctx["verdict"], "digest": ctx["digest"], "paper": PAPER[page_size],
        "masthead": masthead(ctx), "blocks": body,
        "attachments": [{"file": JSON_NAME, "relationship": "source",
                         "mime": "application/json",
                         "description": "The alignment certificate (JSON) this PDF was "
                                        "rendered from"}],
    }


def chart_width(svg: bytes) -> float:
    """The width in mm a chart is drawn at: its own size, shrunk to fit CHART_MAX_MM."""
    m = _SIZE.search(svg[:2000])
    if m is None:
        return CHART_MAX_MM[0]
    w, h = float(m.group(1)) * PX_MM, float(m.group(2)) * PX_MM
    scale = min(1.0, CHART_MAX_MM[0] / w, CHART_MAX_MM[1] / h) if w and h else 1.0
    return round(w * scale, 2)


def typeset(source: bytes, files: dict[str, bytes], created: dt.datetime) -> bytes:
    """Compile Typst ``source`` in a fresh folder holding only ``files`` (relative paths)."""
    import typst

    with tempfile.TemporaryDirectory(prefix="reportgen-pdf-") as tmp:
        root = Path(tmp)
        for name, data in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        (root / "main.typ").write_bytes(source)
        try:
            pdf = typst.compile(str(root / "main.typ"), root=str(root), timestamp=created,
                                pdf_standards=[PDF_STANDARD])
        except Exception as exc:  # typst.TypstError: our template or data is wrong
            raise RuntimeError(f"Typst could not lay out the PDF: {exc}") from exc
    # the end-of-line after %%EOF that an incremental update (the signature) starts after
    return pdf if pdf.endswith(b"\n") else pdf + b"\n"


def created_time(cert: Certificate) -> dt.datetime:
    """The certificate's ``audit.created`` as a UTC datetime (the epoch when unreadable)."""
    raw = str((cert.data.get("audit") or {}).get("created") or "")
    try:
        t = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)
