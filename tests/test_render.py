"""HTML, PDF and write_outputs, rendered from a synthetic certificate."""

from __future__ import annotations

import base64
import errno
import hashlib
import json
import os
import re
import shutil
import subprocess
from itertools import pairwise
from pathlib import Path

import pytest
from certfactory import make_builder, make_certificate

import reportgen.release.write as render
import reportgen.views.pdf as pdf_module
from reportgen.api import Certificate
from reportgen.core.errors import OutputError
from reportgen.views import charts
from reportgen.views.html import chart_script, render_html
from reportgen.views.html import figures as page_figures
from reportgen.views.notebook import notebook_html
from reportgen.views.pdf import render_pdf

HOSTILE_TERM = "<script>alert(1)</script>"
HOSTILE_NAME = 'Evil "audit" </style><script>alert(2)</script>'
JSON_BLOCK = re.compile(
    r'<script type="application/json" data-chart="chart-([^"]+)">(.*?)</script>', re.S)
EXEC_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)


@pytest.fixture(scope="module")
def data() -> dict:
    """A certificate whose first concept term and audit name try to inject markup."""
    builder = make_builder(terms=[HOSTILE_TERM] + [f"term{i}" for i in range(1, 40)])
    builder.audit["name"] = HOSTILE_NAME
    return builder.build()


@pytest.fixture(scope="module")
def cert(data) -> Certificate:
    return Certificate(data)


@pytest.fixture(scope="module")
def html(cert) -> str:
    return render_html(cert)


@pytest.fixture(scope="module")
def pdf(cert) -> bytes:
    return render_pdf(cert)


@pytest.fixture(scope="module")
def pdf_text(pdf, tmp_path_factory) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    path = tmp_path_factory.mktemp("pdf") / "certificate.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True,
                          capture_output=True, text=True).stdout


# ------------------------------------------------------------------------------------ HTML


def test_html_is_one_self_contained_file(html):
    assert html.startswith("<!DOCTYPE html>\n<html lang=\"en\">")
    assert not re.search(r"<script[^>]*\ssrc=", html, re.I)
    outside_js = EXEC_SCRIPT.sub("", html)  # the inlined Vega bundle has URLs in strings
    assert not re.search(r"<link\b", outside_js, re.I)
    assert not re.search(r"<(img|iframe|object|embed|source)\b", outside_js, re.I)
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:)?//", outside_js, re.I)
    assert not re.search(r"@import|url\(\s*[\"']?(https?:)?//", outside_js, re.I)
    assert len(html.encode()) < 3_000_000


def test_vega_is_inlined_once(html):
    scripts = EXEC_SCRIPT.findall(html)
    assert len(scripts) == 3  # Vega, the chart embedder, the concept explorer
    assert html.count("window.vegaEmbed=") == 1
    assert "vegaEmbed(" in scripts[1]
    assert "explorer-data" in scripts[2]


def test_csp_forbids_the_network_and_allows_only_our_scripts(html):
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', html)
    assert csp, "no CSP meta tag"
    policy = csp.group(1).replace("&#39;", "'")
    assert "default-src 'none'" in policy
    assert "unsafe-eval" not in policy
    assert "script-src 'sha256-" in policy and "'unsafe-inline'" not in policy.split(";")[1]
    for body in EXEC_SCRIPT.findall(html):
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy
    assert html.index("Content-Security-Policy") < html.index("<style>")


def test_every_chart_spec_is_embedded(html, data):
    from reportgen.views.html import page_context

    blocks = dict(JSON_BLOCK.findall(html))
    assert len(page_figures(data)) == 11  # 9 + a layer × category heatmap per candidate
    # per-candidate charts are drawn as one (views.compare): top concepts, the heatmaps and
    # token movers each become one chart of panels
    figures = page_context(data, mode="html")["figures"]
    assert [f.id for f in figures] == [
        "top-concepts-finetuned-compared", "concept-categories", "concept-layers",
        "layer-heatmap-finetuned-compared", "token-movers-finetuned-compared",
        "token-histogram"]
    for fig in figures:
        assert json.loads(blocks[fig.id]) == fig.spec(), fig.id
        assert f'id="chart-{fig.id}" role="img" aria-label="' in html
        assert f'id="cap-{fig.id}"' in html


def test_charts_are_interactive_and_fixed_width(data):
    for fig in page_figures(data):
        spec = fig.spec()
        assert spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/v")
        assert spec["width"] == charts.WIDTH, fig.id
        text = json.dumps(spec)
        assert '"tooltip"' in text, fig.id
        assert '"container"' not in text, fig.id
        # single-colour bars and heatmaps (continuous colour legend) have no legend to click
        if not fig.id.startswith(("token-movers-", "layer-heatmap-", "weights-")):
            assert '"bind": "legend"' in text, fig.id


def test_values_are_escaped(html):
    assert HOSTILE_TERM not in html
    assert "alert(2)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Evil &#34;audit&#34; &lt;/style&gt;" in html
    assert "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e" in html


def test_chart_json_cannot_close_its_script_element():
    text = chart_script({"a": "</script><!-- & -->"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"a": "</script><!-- & -->"}


def test_verdict_checks_models_and_digest_appear(html, cert, data):
    assert 'class="verdict verdict-fail"' in html
    assert ">FAIL</span>" in html
    for c in data["checks"]:
        assert f"<code>{c['id']}</code>" in html
    for m in data["models"]:
        assert m["digest"]["root"] in html
    assert html.count(cert.digest) >= 2  # header and footer


def test_page_order_and_headings(html):
    order = ["verdict verdict-", "<h1>", "Certificate digest", 'id="toc-title"',
             'id="summary-title"', 'id="checks-title"', 'id="models-title"',
             'id="probes-title"', 'id="family-concepts-title"', 'id="family-embeddings-title"',
             'id="warnings-title"', 'id="appendix-title"', 'class="colophon"']
    positions = [html.index(marker) for marker in order]
    assert positions == sorted(positions)
    levels = [int(h) for h in re.findall(r"<h([1-6])\b", html)]
    assert levels[0] == 1 and all(b - a <= 1 for a, b in pairwise(levels))


def test_rendering_is_repeatable(html, cert):
    assert render_html(cert) == html


def test_notebook_fragment(cert, data):
    frag = notebook_html(cert)
    assert "<script" not in frag
    assert "FAIL" in frag and all(c["id"] in frag for c in data["checks"])
    assert frag.count('src="data:image/svg+xml;base64,') == len(page_figures(data))
    bundle = cert._repr_mimebundle_()
    assert set(bundle) == {"text/html", "text/plain"}


def test_notebook_findings_are_the_page_findings(cert, data):
    """The notebook opens with the findings table: a cell per candidate and family that has
    a headline, each the JSON's headline number in its unit."""
    from reportgen.core.numfmt import with_unit
    from reportgen.views.findings import findings

    frag = notebook_html(cert)
    cells = re.findall(r'data-candidate="([^"]+)" data-metric="([^"]+)"[^>]*>'
                       r'(?:<strong[^>]*>([^<]*)</strong>|n/a)', frag)
    table = findings(data)
    want = [(r.candidate, c.headline.metric, "" if c.value is None else with_unit(c.value, c.unit))
            for r in table.rows for name, _ in table.columns if (c := r.cells.get(name))]
    assert cells and cells == want
    assert frag.index("Findings:") < frag.index("<ul") < frag.index("<table", frag.index("<ul"))


@pytest.mark.browser
def test_charts_draw_in_a_browser_under_the_csp(html, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed")
    page = tmp_path / "certificate.html"
    page.write_text(html, encoding="utf-8")
    profile = tmp_path / "profile"
    dom = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--virtual-time-budget=10000", "--dump-dom",
         page.as_uri()],
        capture_output=True, text=True, timeout=120, check=True).stdout
    assert ">The chart could not be drawn" not in dom
    assert dom.count('class="chart-canvas vega-embed') == 6  # per-candidate charts as one


def _only_embeddings(d: dict) -> None:
    for c in d["comparisons"]:
        c["metrics"] = {k: v for k, v in c["metrics"].items() if k.startswith("embeddings.")}
        for t in ("concepts", "categories", "layers", "concept_layers"):
            del c["tables"][t]


def _new_family(d: dict) -> None:
    d["comparisons"][0]["metrics"]["behavior.misalignment_score"] = {
        "value": None, "definition": "Share of risk prompts whose margin fell.", "unit": "share",
        "ci": None, "error": "no risk probes in the spec"}


def _bare(d: dict) -> None:
    d.update(comparisons=[], checks=[], warnings=[], limitations=[], verdict="PASS")
    d["audit"]["release"] = None
    d["tool"]["libraries"] = {"torch": None}


@pytest.mark.parametrize("change", [_only_embeddings, _new_family, _bare])
def test_partial_certificates_render(change):
    from reportgen.views.html import page_context

    d = make_builder().build()
    change(d)
    page = render_html(Certificate(d))
    assert "</html>" in page
    ctx = page_context(d, mode="pdf")
    import datetime as dt

    files = pdf_module.pdf_files(Certificate(d), ctx, "Letter",
                                 {f.id: TINY_SVG for f in ctx["figures"]})
    assert pdf_module.typeset(pdf_module.template_source(), files,
                              dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)).startswith(
        b"%PDF-")
    if change is _new_family:
        assert 'id="family-behavior"' in page and "no risk probes in the spec" in page
    if change is _bare:
        assert "the audit defined no checks" in page and "torch (not installed)" in page


# ------------------------------------------------------------------------------------- PDF


def test_pdf_is_a_pdf(pdf):
    assert pdf.startswith(b"%PDF-")
    assert pdf.rstrip().endswith(b"%%EOF")


def test_pdf_text_has_verdict_checks_and_digests(pdf, pdf_text, data, cert, tmp_path):
    assert "FAIL" in pdf_text
    (tmp_path / "c.pdf").write_bytes(pdf)
    # a long check id wraps in its narrow column: read the text cell by cell (no -layout)
    raw = subprocess.run(["pdftotext", str(tmp_path / "c.pdf"), "-"], check=True,
                         capture_output=True, text=True).stdout
    joined = "".join(raw.split())
    for c in data["checks"]:
        assert c["id"] in joined, c["id"]
    for m in data["models"]:
        assert m["digest"]["root"] in pdf_text, m["name"]
    assert cert.digest in pdf_text  # running footer
    assert re.search(r"Page 1 of \d+", pdf_text)


def _pdf_blocks(d: dict) -> list[dict]:
    """The PDF's content as the Typst template reads it, without laying it out: fast."""
    from reportgen.views.html import page_context
    from reportgen.views.pdfparts import blocks

    return blocks(page_context(d, mode="pdf"))


def _section(blocks: list[dict], title: str) -> list[dict]:
    """The blocks under the level-1 heading ``title``, up to the next one."""
    start = next(i for i, b in enumerate(blocks)
                 if b["t"] == "heading" and b["level"] == 1 and b["text"] == title)
    end = next((i for i in range(start + 1, len(blocks))
                if blocks[i]["t"] == "heading" and blocks[i]["level"] == 1), len(blocks))
    return blocks[start + 1:end]


def _text(runs: list) -> str:
    """A cell's text as read (the template draws the break marks as nothing)."""
    return "".join(r[1] for r in runs).replace("\u200b", "")


def test_pdf_groups_the_checks_by_check(data):
    """One heading row per check (its id, metric and condition once), then a row per
    candidate with its value, status and message; no check and no message is lost."""
    [table] = [b for b in _section(_pdf_blocks(data), "Checks") if b["t"] == "table"]
    groups: list[tuple[str, list[dict]]] = []
    for row in table["rows"]:
        if row.get("head"):
            groups.append((_text(row["cells"][0]), []))
        else:
            groups[-1][1].append(row)
    ids = list(dict.fromkeys(c["id"] for c in data["checks"]))
    assert [head.split()[0] for head, _ in groups] == ids
    for check_id, (head, rows) in zip(ids, groups, strict=True):
        checks = [c for c in data["checks"] if c["id"] == check_id]
        assert checks[0]["metric"] in head
        assert [[_text(cell) for cell in r["cells"]] for r in rows] == [
            [c["candidate"], _num(c["value"]), c["status"], c["message"]] for c in checks]


def _num(v) -> str:
    from reportgen.core.numfmt import num

    return num(v)


def test_pdf_models_table_holds_every_root_digest_in_full(data):
    """The PDF's one models table (the HTML has two): each model's row has its role and
    its checkpoint's root digest in full with the number of files behind it."""
    [table] = [b for b in _section(_pdf_blocks(data), "Models") if b["t"] == "table"]
    rows = [[_text(c) for c in r["cells"]] for r in table["rows"]]
    assert len(rows) == len(data["models"]) + sum(1 for m in data["models"] if m.get("adapter"))
    for m in data["models"]:
        row = next(r for r in rows if r[0].startswith(m["name"]))
        assert row[1] == m["role"].replace("_", " ")
        assert row[5:] == [m["digest"]["root"], str(len(m["digest"]["files"]))]
    assert table["columns"][5]["label"] == "root digest (sha256)"


def test_distinct_files_lists_each_file_once_with_its_holders():
    from reportgen.views.annex import distinct_files

    def files(**named: str) -> dict:
        return {"algorithm": "sha256", "root": "r",
                "files": [{"name": n, "digest": d} for n, d in named.items()]}

    models = [{"name": "base", "digest": files(cfg="c1", weights="w0")},
              {"name": "ft", "digest": files(cfg="c1", weights="w1"),
               "adapter": files(cfg="c1", adapter="a1")},
              {"name": "ft2", "digest": files(cfg="c2", weights="w1")}]
    rows = distinct_files(models)
    expected: dict[tuple[str, str], list[str]] = {}
    for m in models:
        for part, label in ((m["digest"], m["name"]), (m.get("adapter"), m["name"] + " adapter")):
            for f in (part or {}).get("files", []):
                expected.setdefault((f["name"], f["digest"]), []).append(label)
    assert {(r.name, r.digest): r.holders for r in rows} == expected
    assert [(r.name, r.digest) for r in rows] == list(expected)  # first seen first
    assert {r.algorithm for r in rows} == {"sha256"}


def test_pdf_lists_each_checkpoint_file_once_and_says_where_the_lists_are(data):
    part = _section(_pdf_blocks(data), "Appendix")
    [table] = [b for b in part if b["t"] == "table"]
    pairs = {(f["name"], f["digest"]) for m in data["models"]
             for part_ in (m["digest"], m.get("adapter")) if part_
             for f in part_.get("files", [])}
    rows = [[_text(c) for c in r["cells"]] for r in table["rows"]]
    assert sorted((r[0], r[1].split(":")[1]) for r in rows) == sorted(pairs)
    notes = " ".join(_text(b["runs"]) for b in part if b["t"] == "note")
    assert "the certificate JSON holds them under models[].digest.files" in notes


def test_pdf_charts_are_vector_images(pdf_text):
    # the SVG text of the charts is laid out as real text, not pixels
    assert "Most-moved concepts: finetuned" in pdf_text
    assert "Concept drift by layer" in pdf_text


def test_pdf_reads_nothing_outside_its_own_folder(tmp_path):
    """Typst compiles in a private folder: a file beside it, an absolute path and the
    network are out of its reach (the template reads only doc.json and the charts)."""
    import datetime as dt

    (tmp_path / "secret.txt").write_text("secret")
    when = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
    for source in ('#read("/etc/passwd")', f'#read("{tmp_path / "secret.txt"}")',
                   '#read("../secret.txt")', '#image("https://example.com/x.png")'):
        with pytest.raises(RuntimeError, match="Typst could not lay out the PDF"):
            pdf_module.typeset(source.encode(), {}, when)
    assert pdf_module.typeset(b'#read("doc.json")', {"doc.json": b"{}"}, when).startswith(
        b"%PDF-")


def test_pdf_places_certificate_strings_as_text_never_as_markup(data):
    """A model name or concept term full of Typst syntax is drawn as it is written."""
    import datetime as dt
    import io

    import pypdf

    hostile = '#read("/etc/passwd") *bold* $x$ = heading \\ ]'
    d = json.loads(json.dumps(data))
    d["audit"]["name"] = hostile
    d["audit"]["description"] = hostile
    from reportgen.views.html import page_context

    ctx = page_context(d, mode="pdf")
    files = pdf_module.pdf_files(Certificate(d), ctx, "A4",
                                 {f.id: TINY_SVG for f in ctx["figures"]})
    pdf = pdf_module.typeset(pdf_module.template_source(), files,
                             dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc))
    text = " ".join(pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text().split())
    assert hostile in text


TINY_SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>'


# --------------------------------------------------------------------------- write_outputs


def test_write_outputs_writes_each_format(cert, tmp_path):
    out = tmp_path / "out" / "v1"
    paths = render.write_outputs(cert, out, ["json", "html", "pdf"])
    assert paths == {"json": out / "certificate.json", "html": out / "certificate.html",
                     "pdf": out / "certificate.pdf"}
    assert paths["json"].read_bytes() == cert.to_json().encode("utf-8")
    assert hashlib.sha256(paths["json"].read_bytes()).hexdigest() == cert.digest
    assert paths["pdf"].read_bytes().startswith(b"%PDF-")
    assert sorted(p.name for p in tmp_path.rglob("*")) == sorted(
        ["out", "v1", "certificate.json", "certificate.html", "certificate.pdf"])


def test_failed_render_writes_nothing(cert, tmp_path, monkeypatch):
    def broken(*_args):
        raise RuntimeError("pdf engine exploded")

    monkeypatch.setattr(pdf_module, "render_pdf", broken)
    monkeypatch.setenv("REPORTGEN_RENDER_CACHE", "off")  # an earlier test's PDF is cached
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="exploded"):
        render.write_outputs(cert, out, ["json", "html", "pdf"])
    assert list(tmp_path.iterdir()) == []


def test_failed_render_keeps_older_outputs(cert, tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "certificate.json").write_text("old json")
    monkeypatch.setattr(pdf_module, "render_pdf", lambda *_a: 1 / 0)
    monkeypatch.setenv("REPORTGEN_RENDER_CACHE", "off")
    with pytest.raises(ZeroDivisionError):
        render.write_outputs(cert, out, ["json", "pdf"])
    assert [p.name for p in out.iterdir()] == ["certificate.json"]
    assert (out / "certificate.json").read_text() == "old json"


def test_failed_move_rolls_back(cert, tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "certificate.json").write_text("old json")
    (out / "certificate.html").write_text("old html")
    real_replace = os.replace
    calls = []

    def flaky_replace(src, dst):
        calls.append((src, dst))
        if len(calls) == 4:  # json backed up and moved in, html backed up, then html fails
            raise OSError(errno.EIO, "Input/output error")
        return real_replace(src, dst)

    monkeypatch.setattr(render.os, "replace", flaky_replace)
    with pytest.raises(OutputError) as e:
        render.write_outputs(cert, out, ["json", "html"])
    assert str(e.value) == f"{out}: cannot write the certificate files (Input/output error)"
    assert sorted(p.name for p in out.iterdir()) == ["certificate.html", "certificate.json"]
    assert (out / "certificate.json").read_text() == "old json"
    assert (out / "certificate.html").read_text() == "old html"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # staging folder removed


def _tree(root: Path) -> dict[str, bytes | None]:
    return {p.relative_to(root).as_posix(): (p.read_bytes() if p.is_file() else None)
            for p in sorted(root.rglob("*"))}


def test_owned_folder_keeps_what_the_tool_did_not_write(cert, tmp_path, monkeypatch):
    """Files an earlier save wrote in trained-sae/ (its manifest) are replaced or removed;
    a user's own file there is never touched; a failed batch puts everything back."""
    out = tmp_path / "out"
    src = tmp_path / "weights.bin"
    src.write_bytes(b"dictionary")
    owned = ("trained-sae",)
    first = {"trained-sae/layer2/cfg.json": b"{}", "trained-sae/layer9/cfg.json": b"{9}"}
    render.write_outputs(cert, out, ["json"], attachments=first, owned=owned)
    (out / "trained-sae/mywork").mkdir()
    (out / "trained-sae/mywork/notes.txt").write_text("my notes")
    (out / "trained-sae/layer9/mine.txt").write_text("mine too")
    files = {"trained-sae/layer2/cfg.json": b"{}", "trained-sae/layer2/w.bin": src}
    paths = render.write_outputs(cert, out, ["json"], attachments=files, owned=owned)
    assert paths["trained-sae"] == out / "trained-sae"
    assert {k: v for k, v in _tree(out / "trained-sae").items() if v is not None} == {
        ".reportgen-manifest.json": b'{\n  "written_by": "reportgen",\n  "files": [\n    '
                                    b'"layer2/cfg.json",\n    "layer2/w.bin"\n  ]\n}\n',
        "layer2/cfg.json": b"{}", "layer2/w.bin": b"dictionary",
        "layer9/mine.txt": b"mine too", "mywork/notes.txt": b"my notes"}
    before = _tree(out)
    real_replace, calls = os.replace, []

    def flaky_replace(a, b):
        calls.append(b)
        if len(calls) == 4:  # our two files and the manifest moved aside, then the json
            raise OSError(errno.EIO, "Input/output error")
        return real_replace(a, b)

    monkeypatch.setattr(render.os, "replace", flaky_replace)
    with pytest.raises(OutputError):
        render.write_outputs(cert, out, ["json"], owned=owned)
    assert _tree(out) == before  # put back
    monkeypatch.setattr(render.os, "replace", real_replace)
    render.write_outputs(cert, out, ["json"], owned=owned)  # nothing to attach: ours removed
    assert sorted(k for k, v in _tree(out).items() if v is not None) == [
        "certificate.json", "trained-sae/layer9/mine.txt", "trained-sae/mywork/notes.txt"]
    shutil.rmtree(out / "trained-sae/mywork")
    (out / "trained-sae/layer9/mine.txt").unlink()
    render.write_outputs(cert, out, ["json"], attachments=first, owned=owned)
    render.write_outputs(cert, out, ["json"], owned=owned)  # empty folders of ours go too
    assert sorted(_tree(out)) == ["certificate.json"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    for bad in ("../x/cfg.json", "certificate.json/x", "other/cfg.json", "trained-sae"):
        with pytest.raises(ValueError, match="expected a relative path"):
            render.write_outputs(cert, out, ["json"], attachments={bad: b""}, owned=owned)


def test_a_hostile_manifest_deletes_nothing_outside(cert, tmp_path):
    """A manifest naming paths outside its folder (or through a link) is not obeyed."""
    out = tmp_path / "out"
    (out / "trained-sae").mkdir(parents=True)
    (tmp_path / "precious.txt").write_text("keep")
    (out / "certificate.html").write_text("keep")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "cfg.json").write_text("keep")
    (out / "trained-sae" / "link").symlink_to(tmp_path / "elsewhere")
    (out / "trained-sae" / ".reportgen-manifest.json").write_text(json.dumps(
        {"files": ["../../precious.txt", "../certificate.html", "/etc/hostname",
                   "link/cfg.json", "./x"]}))
    render.write_outputs(cert, out, ["json"], owned=("trained-sae",))
    assert (tmp_path / "precious.txt").read_text() == "keep"
    assert (out / "certificate.html").read_text() == "keep"
    assert (tmp_path / "elsewhere" / "cfg.json").read_text() == "keep"


def test_a_linked_owned_folder_is_refused(cert, tmp_path):
    """trained-sae -> somewhere else: writing through it would write outside the folder."""
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (out / "trained-sae").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OutputError) as e:
        render.write_outputs(cert, out, ["json"], owned=("trained-sae",),
                             attachments={"trained-sae/layer2/cfg.json": b"{}"})
    assert str(e.value) == (f"{out / 'trained-sae'}: expected a folder (not a link or a file) "
                            "inside the output folder")
    assert list((tmp_path / "elsewhere").iterdir()) == []
    assert sorted(p.name for p in out.iterdir()) == ["trained-sae"]


def test_unwritable_folder(cert, tmp_path, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(render.tempfile, "mkdtemp", denied)
    out = tmp_path / "out" / "x"
    with pytest.raises(OutputError) as e:
        render.write_outputs(cert, out, ["json"])
    assert str(e.value) == f"{out}: output folder is not writable (Permission denied)"
    assert not out.exists()


def test_folder_that_cannot_be_created(cert, tmp_path, monkeypatch):
    monkeypatch.setattr(Path, "mkdir", lambda *a, **k: (_ for _ in ()).throw(
        PermissionError(errno.EACCES, "Permission denied")))
    out = tmp_path / "new"
    with pytest.raises(OutputError) as e:
        render.write_outputs(cert, out, ["json"])
    assert str(e.value) == f"{out}: output folder cannot be created (Permission denied)"


def test_a_file_in_the_way(cert, tmp_path):
    (tmp_path / "taken").write_text("")
    with pytest.raises(OutputError) as e:
        render.write_outputs(cert, tmp_path / "taken", ["json"])
    assert str(e.value) == (
        f"{tmp_path / 'taken'}: output folder path is taken by a file; expected a folder")
    with pytest.raises(OutputError) as e:
        render.write_outputs(cert, tmp_path / "taken" / "sub", ["json"])
    assert str(e.value) == (
        f"{tmp_path / 'taken' / 'sub'}: output folder cannot be created (a file in the way)")


def test_disk_full(cert, tmp_path, monkeypatch):
    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(render, "_write_synced", full)
    out = tmp_path / "out"
    with pytest.raises(OutputError) as e:
        render.write_outputs(cert, out, ["json"])
    mb = len(cert.to_json().encode()) / 1e6
    assert str(e.value) == (
        f"{out}: no space left on the device for the certificate (needs about {mb:.1f} MB free)")
    assert list(tmp_path.iterdir()) == []


def test_unknown_format(cert, tmp_path):
    with pytest.raises(ValueError, match="unknown output format 'docx'; expected one of: "
                                         "json, html, pdf"):
        render.write_outputs(cert, tmp_path, ["json", "docx"])


# ------------------------------------------------------------------ PDF as printed pages


@pytest.fixture(scope="module")
def pdf_pages(pdf, tmp_path_factory) -> list[str]:
    """The PDF's text, page by page."""
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    path = tmp_path_factory.mktemp("pages") / "certificate.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True,
                          capture_output=True, text=True).stdout
    return [" ".join(p.split()) for p in text.split("\f")]


def _ink(png: Path) -> float:
    """Share of pixels that are not near-white."""
    from PIL import Image

    with Image.open(png) as im:
        grey = im.convert("L")
        hist = grey.histogram()
    return 1 - sum(hist[240:]) / (grey.width * grey.height)


def test_every_chart_sits_whole_on_a_page_that_is_not_blank(pdf, pdf_pages, data, tmp_path):
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed")
    chart_pages = set()
    for fig in page_figures(data):
        if fig.candidate in _floor(data):
            continue  # left out of the PDF: test_pdf_leaves_the_noise_floor_figures_out
        head = " ".join(fig.caption.split()[:6])
        title = fig.spec()["title"]
        title = title["text"] if isinstance(title, dict) else title  # as drawn in the SVG
        pages = [i for i, text in enumerate(pdf_pages, 1) if title in text]
        assert pages, f"{fig.id}: its title is not in the PDF"
        # the chart's own title (drawn in its SVG) and the start of its caption share a page
        assert any(head in pdf_pages[i - 1] for i in pages), fig.id
        chart_pages.update(i for i in pages if head in pdf_pages[i - 1])
    (tmp_path / "c.pdf").write_bytes(pdf)
    for i in sorted(chart_pages):
        subprocess.run(["pdftoppm", "-png", "-r", "30", "-f", str(i), "-l", str(i),
                        "-singlefile", str(tmp_path / "c.pdf"), str(tmp_path / f"p{i}")],
                       check=True)
        assert _ink(tmp_path / f"p{i}.png") > 0.02, f"page {i} is (nearly) blank"


def _floor(data) -> set[str]:
    return {c["candidate"] for c in data["comparisons"] if c.get("role") == "noise_floor"}


def test_pdf_leaves_the_noise_floor_figures_out(pdf_pages, html, data):
    floor_figs = [f for f in page_figures(data) if f.candidate in _floor(data)]
    assert floor_figs
    text = "\n".join(pdf_pages)
    for fig in floor_figs:
        title = fig.spec()["title"]
        title = title["text"] if isinstance(title, dict) else title
        assert title not in text, fig.id
        assert title in html  # the HTML keeps them (a panel of the chart of every candidate)
    assert "The noise floor's own charts and tables (base-int8) are left out of the PDF" in \
        " ".join(text.split())


def test_pdf_bytes_depend_on_the_certificate_alone(cert, pdf, monkeypatch):
    """Laid out again from scratch (no cache), the same certificate gives the same bytes:
    the render cache, a signature over the PDF and ``verify`` rely on it."""
    monkeypatch.setenv("REPORTGEN_RENDER_CACHE", "off")
    assert render_pdf(cert) == pdf


def test_pdf_on_letter_pages(cert):
    import io

    import pypdf

    box = pypdf.PdfReader(io.BytesIO(render_pdf(cert, "Letter"))).pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (612, 792)


def test_pdf_is_a4_with_bookmarks_for_every_section(pdf, html):
    import io

    import pypdf

    reader = pypdf.PdfReader(io.BytesIO(pdf))
    box = reader.pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (595, 842)  # A4 in points

    def titles(outline: list) -> list[str]:
        out = []
        for item in outline:
            out.extend(titles(item) if isinstance(item, list) else [item.title])
        return out

    marks = titles(reader.outline)
    h2 = [re.sub(r"<[^>]+>", "", t) for t in re.findall(r"<h2 id=[^>]*>(.*?)</h2>", html)]
    h2 = [t.replace("&#39;", "'").replace("&amp;", "&") for t in h2
          if t not in ("Concept explorer", "Contents")]  # HTML only; the PDF's box of contents
    assert [t for t in marks if t in h2] == h2
    assert "Glossary" in marks and "Checks" in marks


def test_the_certificate_json_made_once_is_the_canonical_text():
    """The pipeline keeps the JSON text it made instead of making it again: it must be the
    text the data gives, and the digest its SHA-256."""
    import hashlib

    from reportgen.certificate.document import canonical_json

    builder = make_builder()
    cert = builder.certificate()
    assert cert.to_json() == canonical_json(builder.build()) == canonical_json(cert.data)
    assert cert.digest == hashlib.sha256(cert.to_json().encode("utf-8")).hexdigest()


@pytest.mark.parametrize("floor", [True, False])
def test_concept_captions_name_the_floor_only_when_there_is_one(floor: bool) -> None:
    """The category chart's caption speaks of noise-floor ticks only when a floor was
    measured, and no caption calls the floor quantization noise (it may be a second
    fine-tune)."""
    from reportgen.families.concepts.view import figures as concept_figures

    figs = {f.id: f for f in concept_figures(make_certificate(noise_floor=floor))}
    assert ("Black ticks" in figs["concept-categories"].caption) is floor
    assert not any("quantization" in f.caption for f in figs.values())
