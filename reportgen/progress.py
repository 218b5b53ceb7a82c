"""Progress on stderr: one line per stage, a live counter for long loops on a terminal."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from .terminal import terminal_safe


class Progress:
    def __init__(self, enabled: bool = True, stream=None):
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self._t0 = time.perf_counter()

    def _elapsed(self) -> str:
        return f"{time.perf_counter() - self._t0:6.1f}s"

    def say(self, msg: str) -> None:
        if self.enabled:
            print(f"[{self._elapsed()}] {terminal_safe(msg)}", file=self.stream, flush=True)

    @contextmanager
    def counter(self, desc: str, total: int) -> Iterator[callable]:
        """Yields ``advance(n)``; redraws in place on a TTY, one summary line otherwise."""
        done = 0
        tty = self.enabled and self.stream.isatty()
        t = time.perf_counter()

        def advance(n: int = 1) -> None:
            nonlocal done
            done += n
            if tty:
                print(f"\r[{self._elapsed()}] {desc}: {done}/{total}", end="",
                      file=self.stream, flush=True)

        yield advance
        if tty:
            print(file=self.stream)
        self.say(f"{desc}: {done}/{total} in {time.perf_counter() - t:.1f}s")
