"""Chart SVGs converted in a worker process (reportgen.views.svgpool): the same bytes as a
conversion in this process, kept in the render cache, a cached chart never sent, a failed
conversion raised where the chart is read."""

from __future__ import annotations

import pytest

import reportgen.views.vega as vega
from reportgen.views import svgpool
from reportgen.views.svgpool import SvgPool


def _spec(n: int) -> dict:
    return {"$schema": "https://vega.github.io/schema/vega-lite/v6.json",
            "data": {"values": [{"x": i, "y": i * n} for i in range(5)]},
            "mark": "line", "encoding": {"x": {"field": "x", "type": "quantitative"},
                                         "y": {"field": "y", "type": "quantitative"}}}


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REPORTGEN_CACHE", str(tmp_path))
    return tmp_path


def test_the_worker_draws_what_this_process_draws_and_caches_it(cache, monkeypatch):
    with SvgPool() as pool:
        futures = [pool.submit(_spec(n)) for n in (1, 2)]
        drawn = [f.result(timeout=120) for f in futures]
        assert pool._pool is not None  # a worker process drew them
    assert [vega.cached_svg(_spec(n)) for n in (1, 2)] == [d.decode() for d in drawn]
    monkeypatch.setenv("REPORTGEN_RENDER_CACHE", "off")
    assert drawn[0].decode() == vega.chart_svg(_spec(1))  # converted here, afresh


def test_a_cached_chart_starts_no_worker(cache):
    vega.chart_svg(_spec(3))
    with SvgPool() as pool:
        assert pool.submit(_spec(3)).result().decode() == vega.cached_svg(_spec(3))
        assert pool._pool is None


def test_a_failed_conversion_is_raised_where_the_chart_is_read(cache):
    with SvgPool() as pool:
        bad = pool.submit({"mark": "line", "encoding": {"x": {"field": "x", "type": "nope"}}})
        with pytest.raises(Exception, match="Vega-Lite to SVG conversion failed"):
            bad.result(timeout=120)


def test_without_a_process_the_chart_is_converted_here(cache, monkeypatch):
    def refuse(*_a, **_k):
        raise OSError("no processes here")

    monkeypatch.setattr(svgpool, "ProcessPoolExecutor", refuse)
    with SvgPool() as pool:
        assert pool.submit(_spec(4)).result().decode() == vega.cached_svg(_spec(4))


def test_a_worker_that_dies_leaves_the_chart_to_this_process(cache, monkeypatch):
    """A worker killed mid-way (out of memory, a signal) breaks its pool: the chart is then
    drawn here rather than failing the render."""
    import os
    import signal

    with SvgPool() as pool:
        pool.submit(_spec(5)).result(timeout=120)
        (pid,) = pool._pool._processes  # type: ignore[union-attr]
        os.kill(pid, signal.SIGKILL)
        assert pool.submit(_spec(6)).result(timeout=120).decode() == vega.cached_svg(_spec(6))


def test_the_vega_bundle_builds_in_a_worker_and_is_the_one_built_here(cache, monkeypatch):
    """An HTML render starts the bundle in a worker (write.render_outputs); js_bundle takes
    the worker's, the same text this process builds, and keeps it in the render cache."""
    vega.js_bundle.cache_clear()
    try:
        with SvgPool() as pool:
            vega.start_bundle(pool)
            job = vega._PENDING[vega._versions()]
            assert job.result(timeout=300) == vega.make_bundle(vega.vegalite_version())
            monkeypatch.setattr(vega, "make_bundle", lambda _v: pytest.fail("rebuilt"))
            page_script = vega.js_bundle()
        assert not vega._PENDING and len(page_script) > 100_000
        vega.js_bundle.cache_clear()
        assert vega.js_bundle() == page_script  # from the render cache, not rebuilt
    finally:
        vega.js_bundle.cache_clear()


def test_a_bundle_whose_worker_went_away_is_built_here(cache):
    vega.js_bundle.cache_clear()
    try:
        with SvgPool() as pool:
            vega.start_bundle(pool)
            pool._pool.shutdown(wait=False, cancel_futures=True)
            next(iter(vega._PENDING.values())).cancel()
        assert "vega" in vega.js_bundle()
    finally:
        vega._PENDING.clear()
        vega.js_bundle.cache_clear()
