"""The analysis cache: a re-run with other checks computes no metric and gives the same bytes;
a corrupt entry is recomputed; an analysis setting that changes misses the cache."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_forward_calls import _spec

import reportgen
from reportgen.analysis import cache as analysis_cache
from reportgen.analysis import compare as analysis
from reportgen.certificate.document import canonical_json
from reportgen.core.records import Comparison, MetricValue


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[int]:
    """A fresh cache; each call of analysis.compare_all appends to the returned list."""
    monkeypatch.setenv("REPORTGEN_CACHE", str(tmp_path / "cache"))
    log: list[int] = []
    real = analysis.compare_all

    def counting(*a: Any, **k: Any) -> Any:
        log.append(1)
        return real(*a, **k)

    monkeypatch.setattr(analysis, "compare_all", counting)
    return log


def _results(cert: reportgen.Certificate) -> str:
    """The parts of the certificate the analysis produced, as written to certificate.json."""
    d = cert.data
    return canonical_json({"comparisons": d["comparisons"], "analysis": d["analysis"],
                           "warnings": d["warnings"]})


def _fail(*_a: Any, **_k: Any) -> Any:
    raise AssertionError("a metric was recomputed on a cache hit")


def test_changed_threshold_recomputes_no_metric(tiny_models, tmp_path, calls, monkeypatch):
    base, ft = tiny_models["tiny-gpt2"], tiny_models["tiny-gpt2-ft"]
    first = reportgen.audit(_spec(tmp_path, base, ft), progress=False)
    assert len(calls) == 1
    monkeypatch.setattr("reportgen.families.concepts.pair.concept_metrics", _fail)
    monkeypatch.setattr("reportgen.families.cka.metrics.linear_cka", _fail)
    second = reportgen.audit(_spec(tmp_path, base, ft, fail_if="> 0"), progress=False)
    assert len(calls) == 1  # compare_all not called again
    assert _results(second) == _results(first)
    assert first.verdict != "FAIL" and second.verdict == "FAIL"


def test_corrupt_entry_is_recomputed(tiny_models, tmp_path, calls):
    base, ft = tiny_models["tiny-gpt2"], tiny_models["tiny-gpt2-ft"]
    first = reportgen.audit(_spec(tmp_path, base, ft), progress=False)
    entries = list((tmp_path / "cache" / analysis_cache.KIND).glob("*/payload"))
    assert len(entries) == 1
    payload = entries[0].read_bytes()
    edited = payload.replace(b"concepts", b"c0ncepts", 1)
    assert edited != payload
    entries[0].write_bytes(edited)
    second = reportgen.audit(_spec(tmp_path, base, ft), progress=False)
    assert len(calls) == 2
    assert _results(second) == _results(first)
    third = reportgen.audit(_spec(tmp_path, base, ft), progress=False)  # entry rewritten
    assert len(calls) == 2 and _results(third) == _results(first)


def test_changed_analysis_setting_misses(tiny_models, tmp_path, calls):
    base, ft = tiny_models["tiny-gpt2"], tiny_models["tiny-gpt2-ft"]
    reportgen.audit(_spec(tmp_path, base, ft), progress=False)
    spec = _spec(tmp_path, base, ft)
    spec["analysis"]["neighborhoods"] = {"k": 3}
    cert = reportgen.audit(spec, progress=False)
    assert len(calls) == 2
    assert cert.data["analysis"]["neighborhoods"]["k"] == 3


def test_round_trip_is_exact() -> None:
    """Awkward floats and numpy scalars give the same certificate bytes after the cache."""
    values = [0.1 + 0.2, 1e-300, 5e-324, np.float32(1 / 3), np.float64(2 / 3), -0.0,
              float("nan"), float("inf"), 123456789.123456789]
    metrics = {f"m{i}": MetricValue(v, "d", "", [v, np.float32(0.7)], None)
               for i, v in enumerate(values)}
    tables = {"t": [{"a": np.int64(3), "b": np.float32(0.1), "c": (1.5, None), "d": "x",
                     "e": np.bool_(True)}]}
    result = ([Comparison("base", "ft", "candidate", metrics, tables)], ["w"],
              {"projection": {"rows": [{"x": np.float32(-1.25e-7), "y": math.pi}]}})
    back = analysis_cache.decode(analysis_cache.encode(result))
    as_json = [canonical_json({"c": [asdict(c) for c in r[0]], "w": r[1], "e": r[2]})
               for r in (result, back)]
    assert as_json[0] == as_json[1]
    assert json.loads(as_json[0])["c"][0]["metrics"]["m6"]["value"] is None  # NaN, as before
    for name, mv in metrics.items():  # unrounded too: every finite float comes back exactly
        got = back[0][0].metrics[name].value
        assert got == mv.value or (math.isnan(got) and math.isnan(mv.value))
