"""Interrupted audits resume from the capture cache; corrupt cache entries are recomputed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

KILL_ON_SECOND_CAPTURE = """
import os, signal, sys
import reportgen.capture.forward as capture
real, calls = capture.capture, []
def dying(*a, **k):
    calls.append(1)
    if len(calls) == 2:  # the second model: die mid-audit, with no chance to clean up
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*a, **k)
capture.capture = dying
from reportgen.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _spec(tmp: Path, tiny: dict[str, Path], out: str) -> Path:
    (tmp / "v.yaml").write_text("a: [cat, dog, bird]\nb: [bank, loan, cash]\n")
    spec = tmp / f"{out}.yaml"
    spec.write_text(
        "audit: {name: resume, release: r1, created: 2026-03-04}\n"
        f"models:\n  base: {{path: {tiny['tiny-gpt2']}}}\n  candidates:\n"
        f"    - {{name: ft, path: {tiny['tiny-gpt2-ft']}}}\n"
        "    - {name: int8, derive: {from: base, quantize: int8}, role: noise_floor}\n"
        "probes:\n  concepts: {vocabulary: v.yaml}\n"
        "checks:\n  - {metric: concepts.cosine_distance.mean, fail_if: '> 1000'}\n"
        f"output: {{dir: {out}, formats: [json]}}\n"
    )
    return spec


def _run(args: list[str], cwd: Path, cache: Path, script: str | None = None):
    env = {**os.environ, "REPORTGEN_CACHE": str(cache)}
    cmd = [sys.executable, "-c", script, *args] if script else [
        sys.executable, "-m", "reportgen", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_killed_audit_resumes_to_the_same_certificate(tiny_models, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"  # the same spec in two folders
    a.mkdir()
    b.mkdir()
    whole = _run(["audit", str(_spec(a, tiny_models, "out"))], a, tmp_path / "cache-a")
    assert whole.returncode == 0, whole.stderr
    spec = _spec(b, tiny_models, "out")
    killed = _run(["audit", str(spec)], b, tmp_path / "cache-b", KILL_ON_SECOND_CAPTURE)
    assert killed.returncode == -signal.SIGKILL
    assert not (b / "out" / "certificate.json").exists()  # nothing half-written
    again = _run(["audit", str(spec)], b, tmp_path / "cache-b")
    assert again.returncode == 0, again.stderr
    assert "base: capture found in cache" in again.stderr  # the work done before the kill
    assert "capture ft" in again.stderr
    assert (b / "out" / "certificate.json").read_bytes() == (
        a / "out" / "certificate.json").read_bytes()


def test_corrupt_cache_entry_is_recomputed(tiny_models, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    spec = _spec(tmp_path, tiny_models, "first")
    assert _run(["audit", str(spec)], tmp_path, cache).returncode == 0
    first = (tmp_path / "first" / "certificate.json").read_bytes()
    entries = sorted((cache / "captures").glob("*/last.npy"))
    assert len(entries) == 3
    for npy in entries:  # flip one byte in every entry
        blob = bytearray(npy.read_bytes())
        blob[-5] ^= 0xFF
        npy.write_bytes(bytes(blob))
    again = _run(["audit", str(spec)], tmp_path, cache)
    assert again.returncode == 0, again.stderr
    assert "capture found in cache" not in again.stderr  # every capture recomputed
    assert (tmp_path / "first" / "certificate.json").read_bytes() == first
