"""Model resolution: local folders, the local hub cache (never a download), kinds, mismatches."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reportgen.core.errors import ModelError
from reportgen.pipeline import created_timestamp
from reportgen.spec.resolve import check_compatible, detect_kind, locate, resolve


def test_hub_id_resolves_from_the_local_cache_only(tiny_models, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    repo = tmp_path / "hub" / "models--acme--tiny"
    shutil.copytree(tiny_models["tiny-gpt2"], repo / "snapshots" / "abc123")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    assert locate("acme/tiny", tmp_path, "models.base.path") == repo / "snapshots" / "abc123"
    with pytest.raises(ModelError) as e:
        locate("acme/absent", tmp_path, "models.base.path")
    assert str(e.value) == (
        f"models.base.path: 'acme/absent' is not a local folder and not in the local Hugging "
        f"Face cache ({tmp_path / 'hub'}); reportgen never downloads models")


def test_kinds_from_config() -> None:
    assert detect_kind({"architectures": ["GPT2LMHeadModel"]}) == ("causal-lm", "GPT2LMHeadModel")
    assert detect_kind({"architectures": ["DistilBertForMaskedLM"]})[0] == "masked-lm"
    assert detect_kind({"architectures": ["BertModel"], "model_type": "bert"})[0] == "encoder"


def test_different_architectures_say_what_differs(tiny_models, tmp_path) -> None:
    base = resolve("base", "base", str(tiny_models["tiny-gpt2"]), tmp_path, "models.base.path")
    other = resolve("ft", "candidate", str(tiny_models["tiny-distilbert"]), tmp_path,
                    "models.candidates[0].path")
    with pytest.raises(ModelError) as e:
        check_compatible(base, other)
    assert str(e.value).startswith(
        "models.candidates[0].path: 'ft' cannot be compared with the base: architecture "
        "GPT2LMHeadModel vs DistilBertForMaskedLM; model_type gpt2 vs distilbert")


def test_folder_problems_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "noconfig").mkdir()
    with pytest.raises(ModelError, match="has no config.json; expected a transformers model"):
        resolve("b", "base", "noconfig", tmp_path, "models.base.path")
    (tmp_path / "noweights").mkdir()
    (tmp_path / "noweights" / "config.json").write_text('{"model_type": "gpt2"}')
    with pytest.raises(ModelError, match=r"has a config but no weights \(\*.safetensors\)"):
        resolve("b", "base", "noweights", tmp_path, "models.base.path")
    (tmp_path / "noweights" / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(ModelError, match="has only pickle weights"):
        resolve("b", "base", "noweights", tmp_path, "models.base.path")


def test_created_comes_from_spec_then_source_date_epoch(monkeypatch) -> None:
    import datetime as dt

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert created_timestamp(dt.date(2026, 1, 2)) == "2026-01-02T00:00:00Z"
    assert created_timestamp(None) == "2023-11-14T22:13:20Z"
