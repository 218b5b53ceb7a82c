"""The render cache: a view or chart from the cache is the bytes a fresh render makes, keyed
by everything it depends on, and a corrupt entry is redrawn."""

from __future__ import annotations

import copy

import pytest
from certfactory import make_builder

import reportgen.release.write as write
import reportgen.views.pdf as pdf_module
import reportgen.views.vega as vega
from reportgen.api import Certificate
from reportgen.core.blobs import cache_root
from reportgen.views import rendercache
from reportgen.views.html import figures


@pytest.fixture(scope="module")
def fresh_cache(tmp_path_factory):
    """One cache for this file's tests (each PDF render takes seconds), no other test's."""
    path = tmp_path_factory.mktemp("render-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REPORTGEN_CACHE", str(path))
        yield path


@pytest.fixture(scope="module")
def cert() -> Certificate:
    return Certificate(make_builder(n_concepts=12).build())


def _explode(*_args):
    raise AssertionError("rendered again instead of read from the cache")


def test_cached_views_are_the_fresh_bytes(cert, fresh_cache, monkeypatch):
    first = write.render_outputs(cert, ["html", "pdf"])
    assert len(list((fresh_cache / rendercache.KIND).iterdir())) > 2  # views, charts, bundle
    monkeypatch.setattr(pdf_module, "render_pdf", _explode)
    import reportgen.views.html as html_module

    monkeypatch.setattr(html_module, "render_html", _explode)
    assert write.render_outputs(cert, ["html", "pdf"]) == first
    monkeypatch.setenv("REPORTGEN_RENDER_CACHE", "off")
    with pytest.raises(AssertionError, match="rendered again"):
        write.render_outputs(cert, ["pdf"])


def test_the_key_covers_the_certificate_and_page_size(cert, fresh_cache, monkeypatch):
    write.render_outputs(cert, ["pdf"])
    monkeypatch.setattr(pdf_module, "render_pdf", _explode)
    with pytest.raises(AssertionError, match="rendered again"):
        write.render_outputs(cert, ["pdf"], page_size="Letter")
    other = Certificate(copy.deepcopy(cert.data))
    other.data["audit"]["release"] = "another"
    with pytest.raises(AssertionError, match="rendered again"):
        write.render_outputs(other, ["pdf"])


def test_a_signature_is_appended_to_the_cached_pdf(cert, fresh_cache):
    from reportgen.release.pdfsign import append_signature

    plain = write.render_outputs(cert, ["pdf"])["pdf"]
    signed = write.render_outputs(cert, ["pdf"], signature=b'{"sig": 1}')["pdf"]
    assert signed == append_signature(plain, b'{"sig": 1}')


def test_chart_svgs_come_from_the_cache_unchanged(cert, fresh_cache, monkeypatch):
    spec = figures(cert.data)[0].spec()
    fresh = vega.chart_svg(spec)
    calls = []
    real = vega.vl_convert.vegalite_to_svg
    monkeypatch.setattr(vega.vl_convert, "vegalite_to_svg",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    assert vega.chart_svg(spec) == fresh and calls == []
    changed = {**spec, "title": "another title"}
    assert vega.chart_svg(changed) != fresh and calls == [1]


def test_a_corrupt_entry_is_redrawn(cert, fresh_cache):
    first = write.render_outputs(cert, ["html"])["html"]
    for payload in (fresh_cache / rendercache.KIND).glob("*/payload"):
        payload.write_bytes(b"garbage")
    assert write.render_outputs(cert, ["html"])["html"] == first
    assert cache_root() == fresh_cache
