"""Rendered views, chart SVGs and the Vega bundle cached on disk, like captures and analyses.

Rendering the demo's certificate spends most of its time in vl-convert (each chart's SVG),
in building the Vega bundle and in laying out the pages (Typst);
none of it depends on anything but its inputs, so each result is kept under a key of exactly
those inputs and re-rendering the same certificate returns the same bytes without the work:

- a view (HTML, PDF): the certificate's digest (its JSON bytes), the format and page size,
  and :func:`fingerprint` (reportgen's version and source, the templates, the rendering
  libraries' versions);
- a chart's SVG: the Vega-Lite spec's canonical JSON and vl-convert's and Vega-Lite's
  versions, so a re-run that changed only a threshold redraws no unchanged chart;
- the Vega/Vega-Lite/Vega-Embed bundle: vl-convert's and Vega-Lite's versions.

A cached result is the bytes the renderer made for the same inputs, so the signed view
digests (:mod:`reportgen.release.verify_views`) hold whether a view came from the cache or
not. Entries live under ``$REPORTGEN_CACHE`` (see :mod:`reportgen.core.blobs`);
``REPORTGEN_RENDER_CACHE=off`` renders everything afresh.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from reportgen.core.blobs import has_blob, load_blob, save_blob
from reportgen.core.resources import templates_dir
from reportgen.core.version import __version__

#: Bump when rendering changes in a way the fingerprint cannot see.
RENDER_VERSION = 1
KIND = "views"
_LIBS = ("altair", "vl-convert-python", "typst", "jinja2", "markupsafe", "pyphen")
_PACKAGE = Path(__file__).resolve().parents[1]


def enabled() -> bool:
    return os.environ.get("REPORTGEN_RENDER_CACHE", "").strip().lower() not in ("off", "0")


@functools.lru_cache(maxsize=1)
def fingerprint() -> str:
    """What every rendering depends on besides its own inputs: reportgen's version and the
    SHA-256 of its source and templates (so an edited checkout never reuses an older page),
    and the versions of the libraries that draw."""
    h = hashlib.sha256(f"{RENDER_VERSION}\0{__version__}\0".encode())
    for lib in _LIBS:
        try:
            h.update(f"{lib}={version(lib)}\0".encode())
        except PackageNotFoundError:
            h.update(f"{lib}=\0".encode())
    for root, pattern in ((_PACKAGE, "*.py"), (templates_dir(), "*")):
        for path in sorted(p for p in root.rglob(pattern) if p.is_file()):
            h.update(path.relative_to(root).as_posix().encode() + b"\0")
            h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def _key(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()[:40]


def cached(key: str, make: Callable[[], bytes]) -> bytes:
    """The bytes stored under ``key``, else ``make()``'s, stored for next time."""
    if not enabled():
        return make()
    hit = load_blob(KIND, key)
    if hit is not None:
        return hit
    data = make()
    save_blob(KIND, key, data)
    return data


def view(fmt: str, cert_digest: str, page_size: str, make: Callable[[], bytes]) -> bytes:
    """One format's bytes for the certificate with this digest."""
    return cached(_view_key(fmt, cert_digest, page_size), make)


def has_view(fmt: str, cert_digest: str, page_size: str) -> bool:
    return enabled() and has_blob(KIND, _view_key(fmt, cert_digest, page_size))


def _view_key(fmt: str, cert_digest: str, page_size: str) -> str:
    return _key("view", fmt, cert_digest, page_size, fingerprint())


def svg(spec: dict[str, Any], versions: str, make: Callable[[], str]) -> str:
    """One chart's SVG; ``versions`` names the converter and Vega-Lite versions."""
    return cached(svg_key(spec, versions), lambda: make().encode("utf-8")).decode("utf-8")


def svg_key(spec: dict[str, Any], versions: str) -> str:
    text = json.dumps(spec, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return _key("svg", str(RENDER_VERSION), versions, text)


def lookup(key: str) -> bytes | None:
    """What :func:`cached` would return without making it, if stored."""
    return load_blob(KIND, key) if enabled() else None


def store(key: str, data: bytes) -> None:
    """Store what was made elsewhere (a worker process) under ``key``."""
    if enabled():
        save_blob(KIND, key, data)


def bundle(versions: str, make: Callable[[], str]) -> str:
    """The Vega JavaScript bundle for these versions (about 0.9 MB, seconds to build)."""
    return cached(_bundle_key(versions), lambda: make().encode("utf-8")).decode("utf-8")


def has_bundle(versions: str) -> bool:
    return enabled() and has_blob(KIND, _bundle_key(versions))


def _bundle_key(versions: str) -> str:
    return _key("js", str(RENDER_VERSION), versions)
