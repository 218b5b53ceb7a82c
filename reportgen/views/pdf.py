"""The certificate as PDF: the HTML template in 'pdf' mode, laid out by WeasyPrint.

WeasyPrint runs no JavaScript, so each chart becomes a static SVG made by vl-convert from
the same Vega-Lite spec the HTML embeds, in a worker process (:func:`prepare_pdf`) while
this one renders the HTML, parses the page and computes its styles; the page refers to the
charts by a private URL scheme that only our fetcher resolves. Nothing else is fetched: no
network, no local files.
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from reportgen.certificate.document import JSON_NAME, Certificate
from reportgen.views.html import environment, page_context
from reportgen.views.svgpool import SvgPool

TEMPLATE = "certificate.html.j2"
SCHEME = "reportgen-chart"
PDF_VARIANT = "pdf/a-3b"


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
    (a signature is appended by :mod:`reportgen.release.write`)."""
    if prepared is None:
        with SvgPool() as pool:
            return render_pdf(cert, page_size, prepare_pdf(cert, page_size, pool))
    import weasyprint

    ctx, svgs = dict(prepared.ctx), prepared.svgs
    ctx.update(charts={}, images={fid: f"{SCHEME}:{fid}" for fid in svgs})
    html = environment().get_template(TEMPLATE).render(ctx)
    doc = weasyprint.HTML(string=html, base_url=None, url_fetcher=chart_fetcher(svgs))
    pdf = doc.write_pdf(pdf_identifier=ctx["digest"][:32].encode("ascii"),
                        **pdf_options(cert))
    for fut in svgs.values():  # WeasyPrint only warns on a failed image; we fail
        fut.result()
    return pdf


def chart_fetcher(svgs: dict[str, Future[bytes]]) -> Any:
    """A URL fetcher that knows our chart URLs and data: URIs, and refuses everything else."""
    import weasyprint

    def resolve(url: str) -> bytes:
        scheme, _, name = url.partition(":")
        if scheme != SCHEME or name not in svgs:
            raise ValueError(f"the certificate PDF may not load {url[:80]!r}")
        return svgs[name].result()

    if not hasattr(weasyprint, "URLFetcher"):  # WeasyPrint < 66: a plain function

        def fetch(url: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
            if url.startswith("data:"):
                return weasyprint.default_url_fetcher(url, *args, **kwargs)
            return {"string": resolve(url), "mime_type": "image/svg+xml"}

        return fetch

    from weasyprint.urls import URLFetcherResponse

    class ChartFetcher(weasyprint.URLFetcher):
        def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
            if url.startswith("data:"):
                return super().fetch(url, headers)
            return URLFetcherResponse(url, resolve(url), {"Content-Type": "image/svg+xml"})

    return ChartFetcher(allowed_protocols=("data",))


def pdf_options(cert: Certificate) -> dict[str, Any]:
    """Keyword arguments for ``weasyprint.Document.write_pdf``: PDF/A-3b with the JSON attached.

    The attachments' dates are the certificate's ``created`` time (not now), so the same
    certificate gives the same PDF bytes.
    """
    return {"pdf_variant": PDF_VARIANT, "attachments": attachments(cert)}


def attachments(cert: Certificate) -> list[Any]:
    """``weasyprint.Attachment`` for the JSON (a signature is appended later, as an
    incremental update: see :mod:`reportgen.release.pdfsign`)."""
    import weasyprint

    when = created_time(cert)
    files = [(JSON_NAME, cert.to_json().encode("utf-8"),
              "The alignment certificate (JSON) this PDF was rendered from", "Source")]
    return [weasyprint.Attachment(string=data, name=name, description=desc, created=when,
                                  modified=when, relationship=rel)
            for name, data, desc, rel in files]


def created_time(cert: Certificate) -> dt.datetime:
    """The certificate's ``audit.created`` as a UTC datetime (the epoch when unreadable)."""
    raw = str((cert.data.get("audit") or {}).get("created") or "")
    try:
        t = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)
