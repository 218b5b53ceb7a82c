"""``device: auto`` places a model with accelerate (``device_map="auto"``); on a machine
without a GPU that is the CPU, and the audit must come out as with ``device: cpu``.
(No GPU is lent to CI; the CUDA placement itself is untested here.)"""

from __future__ import annotations

import math
from pathlib import Path

from test_pipeline import _spec

import reportgen


def test_device_auto_matches_cpu(tiny_models, tmp_path: Path) -> None:
    base, ft = tiny_models["tiny-gpt2"], tiny_models["tiny-gpt2-ft"]
    cpu = reportgen.audit(_spec(tmp_path, base, ft), progress=False)
    spec = _spec(tmp_path, base, ft)
    spec["models"]["base"]["device"] = "auto"
    spec["models"]["candidates"][0]["device"] = "auto"
    auto = reportgen.audit(spec, progress=False)
    for name, mv in cpu.comparison("ft")["metrics"].items():
        a, c = auto.metric("ft", name), mv["value"]
        if c is None:
            assert a is None, name
        else:
            assert math.isclose(a, c, rel_tol=1e-5, abs_tol=1e-6), (name, a, c)
