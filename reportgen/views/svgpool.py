"""Chart SVGs (and the Vega bundle) made in worker processes while this one renders the rest.

vl-convert holds the GIL for most of a conversion: a Python loop beside a thread converting
charts ran 12 times slower (benchmarks/RESULTS.md), so a worker thread only took turns with
the rest of the rendering. Worker processes convert truly in parallel on the other core. They
import only this module and vl-convert (no Altair, no torch); the charts already in the
render cache are read here and never sent. Where no process can be started, the charts are
converted here."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from reportgen.views.vlworker import convert


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
        job = self.run(convert, spec, version)

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

    def run(self, fn: Callable[..., str], *args: Any) -> Future[str]:
        """``fn(*args)`` in a worker process (a module-level function: it is pickled by
        name), or here where no process can be started."""
        try:
            return self._worker().submit(fn, *args)
        except (OSError, RuntimeError):
            job: Future[str] = Future()
            job.set_result(fn(*args))
            return job

    def _worker(self) -> Executor:
        if self._pool is None:  # two: the Vega bundle builds beside the charts
            self._pool = ProcessPoolExecutor(
                max_workers=min(2, os.cpu_count() or 1),
                mp_context=multiprocessing.get_context("spawn"))
        return self._pool
