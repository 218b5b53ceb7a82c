"""Weight drift of an adapter candidate = weight drift of the copy PEFT merges and saves.

GPT-2 (``Conv1D``, stored (in, out), ``fan_in_fan_out``; a head tied to ``wte``) and
DistilBERT (``Linear``; ``vocab_projector`` tied to the word embeddings), with rsLoRA,
rank/alpha patterns, layers_to_transform, LoRA biases, LoRA on embeddings and on the tied
head, and modules_to_save copies of the embedding or the head (which untie them).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from adapterfactory import make_adapter

from reportgen.families.weights.adapters import NotReproduced, check_config, model_source
from reportgen.families.weights.metrics import weight_drift, weight_metrics

peft = pytest.importorskip("peft")


def _gpt2_cases() -> dict[str, object]:
    lora = peft.LoraConfig
    return {
        # square attn.c_proj (32 x 32) can only be told from a Linear by the layer type
        "conv1d-rslora-saved-wte": lora(
            r=4, lora_alpha=8, use_rslora=True, target_modules=["c_attn", "c_proj"],
            fan_in_fan_out=True, alpha_pattern={"mlp.c_proj": 3}, modules_to_save=["wte"]),
        "lora-on-tied-head": lora(
            r=4, lora_alpha=16, target_modules=["c_fc", "lm_head"],
            rank_pattern={"h.1.mlp.c_fc": 2}),
        "saved-head-one-layer": lora(
            r=2, lora_alpha=4, target_modules=["c_attn"], fan_in_fan_out=True,
            layers_to_transform=[1], layers_pattern="h", modules_to_save=["lm_head"]),
        "lora-on-embedding": lora(r=4, lora_alpha=4, target_modules=["wte", "c_fc"]),
    }


def _distilbert_cases() -> dict[str, object]:
    lora = peft.LoraConfig
    return {
        "linear-bias-patterns-saved-head": lora(
            r=4, lora_alpha=8, target_modules=["q_lin", "v_lin", "lin1"], lora_bias=True,
            rank_pattern={"layer.1.attention.q_lin": 2}, alpha_pattern={"v_lin": 3},
            modules_to_save=["vocab_projector"]),
        "lora-on-tied-projector": lora(r=4, lora_alpha=8,
                                       target_modules=["vocab_projector", "out_lin"]),
        "saved-embeddings": lora(r=2, lora_alpha=2, target_modules=["k_lin"],
                                 modules_to_save=["word_embeddings"]),
    }


@pytest.fixture(scope="module")
def adapters(tiny_models, tmp_path_factory) -> dict[str, tuple[Path, str, dict[str, Path]]]:
    from transformers import DistilBertForMaskedLM, GPT2LMHeadModel

    out = {}
    root = tmp_path_factory.mktemp("adapters")
    for family, cls, kind, cases in (
            ("tiny-gpt2", GPT2LMHeadModel, "causal-lm", _gpt2_cases()),
            ("tiny-distilbert", DistilBertForMaskedLM, "masked-lm", _distilbert_cases())):
        for i, (name, cfg) in enumerate(cases.items()):
            base = tiny_models[family]
            out[name] = (base, kind, make_adapter(base, cls, cfg, root / name, seed=i))
    return out


CASES = [*_gpt2_cases(), *_distilbert_cases()] if peft else []


@pytest.mark.parametrize("case", CASES)
def test_adapter_drift_equals_the_merged_copy(adapters, case: str) -> None:
    base, kind, paths = adapters[case]
    got = weight_drift(base, model_source(base, paths["adapter"], kind))
    want = weight_drift(base, paths["merged"])
    rows = {r["name"]: r for r in got.tensors}
    ref = {r["name"]: r for r in want.tensors}
    assert rows.keys() == ref.keys()
    assert got.unmatched == want.unmatched
    for name, r in ref.items():  # a zero base tensor that moved has no relative drift
        assert rows[name]["diff_norm"] == pytest.approx(r["diff_norm"], rel=1e-5, abs=1e-9)
        assert (rows[name]["relative_drift"] is None) == (r["relative_drift"] is None), name
        if r["relative_drift"] is not None:
            assert rows[name]["relative_drift"] == pytest.approx(r["relative_drift"],
                                                                 rel=1e-5, abs=1e-9), name
        assert rows[name].get("tied_to") == r.get("tied_to"), name
    moved = {n for n, r in ref.items() if r["diff_norm"] > 1e-9}
    assert moved == {n for n, r in rows.items() if r["diff_norm"] > 1e-9}
    assert moved  # the adapter changed something, and both sides saw the same tensors move
    got_m, _ = weight_metrics(got)
    want_m, _ = weight_metrics(want)
    assert got_m.keys() == want_m.keys()
    for name, mv in want_m.items():
        assert got_m[name].value == pytest.approx(mv.value, rel=1e-5, abs=1e-9), name


def test_each_kind_of_module_moved_where_the_adapter_put_it(adapters) -> None:
    """What each case is there for did happen (so the equalities above are not vacuous)."""
    def moved(case: str) -> set[str]:
        base, _, paths = adapters[case]
        return {r["name"] for r in weight_drift(base, paths["merged"]).tensors
                if r["diff_norm"] > 1e-9}

    assert "transformer.h.0.attn.c_proj.weight" in moved("conv1d-rslora-saved-wte")
    assert "transformer.wte.weight" in moved("conv1d-rslora-saved-wte")
    assert "transformer.wte.weight" in moved("lora-on-tied-head")  # the head is wte
    assert moved("saved-head-one-layer") == {"lm_head.weight",
                                             "transformer.h.1.attn.c_attn.weight"}
    assert "distilbert.transformer.layer.0.attention.q_lin.bias" in moved(
        "linear-bias-patterns-saved-head")
    assert "vocab_projector.weight" in moved("linear-bias-patterns-saved-head")
    assert "distilbert.embeddings.word_embeddings.weight" in moved("lora-on-tied-projector")


@pytest.mark.parametrize(("config", "reason"), [
    ({"peft_type": "IA3"}, "IA3 adapters are not reproduced (only LoRA)"),
    ({"peft_type": "LORA", "use_dora": True}, "use_dora=True is not reproduced"),
    ({"peft_type": "LORA", "bias": "all"}, "bias='all' is not reproduced"),
    ({"peft_type": "LORA", "init_lora_weights": "pissa"},
     "init_lora_weights='pissa' is not reproduced"),
    ({"peft_type": "LORA", "trainable_token_indices": [3, 5]},
     "trainable_token_indices=[3, 5] is not reproduced"),
    ({"peft_type": "LORA", "some_future_option": {"on": True}},
     "some_future_option={'on': True} is not reproduced"),
])
def test_options_not_reproduced_are_named(config: dict, reason: str) -> None:
    with pytest.raises(NotReproduced) as e:
        check_config(config)
    assert str(e.value) == reason


def test_default_options_of_a_saved_lora_config_are_accepted(adapters) -> None:
    import json

    for _, _, paths in adapters.values():
        check_config(json.loads((paths["adapter"] / "adapter_config.json").read_text()))


@pytest.mark.parametrize("case", ["conv1d-rslora-saved-wte", "linear-bias-patterns-saved-head"])
def test_a_base_with_an_adapter_is_merged_too(adapters, case: str) -> None:
    """The base side goes through the same merge: base + adapter against PEFT's merged copy
    of the same adapter moved nothing, and every tensor found its pair."""
    base, kind, paths = adapters[case]
    drift = weight_drift(model_source(base, paths["adapter"], kind), paths["merged"])
    assert drift.unmatched == []
    assert drift.tensors
    assert max(r["diff_norm"] for r in drift.tensors) < 1e-6
