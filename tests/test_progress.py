"""Progress with an ETA: the arithmetic on a fake clock, the lines on a log and a terminal,
and that every long loop of an audit reports through the audit's progress."""

from __future__ import annotations

import io

import pytest
from golden.golden import tiny_spec

from reportgen.core.progress import Progress, current, duration, eta
from reportgen.pipeline import run_audit


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_eta_is_the_rate_so_far_applied_to_what_is_left() -> None:
    assert eta(0, 10, 5.0) is None and eta(3, 10, 0.0) is None
    assert eta(4, 10, 2.0) == pytest.approx(3.0)  # 2 s per 4 steps, 6 left
    assert eta(10, 10, 7.0) == 0.0 and eta(12, 10, 7.0) == 0.0
    assert [duration(s) for s in (4.25, 59.9, 185, 3720)] == ["4.2s", "59.9s", "3m05s",
                                                              "1h02m"]


def test_counter_on_a_log_writes_a_line_per_interval_with_its_eta() -> None:
    clock, out = Clock(), io.StringIO()
    prog = Progress(stream=out, clock=clock, interval=10.0)
    with prog.counter("capture base", 10) as advance:
        clock.t += 5
        advance(1)  # 5 s since the start: under the interval, nothing yet
        clock.t += 7
        advance(2)  # 3 done in 12 s: 4 s each, 7 left
        clock.t += 3
        advance(1)  # 3 s since the last line
        clock.t += 45
        advance(6)  # done: the summary says it
    assert out.getvalue().splitlines() == [
        "[  12.0s] capture base: 3/10 (30%), 12.0s, ETA 28.0s",
        "[  60.0s] capture base: 10/10 in 60.0s"]


def test_counter_on_a_terminal_redraws_in_place() -> None:
    clock, out = Clock(), Tty()
    prog = Progress(stream=out, clock=clock)
    with prog.counter("masked copies", 4) as advance:
        clock.t += 2
        advance(1)
        clock.t += 2
        advance(1)
    assert out.getvalue() == ("\r[   2.0s] masked copies: 1/4 (25%), 2.0s, ETA 6.0s"
                              "\r[   4.0s] masked copies: 2/4 (50%), 4.0s, ETA 4.0s\n"
                              "[   4.0s] masked copies: 2/4 in 4.0s\n")


def test_short_loops_stay_quiet_and_stages_are_timed() -> None:
    clock, out = Clock(), Tty()
    prog = Progress(stream=out, clock=clock)
    with prog.counter("k-NN", 3, quiet_under=2.0) as advance:
        clock.t += 1
        advance(3)
    with prog.stage("UMAP over 12 points"):
        clock.t += 3
    assert out.getvalue().splitlines() == ["[   1.0s] UMAP over 12 points ...",
                                           "[   4.0s] UMAP over 12 points: done in 3.0s"]
    assert prog.stages == ["k-NN", "UMAP over 12 points"]


def test_current_is_the_active_progress_and_silent_outside() -> None:
    prog = Progress(False)
    assert current() is not prog and not current().enabled
    with prog.active():
        assert current() is prog
    assert current() is not prog


def test_every_long_loop_of_an_audit_reports_through_its_progress(
        tiny_models, tmp_path, monkeypatch) -> None:
    """A masked LM runs every long loop there is (masked copies too)."""
    kind = "distilbert"
    monkeypatch.setenv("REPORTGEN_CACHE", str(tmp_path / "cache"))  # nothing from a cache
    spec = tiny_spec(tiny_models, kind, tmp_path)
    spec["analysis"]["sae"] = [{"layer": 1, "train": {"d_sae": 16, "k": 2, "epochs": 1}}]
    spec["analysis"]["umap"] = True
    spec["output"] = {"formats": ["json", "html"]}
    prog = Progress(False)
    run_audit(spec, out=tmp_path / "out", progress=prog)
    seen = set(prog.stages)
    want = {"capture base", "capture ft", "capture int8", "SAE layer 1 training steps",
            "rendering", "masked copies"}
    assert want <= seen, want - seen
    assert any(s.startswith("k-NN over ") for s in seen)
    assert any(s.startswith("UMAP over ") for s in seen)
