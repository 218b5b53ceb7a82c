"""What keys a candidate's probabilities capture: everything of the base it applies."""

from __future__ import annotations

from types import SimpleNamespace

from reportgen.families.probabilities.pair import collector
from reportgen.families.probabilities.shared import NAME
from reportgen.spec.types import Analysis

META = {"vocab_size": 64, "sha256": "a" * 64, "head_sha256": "b" * 64,
        "transform": {"final_logit_softcapping": None, "logit_scale": None},
        "head_dtype": "float32"}


def _settings(meta: dict) -> str:
    probe = SimpleNamespace(slices=lambda: {"domain:x": slice(0, 2)}, risk=[])
    ctx = SimpleNamespace(
        probe=probe, model=SimpleNamespace(kind="causal-lm"),
        base=SimpleNamespace(extras={NAME: SimpleNamespace(meta=meta)}),
        loaded=SimpleNamespace(spec=SimpleNamespace(analysis=Analysis())))
    col = collector(ctx)
    assert col is not None
    return col.settings()


def test_the_base_heads_transform_and_dtype_key_the_candidates_capture() -> None:
    """A base whose config alone changed (its logit soft-capping, its dtype) has the same
    stored hidden states and head bytes, yet the candidate's statistics differ: never reuse
    them."""
    same = _settings(META)
    assert _settings(dict(META)) == same
    for change in ({"transform": {**META["transform"], "final_logit_softcapping": 30.0}},
                   {"head_dtype": "bfloat16"}, {"head_sha256": "c" * 64},
                   {"sha256": "d" * 64}, {"vocab_size": 65}):
        assert _settings({**META, **change}) != same, change
