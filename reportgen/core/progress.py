"""Progress on stderr: one line per stage, a live counter with an ETA for long loops.

Every long loop of an audit (capture batches, masked copies, SAE training, k-NN chunks, the
UMAP fit, rendering) reports through a :class:`Progress`: the one the audit made, found with
:func:`current` by code that is not handed it (a family's k-NN, the views), so no signature
changes to carry it. On a terminal a counter redraws in place with its ETA; in a log it
writes a line at most every ``interval`` seconds, and one summary line at the end. The ETA is
the rate so far applied to what is left (:func:`eta`); the clock can be replaced (tests).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from reportgen.core.terminal import terminal_safe


def eta(done: int, total: int, elapsed: float) -> float | None:
    """Seconds left if the rest goes at the rate so far; None before the first step."""
    if done <= 0 or elapsed <= 0:
        return None
    return max(total - done, 0) * elapsed / done


def duration(seconds: float) -> str:
    """'4.2s', '3m05s', '1h02m'."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    m, s = divmod(int(round(seconds)), 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"


class Progress:
    def __init__(self, enabled: bool = True, stream=None,
                 clock: Callable[[], float] = time.perf_counter, interval: float = 10.0):
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.clock = clock
        self.interval = interval  # seconds between lines of a counter when not on a terminal
        self.stages: list[str] = []  # every counter and stage entered, in order
        self._t0 = clock()

    def _elapsed(self) -> str:
        return f"{self.clock() - self._t0:6.1f}s"

    def say(self, msg: str) -> None:
        if self.enabled:
            print(f"[{self._elapsed()}] {terminal_safe(msg)}", file=self.stream, flush=True)

    def status(self, desc: str, done: int, total: int, elapsed: float) -> str:
        """'capture base: 40/100 (40%), 12.0s, ETA 18.0s'."""
        left = eta(done, total, elapsed)
        pct = f" ({100 * done // total}%)" if total > 0 else ""
        return (f"{desc}: {done}/{total}{pct}, {duration(elapsed)}"
                + (f", ETA {duration(left)}" if left is not None and done < total else ""))

    @contextmanager
    def counter(self, desc: str, total: int, quiet_under: float = 0.0
                ) -> Iterator[Callable[[int], None]]:
        """Yields ``advance(n)``. Loops that are often short pass ``quiet_under`` seconds:
        nothing is shown until the loop has run that long."""
        self.stages.append(desc)
        done = 0
        tty = self.enabled and self.stream.isatty()
        t = self.clock()
        last = t

        def advance(n: int = 1) -> None:
            nonlocal done, last
            done += n
            now = self.clock()
            if not self.enabled or now - t < quiet_under:
                return
            if tty:
                print(f"\r[{self._elapsed()}] {self.status(desc, done, total, now - t)}",
                      end="", file=self.stream, flush=True)
            elif now - last >= self.interval and done < total:
                last = now
                self.say(self.status(desc, done, total, now - t))

        yield advance
        spent = self.clock() - t
        if spent < quiet_under:
            return
        if tty:
            print(file=self.stream)
        self.say(f"{desc}: {done}/{total} in {spent:.1f}s")

    @contextmanager
    def stage(self, desc: str) -> Iterator[None]:
        """One long step without steps to count (a UMAP fit): its start and its time."""
        self.stages.append(desc)
        t = self.clock()
        self.say(f"{desc} ...")
        yield
        self.say(f"{desc}: done in {self.clock() - t:.1f}s")

    @contextmanager
    def active(self) -> Iterator[Progress]:
        """Make this the progress :func:`current` returns while the block runs."""
        token = _CURRENT.set(self)
        try:
            yield self
        finally:
            _CURRENT.reset(token)


_CURRENT: ContextVar[Progress | None] = ContextVar("reportgen_progress", default=None)


def current() -> Progress:
    """The running audit's progress, or a silent one outside an audit."""
    return _CURRENT.get() or Progress(False)
