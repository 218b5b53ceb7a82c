"""``device: auto`` places a model with accelerate (``device_map="auto"``); on a machine
without a GPU that is the CPU, and the audit must come out as with ``device: cpu``.
(No GPU is lent to CI; the CUDA placement itself is untested here.)"""

from __future__ import annotations

import math
from pathlib import Path

from test_pipeline import _spec

import reportgen


def test_device_auto_matches_cpu(tiny_models, tmp_path: Path, monkeypatch) -> None:
    base, ft = tiny_models["tiny-gpt2"], tiny_models["tiny-gpt2-ft"]
    cpu = reportgen.audit(_spec(tmp_path, base, ft), progress=False)
    spec = _spec(tmp_path, base, ft)
    spec["models"]["base"]["device"] = "auto"
    spec["models"]["candidates"][0]["device"] = "auto"
    # a cache of its own: the capture cache's key does not name the device, so the shared
    # cache would hand this audit the CPU audit's captures and the comparison would be moot
    fresh = tmp_path / "auto-cache"
    monkeypatch.setenv("REPORTGEN_CACHE", str(fresh))
    auto = reportgen.audit(spec, progress=False)
    assert any((fresh / "captures").iterdir()), "the auto audit captured nothing itself"
    for name, mv in cpu.comparison("ft")["metrics"].items():
        a, c = auto.metric("ft", name), mv["value"]
        if c is None:
            assert a is None, name
        else:
            assert math.isclose(a, c, rel_tol=1e-5, abs_tol=1e-6), (name, a, c)
