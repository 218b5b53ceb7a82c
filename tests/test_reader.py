"""The certificate as its readers meet it: in a browser at two widths, and on paper.

One synthetic certificate (tests/certfactory.py) is rendered once per module; Chromium opens
it offline through the DevTools protocol (tests/cdp.py), so every console message, script
error, CSP report and attempted request is seen, not guessed from the final DOM.
"""

from __future__ import annotations

import json
import re
from itertools import pairwise
from pathlib import Path

import pytest
from cdp import Browser, chromium
from certfactory import make_certificate

from reportgen.api import Certificate
from reportgen.families import families
from reportgen.families.concepts import view_explorer as explorer
from reportgen.views.glossary import glossary
from reportgen.views.html import environment, page_context, render_html, section_limitations

CHARTS_DRAWN = """Array.from(document.querySelectorAll('.chart-canvas')).map(function (c) {
  var svg = c.querySelector('svg.marks');
  return [c.id, svg ? svg.querySelectorAll('path, rect, line, text').length : 0];
})"""
OVERFLOW = "[document.documentElement.scrollWidth, document.body.scrollWidth, innerWidth]"
RESULT = "document.getElementById('explorer-result').innerText"


@pytest.fixture(scope="module")
def data() -> dict:
    return make_certificate()


@pytest.fixture(scope="module")
def page(data, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("reader") / "certificate.html"
    path.write_text(render_html(Certificate(data)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if chromium() is None:
        pytest.skip("chromium is not installed")
    with Browser(tmp_path_factory.mktemp("profile")) as b:
        yield b


# ------------------------------------------------------------------------------ browser


@pytest.mark.browser
@pytest.mark.parametrize("width", [1400, 800])
def test_page_in_chromium(browser, page, data, width):
    browser.open(page.as_uri(), width)
    shown = page_context(data, mode="html")["figures"]  # per-candidate charts drawn as one
    n_figures = len(shown)
    drawn = browser.wait_for(f"(function(){{var d = {CHARTS_DRAWN}; return d.length === "
                             f"{n_figures} && d.every(function (x) {{ return x[1] > 0; }}) "
                             "&& d;})()")
    assert drawn, browser.eval(CHARTS_DRAWN)
    assert {i for i, _ in drawn} == {f"chart-{f.id}" for f in shown}
    assert browser.problems() == []
    assert browser.requests() == []
    doc_w, body_w, view_w = browser.eval(OVERFLOW)
    assert doc_w <= view_w and body_w <= view_w, "the page scrolls sideways"


@pytest.mark.browser
def test_concept_explorer_answers_a_typed_concept(browser, page, data):
    browser.open(page.as_uri(), 800)
    term = "savings"
    browser.type_into("#explorer-input", term)
    text = browser.wait_for(f"{RESULT}.indexOf('{term} ·') === 0 && {RESULT}")
    assert text, browser.eval(RESULT)
    assert "category finance" in text
    for comp in data["comparisons"]:
        row = next(r for r in comp["tables"]["concepts"] if r["term"] == term)
        n = len(comp["tables"]["concepts"])
        assert f"{comp['candidate']}\t{row['rank']} of {n}\t" in text, comp["candidate"]
    layers = next(r for r in data["comparisons"][0]["tables"]["concept_layers"]
                  if r["term"] == term)["by_layer"]
    assert f"{len(layers) - 1}\t" in text  # one table row per layer
    assert browser.eval("document.querySelectorAll('#explorer-result svg polyline').length") \
        == len(data["comparisons"])
    browser.type_into("#explorer-input", "sav")
    assert "Did you mean: savings?" in browser.wait_for(
        f"{RESULT}.indexOf('No concept') === 0 && {RESULT}")
    assert browser.problems() == [] and browser.requests() == []
    doc_w, _, view_w = browser.eval(OVERFLOW)
    assert doc_w <= view_w


# ------------------------------------------------------------------------------- markup


def test_explorer_data_is_inert_json_and_its_script_is_hashed(page):
    html = page.read_text(encoding="utf-8")
    block = re.search(r'<script type="application/json" id="explorer-data">(.*?)</script>',
                      html, re.S)
    payload = json.loads(block.group(1))
    assert len(payload["concepts"]) == 40 and "<" not in block.group(1)
    assert explorer.SCRIPT in html
    assert "innerHTML" not in explorer.SCRIPT and "eval(" not in explorer.SCRIPT
    assert '<datalist id="explorer-terms">' in html


def test_explorer_holds_hostile_terms_as_data():
    data = make_certificate(terms=["</script><script>alert(1)</script>"]
                            + [f"t{i}" for i in range(1, 40)])
    html = render_html(Certificate(data))
    assert "</script><script>alert(1)" not in html
    assert "\\u003c/script\\u003e\\u003cscript\\u003ealert(1)" in html


def test_toc_lists_every_section_in_page_order(data):
    ctx = page_context(data, mode="html")
    ids = [i for i, _ in ctx["toc"]]
    assert [s.id for s in ctx["sections"]] == [i for i in ids if i.startswith("family-")]
    assert ids[-1] == "glossary" and "explorer" in ids
    html = environment().get_template("certificate.html.j2").render(
        {**ctx, "charts": {}, "images": {}, "js_bundle": "", "embed_script": "",
         "explorer_script": "", "explorer_json": "{}", "csp": ""})
    found = re.findall(r'<section[^>]* id="([^"]+)"', html)
    assert found == ids
    levels = [int(h) for h in re.findall(r"<h([1-6])\b", html)]
    assert levels[0] == 1 and all(b - a <= 1 for a, b in pairwise(levels))


def test_glossary_defines_the_words_a_reader_meets(page):
    terms = {t.term for t in glossary(families())}
    for word in ("Cosine distance", "CKA", "Jaccard overlap", "KL divergence", "Entropy",
                 "Noise floor", "Bootstrap interval", "SAE", "Feature", "Digest"):
        assert word in terms
    html = page.read_text(encoding="utf-8")
    assert html.count('<div id="glossary-') == len(terms)
    assert '<a href="#glossary">Glossary</a>' in html


def test_limitations_are_repeated_where_they_apply(data):
    ctx = page_context(data, mode="pdf")
    by_family = {s.family: s.limitations for s in ctx["sections"]}
    template, floor = data["limitations"]
    assert template in by_family["concepts"] and floor in by_family["concepts"]
    assert floor in by_family["embeddings"]  # the section reports noise-floor ratios
    assert template not in by_family["embeddings"]
    plugin = next(s for s in ctx["sections"] if s.family == "concepts")
    assert section_limitations({"limitations": ["Nothing about it."]}, plugin) == []


def test_explorer_is_absent_without_concepts_and_from_the_pdf(data):
    assert page_context(data, mode="pdf")["explorer"] is None
    bare = {**data, "comparisons": [{**c, "tables": {}} for c in data["comparisons"]]}
    assert explorer.explorer(bare) is None
    assert "explorer" not in [i for i, _ in page_context(bare, mode="html")["toc"]]


def test_page_size_letter_and_unknown_sizes(data):
    html = render_html(Certificate(data), "Letter")  # the PDF's: test_render.py
    assert "size: Letter;" in html and "size: A4" not in html
    with pytest.raises(ValueError, match="unknown page size 'A5'; expected one of: A4, Letter"):
        page_context(data, mode="pdf", page_size="A5")


def test_render_command_takes_a_page_size(data, tmp_path):
    from reportgen.cli.commands import main

    (tmp_path / "certificate.json").write_text(Certificate(data).to_json())
    assert main(["render", str(tmp_path / "certificate.json"), "--out", str(tmp_path / "out"),
                 "--formats", "html", "--page-size", "Letter"]) == 0
    assert "@page { size: Letter; }" in (tmp_path / "out" / "certificate.html").read_text()
