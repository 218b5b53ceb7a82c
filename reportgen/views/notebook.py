"""The certificate inside Jupyter (``Certificate._repr_mimebundle_``): a compact fragment
with inline styles, since notebook front ends sanitise or share page-level CSS."""

from __future__ import annotations

from reportgen.certificate.document import Certificate
from reportgen.views.findings import findings
from reportgen.views.html import environment, figures
from reportgen.views.series import series_figures
from reportgen.views.summary import summary_lines
from reportgen.views.vega import svg_data_uri

NOTEBOOK_TEMPLATE = "notebook.html.j2"
NOTEBOOK_STATUS_STYLES = {
    "PASS": "background: #e2f3ec; border-color: #00795a; color: #004d39;",
    "WARN": "background: #fdf0d9; border-color: #b36b00; color: #653c00;",
    "FAIL": "background: #fbe4da; border-color: #c0420a; color: #7f2800;",
    "ERROR": "background: #f2e3ee; border-color: #8e3a73; color: #5f1f4c;",
}


def notebook_html(cert: Certificate) -> str:
    """A compact fragment for Jupyter: verdict, findings table, summary, checks and the charts
    as static SVG (each family's, then the trajectories the PDF draws for a series).

    Static images rather than live Vega: notebook front ends differ in whether they run
    scripts in outputs, and inlining a megabyte of JavaScript per cell output is wasteful.
    Drawing the SVGs takes a second or two, so the last few fragments are kept per digest.
    """
    digest = cert.digest
    if digest not in _NOTEBOOK_CACHE:
        data = cert.data
        ctx = {
            "data": data,
            "digest": digest,
            "summary": summary_lines(data),
            "findings": findings(data),
            "images": [(f, svg_data_uri(f.spec()))
                       for f in figures(data) + series_figures(data, "pdf")],
            "STYLES": NOTEBOOK_STATUS_STYLES,
        }
        while len(_NOTEBOOK_CACHE) >= 4:
            _NOTEBOOK_CACHE.pop(next(iter(_NOTEBOOK_CACHE)))
        _NOTEBOOK_CACHE[digest] = environment().get_template(NOTEBOOK_TEMPLATE).render(ctx)
    return _NOTEBOOK_CACHE[digest]


_NOTEBOOK_CACHE: dict[str, str] = {}
