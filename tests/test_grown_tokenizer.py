"""A tokenizer that grew during fine-tuning: tokens aligned by string, new tokens listed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import transformers as tf

import reportgen


def _spec(tmp: Path, base: Path, cand: Path) -> dict:
    (tmp / "v.yaml").write_text(json.dumps({"a": ["cat", "dog"], "b": ["bank", "loan"]}))
    return {
        "audit": {"name": "grown", "created": "2026-01-01"},
        "models": {"base": {"path": str(base)}, "candidates": [{"name": "ft", "path": str(cand)}]},
        "probes": {"concepts": {"vocabulary": str(tmp / "v.yaml")}},
        "analysis": {"bootstrap": 0, "neighborhoods": {"k": 3, "tokens": "full-vocabulary"}},
    }


def test_grown_tokenizer_is_aligned_by_string(tiny_models, tmp_path: Path) -> None:
    base, ft = tiny_models["tiny-gpt2"], tiny_models["tiny-gpt2-ft"]
    tok = tf.AutoTokenizer.from_pretrained(ft)
    model = tf.AutoModelForCausalLM.from_pretrained(ft)
    assert tok.add_tokens(["<support-ticket>", "zyzzyva"]) == 2
    model.resize_token_embeddings(len(tok))
    grown = tmp_path / "grown"
    model.save_pretrained(grown)
    tok.save_pretrained(grown)

    plain = reportgen.audit(_spec(tmp_path, base, ft), progress=False)
    cert = reportgen.audit(_spec(tmp_path, base, grown), progress=False)
    c = cert.comparison("ft")
    assert cert.metric("ft", "embeddings.new_tokens") == 2
    assert {r["token"] for r in c["tables"]["new_tokens"]} == {"<support-ticket>", "zyzzyva"}
    for name in ("embeddings.cosine_distance.mean", "concepts.cosine_distance.mean",
                 "neighbors.concepts.jaccard.mean", "neighbors.tokens.jaccard.mean"):
        assert cert.metric("ft", name) == pytest.approx(plain.metric("ft", name), rel=1e-6)
    assert any("grew by 2 tokens" in w for w in cert.data["warnings"])
