"""What the worker processes of :mod:`reportgen.views.svgpool` run: vl-convert calls only.

A worker imports the module of the function it is sent, so these live apart from the rest
of the views: a worker imports this and vl-convert (no Altair, 0.5 s, no torch).
"""

from __future__ import annotations

from typing import Any


def convert(spec: dict[str, Any], vl_version: str | None) -> str:
    """One chart as SVG text (runs in the worker process); never fetches."""
    import vl_convert

    return vl_convert.vegalite_to_svg(spec, vl_version=vl_version, allowed_base_urls=[])


def make_bundle(vl_version: str | None) -> str:
    """The Vega JavaScript bundle (runs in a worker process)."""
    import vl_convert

    return vl_convert.javascript_bundle(vl_version=vl_version)
