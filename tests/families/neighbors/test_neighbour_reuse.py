"""The base's whole-vocabulary neighbourhoods are searched once, however many candidates."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import reportgen
from reportgen.families.neighbors import knn as search
from reportgen.families.neighbors import metrics as neighbors


def test_base_vocabulary_knn_is_computed_once(tiny_models, tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "v.yaml").write_text(json.dumps({"a": ["cat", "dog", "bird"],
                                                 "b": ["bank", "loan", "cash"]}))
    spec = {
        "audit": {"name": "reuse", "created": "2026-01-01"},
        "models": {"base": {"path": str(tiny_models["tiny-gpt2"])}, "candidates": [
            {"name": "ft", "path": str(tiny_models["tiny-gpt2-ft"])},
            {"name": "int8", "derive": {"from": "base", "quantize": "int8"},
             "role": "noise_floor"}]},
        "probes": {"concepts": {"vocabulary": str(tmp_path / "v.yaml")}},
        "analysis": {"bootstrap": 0, "umap": False, "weights": False,
                     "neighborhoods": {"k": 3, "tokens": "full-vocabulary"}},
    }
    vocab_calls: list[int] = []
    real = search.knn

    def counting(x, *a, **kw):
        if len(x) > 100:  # the embedding matrix, not the six concepts
            vocab_calls.append(len(x))
        return real(x, *a, **kw)

    monkeypatch.setattr(search, "knn", counting)
    cert = reportgen.audit(spec, progress=False)
    assert len(vocab_calls) == 3  # the base once, then each candidate once
    # the shared base search gives what a search of its own gives
    for cand in ("ft", "int8"):
        c = cert.comparison(cand)
        comp = neighbors.compare_neighbourhoods(*_aligned(tiny_models, cand), 3)
        assert cert.metric(cand, "neighbors.tokens.jaccard.mean") == pytest.approx(
            float(comp.jaccard.mean()), rel=1e-6)
        assert c["metrics"]["neighbors.tokens.mutual_knn"]["value"] == pytest.approx(
            comp.mutual_knn, rel=1e-6)


def _aligned(tiny_models, cand: str) -> tuple[np.ndarray, np.ndarray]:
    import transformers as tf

    from reportgen.capture.loading import quantize_roundtrip

    base = tf.AutoModelForCausalLM.from_pretrained(tiny_models["tiny-gpt2"])
    e_base = base.get_input_embeddings().weight.detach().numpy().copy()
    if cand == "int8":
        quantize_roundtrip(base, 8)
        return e_base, base.get_input_embeddings().weight.detach().numpy().copy()
    ft = tf.AutoModelForCausalLM.from_pretrained(tiny_models["tiny-gpt2-ft"])
    return e_base, ft.get_input_embeddings().weight.detach().numpy().copy()
