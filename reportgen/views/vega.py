"""Vega in the views: the JavaScript bundle the HTML inlines and charts as static SVG.

Both come from vl-convert and take seconds (the bundle) or a fraction of one (a chart), so
both are cached on disk under their inputs (:mod:`reportgen.views.rendercache`).
"""

from __future__ import annotations

import base64
import functools
import re
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import altair as alt
import vl_convert

from reportgen.views import rendercache
from reportgen.views.vlworker import make_bundle

if TYPE_CHECKING:
    from reportgen.views.svgpool import SvgPool

__all__ = ["chart_svg", "js_bundle", "make_bundle", "start_bundle", "svg_data_uri"]


@functools.lru_cache(maxsize=1)
def vegalite_version() -> str | None:
    """The Vega-Lite version Altair writes specs for, if vl-convert ships it."""
    wanted = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
    return wanted if wanted in vl_convert.get_vegalite_versions() else None


#: bundles being built in a worker process (:func:`start_bundle`), by versions
_PENDING: dict[str, Future[str]] = {}


def start_bundle(pool: SvgPool) -> None:
    """Build the bundle in ``pool``'s worker while this process renders something else,
    unless the render cache has it (the first HTML an installation renders: 2.5 s)."""
    versions = _versions()
    if versions not in _PENDING and not rendercache.has_bundle(versions):
        _PENDING[versions] = pool.run(make_bundle, vegalite_version())


def _result(job: Future[str] | None) -> str | None:
    """The worker's bundle; None when there was none or it did not finish (its pool was
    shut down, or its process died), so the caller builds it here."""
    try:
        return job.result() if job is not None else None
    except Exception:  # noqa: BLE001  (CancelledError, BrokenProcessPool: build it here)
        return None


@functools.lru_cache(maxsize=1)
def js_bundle() -> str:
    """Vega, Vega-Lite and Vega-Embed in one script (about 0.9 MB), built once per process."""
    versions, version = _versions(), vegalite_version()
    pending = _PENDING.pop(versions, None)
    bundle = rendercache.bundle(versions, lambda: _result(pending) or make_bundle(version))
    # "</script" would end the inline element early and "<!--" changes how it is parsed;
    # both can only sit in string or regex literals, where "<\/" and "<\!" mean the same.
    bundle = re.sub(r"</(script)", r"<\\/\1", bundle, flags=re.IGNORECASE)
    return bundle.replace("<!--", "<\\!--")


def chart_svg(spec: dict[str, Any]) -> str:
    """A chart as static SVG (no JavaScript), for the PDF and notebooks; never fetches.
    Cached on disk by spec (see :mod:`reportgen.views.rendercache`)."""
    return rendercache.svg(spec, _versions(), lambda: vl_convert.vegalite_to_svg(
        spec, vl_version=vegalite_version(), allowed_base_urls=[]))


def cached_svg(spec: dict[str, Any]) -> str | None:
    """The chart's SVG if the render cache has it (:func:`chart_svg` without converting)."""
    hit = rendercache.lookup(rendercache.svg_key(spec, _versions()))
    return None if hit is None else hit.decode("utf-8")


def store_svg(spec: dict[str, Any], svg: str) -> str:
    """Keep a chart's SVG converted elsewhere (:mod:`reportgen.views.svgpool`); returns it."""
    rendercache.store(rendercache.svg_key(spec, _versions()), svg.encode("utf-8"))
    return svg


@functools.lru_cache(maxsize=1)
def _versions() -> str:
    """vl-convert's version and the Vega-Lite version it converts with (cache keys)."""
    from importlib.metadata import version

    return f"vl-convert {version('vl-convert-python')}; vega-lite {vegalite_version()}"


def svg_data_uri(spec: dict[str, Any]) -> str:
    svg = chart_svg(spec)
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")
