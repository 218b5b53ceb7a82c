"""The certificate as one self-contained HTML page (and a compact notebook fragment).

The page works offline and under a strict Content-Security-Policy: the Vega JavaScript is
inlined once, each chart's spec sits in a ``<script type="application/json">`` block that
the browser never executes, and the two executable scripts are allowed by their SHA-256
hashes. Vega's expressions run through its interpreter (``ast: true``), so no
``'unsafe-eval'`` is needed.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import jinja2
from markupsafe import Markup

from reportgen.certificate.document import Certificate
from reportgen.core.family import Family, View
from reportgen.core.names import concrete_definition, lookup
from reportgen.core.resources import templates_dir
from reportgen.families import families
from reportgen.views import charts
from reportgen.views.annex import annex
from reportgen.views.compare import compare_sections
from reportgen.views.family_tables import cand_key
from reportgen.views.filters import FILTERS
from reportgen.views.findings import findings
from reportgen.views.glossary import glossary
from reportgen.views.series import series_figures, series_views
from reportgen.views.summary import summary_lines
from reportgen.views.tables import Column, Table
from reportgen.views.vega import chart_svg, js_bundle, svg_data_uri, vegalite_version

__all__ = ["chart_svg", "js_bundle", "page_context", "render_html", "svg_data_uri",
           "vegalite_version"]

TEMPLATE = "certificate.html.j2"
EMBED_SCRIPT = """(function () {
  "use strict";
  var options = {ast: true, renderer: "svg", tooltip: {theme: "light"},
    actions: {export: true, source: false, compiled: false, editor: false}};
  var blocks = document.querySelectorAll('script[type="application/json"][data-chart]');
  Array.prototype.forEach.call(blocks, function (block) {
    var target = document.getElementById(block.getAttribute("data-chart"));
    if (!target) { return; }
    try {
      vegaEmbed(target, JSON.parse(block.textContent), options).catch(function (err) {
        target.textContent = "The chart could not be drawn (" + err + "); see the table.";
      });
    } catch (err) {
      target.textContent = "The chart could not be drawn (" + err + "); see the table.";
    }
  });
})();"""


def render_html(cert: Certificate, page_size: str = "A4") -> str:
    """The full interactive certificate page (``page_size``: A4 or Letter, for printing)."""
    ctx = page_context(cert, mode="html", page_size=page_size)
    bundle = js_bundle()
    scripts = [bundle, EMBED_SCRIPT] + ([ctx["explorer"].script] if ctx["explorer"] else [])
    ctx.update(
        charts={f.id: chart_script(f.spec()) for f in ctx["figures"]},
        images={},
        js_bundle=Markup(bundle),
        embed_script=Markup(EMBED_SCRIPT),
        explorer_script=Markup(ctx["explorer"].script if ctx["explorer"] else ""),
        explorer_json=chart_script(ctx["explorer"].data) if ctx["explorer"] else "",
        csp=content_security_policy(scripts),
    )
    return environment().get_template(TEMPLATE).render(ctx)


# ------------------------------------------------------------------------------ helpers


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """Jinja2 with autoescape on for every template and undefined names as errors."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(FILTERS)
    return env


def chart_script(spec: dict[str, Any]) -> Markup:
    """A spec as JSON safe inside ``<script type="application/json">``.

    ``<``, ``>`` and ``&`` become ``\\u003c`` etc., so no data (a concept term, a token)
    can close the script element or open a comment; JSON.parse reads them back unchanged.
    """
    text = json.dumps(spec, ensure_ascii=False, separators=(",", ":"))
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(ch, esc)
    return Markup(text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def content_security_policy(scripts: list[str]) -> str:
    """No network at all; only our own inline scripts (by hash) may run.

    Styles stay 'unsafe-inline': Vega-Embed injects a stylesheet and sets style attributes,
    and with every fetch forbidden a style cannot send anything anywhere.
    """
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode("utf-8")).digest()).decode() + "'"
        for s in scripts
    )
    return (
        "default-src 'none'; "
        f"script-src {hashes}; "
        "style-src 'unsafe-inline'; "
        "img-src data: blob:; font-src data:; "
        "base-uri 'none'; form-action 'none'"
    )


# ------------------------------------------------------------------ what the template shows

PAGE_SIZES = ("A4", "Letter")


@dataclass
class Section:
    id: str
    family: str
    title: str
    intro: str
    metrics: Table
    definitions: list[tuple[str, str, str]]
    figures: list[charts.Figure]
    #: figure id -> its tables; family_tables.LOOSE_TABLES -> tables under no chart
    tables: dict[str, list[Table]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    limitations: list[str] = field(default_factory=list)  # the certificate's, where they apply
    #: lower-case words that tie one of the certificate's limitations to this section
    keywords: tuple[str, ...] = ()


def page_context(cert: Certificate | dict[str, Any], mode: str,
                 page_size: str = "A4") -> dict[str, Any]:
    """Everything the template needs, shared by the HTML (mode 'html') and PDF ('pdf').

    ``page_size`` (A4 or Letter) sets the printed page in both the PDF and browser print.
    """
    from altair.utils.schemapi import debug_mode

    # Altair validates every object as it is built (2.4 s of the demo's charts); every
    # chart's spec is validated against the Vega-Lite schema by tests/test_chart_specs.py
    with debug_mode(False):
        return _page_context(cert, mode, page_size)


def _page_context(cert: Certificate | dict[str, Any], mode: str,
                  page_size: str) -> dict[str, Any]:
    if page_size not in PAGE_SIZES:
        raise ValueError(f"unknown page size {page_size!r}; expected one of: "
                         f"{', '.join(PAGE_SIZES)}")
    cert = cert if isinstance(cert, Certificate) else Certificate(cert)
    data = cert.data
    digest = cert.digest
    series = series_views(data, mode)
    figs = _figures_of(digest, data)
    sections = family_sections(data, figs)
    for s in sections:
        s.limitations = section_limitations(data, s)
    if mode == "pdf":
        figs = _without_floor_figures(data, sections, figs)
    # the page's figures in page order: the series section's (drawn and embedded like the
    # families'; left out, their charts were "None" in the HTML and missing in the PDF)
    trajectories = series_figures(data, mode)
    figs = [f for sv in series for f in sv.figures] + trajectories + compare_sections(
        sections, columns=2 if mode == "pdf" else 1)
    annexed = annex(sections) if mode == "pdf" else []
    explore = _explorer(data) if mode == "html" else None
    statuses = [c.get("status") for c in data.get("checks") or []]
    toc = [("summary", "Findings"), ("checks", "Checks"), ("models", "Models"),
           ("probes", "Probes"), *([("series", "Checkpoint series")] if series else []),
           *[(s.id, s.title) for s in sections],
           *([("explorer", explore.title)] if explore else []),
           ("warnings", "Warnings and limitations"),
           *([("annex", "Annex: definitions and tables")] if mode == "pdf" else []),
           ("appendix", "Appendix"),
           ("glossary", "Glossary")]
    return {
        "page_size": page_size, "explorer": explore, "glossary": glossary(families()),
        "mode": mode, "data": data, "audit": data.get("audit") or {},
        "tool": data.get("tool") or {}, "verdict": data.get("verdict", "ERROR"),
        "digest": digest, "summary": summary_lines(data), "findings": findings(data),
        "counts": {s: statuses.count(s) for s in ("PASS", "WARN", "FAIL", "ERROR")},
        "sections": sections, "figures": figs, "toc": toc, "annex": annexed,
        "series": series, "trajectories": trajectories,
        "spec_json": json.dumps((data.get("spec") or {}).get("content"), indent=2,
                                ensure_ascii=False, sort_keys=False),
    }


def _without_floor_figures(data: dict[str, Any], sections: list[Section],
                           figs: list[charts.Figure]) -> list[charts.Figure]:
    """The PDF leaves out the noise floor's own per-candidate charts and their tables (a
    third of the demo's pages, all of it rounding noise); each section says so, and the
    floor's ratios stay in every metrics table."""
    floor = {c["candidate"] for c in charts.comparisons(data) if c.get("role") == "noise_floor"}
    if not floor:
        return figs
    for s in sections:
        gone = [f for f in s.figures if f.candidate in floor]
        if not gone:
            continue
        s.figures = [f for f in s.figures if f.candidate not in floor]
        s.tables = {k: v for k, v in s.tables.items() if k not in {f.id for f in gone}}
        names = ", ".join(sorted({str(f.candidate) for f in gone}))
        s.notes.append(f"The noise floor's own charts and tables ({names}) are left out of "
                       "the PDF; the HTML and the JSON have them.")
    return [f for f in figs if f.candidate not in floor]


def section_limitations(data: dict[str, Any], section: Section) -> list[str]:
    """The certificate's limitations that concern this section, repeated where they apply.

    A limitation applies when it names one of the family's keywords, or when it is about the
    noise floor and the section reports noise-floor ratios.
    """
    words = section.keywords or (section.family.rstrip("s").replace("_", " "),)
    has_floor = any("noise_floor" in str(r.get("metric", "")) for r in section.metrics.rows)
    out = []
    for text in data.get("limitations") or []:
        low = str(text).lower()
        if any(w.lower() in low for w in words) or (has_floor and "noise floor" in low):
            out.append(str(text))
    return out


def figures(data: dict[str, Any]) -> list[charts.Figure]:
    """Every family's charts, in page order."""
    return [f for fam in families() if (v := _view(fam)) for f in v.figures(data)]


def _figures_of(digest: str, data: dict[str, Any]) -> list[charts.Figure]:
    """:func:`figures`, kept for the last certificate drawn: its HTML and PDF share the
    charts (and their specs), which take seconds to build on a large certificate."""
    if _FIGURES.get("digest") != digest:
        _FIGURES.clear()
        _FIGURES.update(digest=digest, figures=figures(data))
    return list(_FIGURES["figures"])


_FIGURES: dict[str, Any] = {}


def _view(fam: Family) -> View | None:
    return fam.view() if fam.view is not None else None


def family_sections(data: dict[str, Any], figs: list[charts.Figure]) -> list[Section]:
    """One section per family with something to show, in page order; metrics of a family this
    tool does not know (an older or newer certificate) get a plain section after them."""
    comps = charts.comparisons(data)
    names = _metric_names(comps)
    known = {f.name for f in families()}
    out = []
    for fam in families():
        view = _view(fam) or View()
        own = [n for n in names if n.split(".", 1)[0] == fam.name]
        mine = [f for f in figs if f.family == fam.name]
        tables, notes = view.tables(data)
        if not (own or mine or tables):
            continue
        grouped = _definition_groups(comps, own)
        head = [n for n in own if (view.headline(n) if view.headline
                                   else not _is_grouped(n, grouped))]
        out.append(Section(
            id=f"family-{charts.slug(fam.name)}", family=fam.name, title=fam.title,
            intro=view.intro(data) or fam.intro, metrics=metrics_table(comps, head),
            definitions=grouped, figures=mine, tables=tables, notes=notes,
            keywords=fam.keywords))
    for other in dict.fromkeys(n.split(".", 1)[0] for n in names if
                               n.split(".", 1)[0] not in known):
        own = [n for n in names if n.split(".", 1)[0] == other]
        out.append(Section(
            id=f"family-{charts.slug(other)}", family=other,
            title=other.replace("_", " ").capitalize() + " metrics", intro="",
            metrics=metrics_table(comps, own), definitions=_definition_groups(comps, own),
            figures=[]))
    return out


def _metric_names(comps: list[dict[str, Any]]) -> list[str]:
    names: dict[str, None] = {}
    for c in comps:
        names.update(dict.fromkeys(c.get("metrics") or {}))
    return list(names)


def _definition_groups(comps: list[dict[str, Any]], names: list[str]) -> list[tuple]:
    """(name or pattern, definition, unit): metrics sharing a definition become one pattern.

    ``concepts.category.finance.…`` and ``concepts.category.safety.…`` share a definition,
    so they are listed once as ``concepts.category.{category}.…``.
    """
    by_def: dict[str, list[str]] = {}
    units: dict[str, str] = {}
    for c in comps:
        for n in names:
            m = (c.get("metrics") or {}).get(n)
            if m is not None and n not in by_def.get(m.get("definition", ""), []):
                by_def.setdefault(m.get("definition", ""), []).append(n)
                units[n] = m.get("unit", "")
    return [(_pattern(group), concrete_definition(group[0], d) if len(group) == 1 else d,
             units[group[0]]) for d, group in by_def.items()]


def _pattern(names: list[str]) -> str:
    """The registered pattern the names share (its placeholders are the ones its definition
    uses), else one derived from where the names differ."""
    if len(names) == 1:
        return names[0]
    infos = {lookup(n) for n in names}
    if len(infos) == 1 and None not in infos:
        return next(iter(infos)).name
    parts = [n.split(".") for n in names]
    if len({len(p) for p in parts}) != 1:
        return ", ".join(names)
    out = []
    for i, seg in enumerate(zip(*parts, strict=True)):
        if len(set(seg)) == 1:
            out.append(seg[0])
        else:
            out.append("{" + (parts[0][i - 1] if i else "name") + "}")
    return ".".join(out)


def _is_grouped(name: str, groups: list[tuple]) -> bool:
    return any(pattern != name and _matches(pattern, name) for pattern, _, _ in groups)


def _matches(pattern: str, name: str) -> bool:
    p, n = pattern.split("."), name.split(".")
    return len(p) == len(n) and all(a.startswith("{") or a == b for a, b in zip(p, n, strict=True))


def metrics_table(comps: list[dict[str, Any]], names: list[str]) -> Table:
    """Metric rows × one column per compared model; a cell holds value, CI, unit, error."""
    cols = [Column("metric", "metric", "code")] + [
        Column(cand_key(c), c["candidate"], "metric") for c in comps]
    rows = [{"metric": n, **{cand_key(c): (c.get("metrics") or {}).get(n) for c in comps}}
            for n in names]
    return Table("One column per compared model; CI: bootstrap confidence interval of the "
                 "mean", cols, rows)


def _explorer(data: dict[str, Any]) -> Any:
    """The first explorer a family's view offers for this certificate, if any."""
    return next((e for fam in families() if (v := _view(fam)) and (e := v.explorer(data))),
                None)
