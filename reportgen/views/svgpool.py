"""Chart SVGs converted in a separate process, while this one renders the rest of the views.

vl-convert holds the GIL for most of a conversion: a Python loop beside a thread converting
charts ran 12 times slower (benchmarks/RESULTS.md), so a worker thread only took turns with
WeasyPrint. A worker process converts truly in parallel on a second core. It imports only
this module and vl-convert (no Altair, no torch); the charts already in the render cache are
read here and never sent. Where no process can be started, the charts are converted here.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any


def convert(spec: dict[str, Any], vl_version: str | None) -> str:
    """One chart as SVG text (runs in the worker process); never fetches."""
    import vl_convert

    return vl_convert.vegalite_to_svg(spec, vl_version=vl_version, allowed_base_urls=[])


class SvgPool:
    """``submit(spec)`` gives a future of the chart's SVG bytes, from the render cache or
    from one worker process; used as a context manager, which stops the worker."""

    def __init__(self) -> None:
        self._pool: Executor | None = None

    def __enter__(self) -> SvgPool:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, spec: dict[str, Any]) -> Future[bytes]:
        from reportgen.views import vega

        done: Future[bytes] = Future()
        hit = vega.cached_svg(spec)
        if hit is not None:
            done.set_result(hit.encode("utf-8"))
            return done
        version = vega.vegalite_version()
        try:
            job = self._worker().submit(convert, spec, version)
        except (OSError, RuntimeError):  # no process to be had here: convert in this one
            job = Future()
            job.set_result(convert(spec, version))

        def store(f: Future[str]) -> None:
            try:
                try:
                    svg = f.result()
                except BrokenProcessPool:  # the worker died (killed, out of memory): here
                    svg = convert(spec, version)
                done.set_result(vega.store_svg(spec, svg).encode("utf-8"))
            except BaseException as e:  # noqa: BLE001  (re-raised where the SVG is read)
                done.set_exception(e)

        job.add_done_callback(store)
        return done

    def _worker(self) -> Executor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        return self._pool
