"""Weight drift from safetensors files written here, against direct numpy computations:
prefixed names, a sharded checkpoint, a tied head, keys in one model only, a transform."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file
from safetensors.torch import save_file as save_torch

from reportgen.core.errors import ModelError
from reportgen.families.weights.metrics import (
    block_of,
    match_names,
    module_type,
    weight_drift,
    weight_drift_metrics,
)

GPT2_BODY = {
    "wte.weight": (50, 8), "wpe.weight": (16, 8), "ln_f.weight": (8,),
    **{f"h.{i}.{n}": s for i in (0, 1) for n, s in (
        ("ln_1.weight", (8,)), ("attn.c_attn.weight", (8, 24)), ("attn.c_attn.bias", (24,)),
        ("attn.c_proj.weight", (8, 8)), ("mlp.c_fc.weight", (8, 32)),
        ("mlp.c_proj.weight", (32, 8)))},
}


def rel(b: np.ndarray, c: np.ndarray) -> float:
    return float(np.sqrt(np.sum((c.astype(np.float64) - b) ** 2) / np.sum(b.astype(np.float64)
                                                                            ** 2)))


def save_sharded(tensors: dict[str, np.ndarray], folder: Path, shards: int) -> None:
    names = sorted(tensors)
    weight_map = {}
    for s in range(shards):
        fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        part = {n: tensors[n] for n in names[s::shards]}
        save_file(part, str(folder / fname))
        weight_map.update({n: fname for n in part})
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": weight_map}))


@pytest.fixture
def gpt2_pair(tmp_path: Path) -> tuple[Path, Path, dict, dict]:
    """Base: a GPT2Model file (tied head not saved). Candidate: a GPT2LMHeadModel, sharded,
    names under ``transformer.``, its head untied and saved; one key only on each side."""
    rng = np.random.default_rng(0)
    base = {n: rng.normal(size=s).astype(np.float32) for n, s in GPT2_BODY.items()}
    base["h.0.attn.c_attn.bias"][:] = 0.0  # a zero tensor that moves: drift undefined
    base["h.1.attn.only_in_base"] = rng.normal(size=(3,)).astype(np.float32)
    cand = {f"transformer.{n}": (v + (0.0 if n.startswith("wpe") else 0.01 * (i + 1))
                                 * rng.normal(size=v.shape)).astype(np.float32)
            for i, (n, v) in enumerate(base.items()) if n != "h.1.attn.only_in_base"}
    cand["lm_head.weight"] = (base["wte.weight"] + 0.2 * rng.normal(size=(50, 8))
                              ).astype(np.float32)
    cand["transformer.h.0.attn.only_in_candidate"] = np.ones(2, dtype=np.float32)
    (tmp_path / "base").mkdir()
    (tmp_path / "cand").mkdir()
    save_file(base, str(tmp_path / "base" / "model.safetensors"))
    save_sharded(cand, tmp_path / "cand", shards=3)
    return tmp_path / "base", tmp_path / "cand", base, cand


def test_gpt2_drift_per_tensor_block_and_whole(gpt2_pair) -> None:
    base_dir, cand_dir, base, cand = gpt2_pair
    m, tables = weight_drift_metrics(base_dir, cand_dir)
    rows = {r["name"]: r for r in tables["weights_tensors"]}
    compared = [n for n in GPT2_BODY if n != "h.0.attn.c_attn.bias"]
    for n in compared:
        assert rows[n]["relative_drift"] == pytest.approx(rel(base[n], cand[f"transformer.{n}"]),
                                                          rel=1e-6)
        assert rows[n]["candidate_name"] == f"transformer.{n}"
    assert rows["wpe.weight"]["relative_drift"] == 0.0
    assert rows["h.0.attn.c_attn.bias"]["relative_drift"] is None  # zero base that moved
    head = rows["lm_head.weight"]
    assert head["tied_to"] == "wte.weight" and head["tied_in"] == "base"
    assert head["relative_drift"] == pytest.approx(rel(base["wte.weight"],
                                                       cand["lm_head.weight"]), rel=1e-6)
    # blocks: one Frobenius ratio over all the block's tensors
    for layer in (0, 1):
        names = [n for n in GPT2_BODY if n.startswith(f"h.{layer}.")]
        d2 = sum(np.sum((cand[f"transformer.{n}"].astype(np.float64) - base[n]) ** 2)
                 for n in names)
        b2 = sum(np.sum(base[n].astype(np.float64) ** 2) for n in names)
        assert m[f"weights.block.{layer}.relative_drift"].value == pytest.approx(
            np.sqrt(d2 / b2), rel=1e-6)
    rels = [rel(base[n], cand[f"transformer.{n}"]) for n in compared]
    rels.append(rel(base["wte.weight"], cand["lm_head.weight"]))
    assert m["weights.relative_drift.max"].value == pytest.approx(max(rels), rel=1e-6)
    assert m["weights.relative_drift.mean"].value == pytest.approx(np.mean(rels), rel=1e-6)
    pairs = [(n, f"transformer.{n}") for n in GPT2_BODY] + [("wte.weight", "lm_head.weight")]
    d2 = sum(np.sum((cand[c].astype(np.float64) - base[b]) ** 2) for b, c in pairs)
    b2 = sum(np.sum(base[b].astype(np.float64) ** 2) for b, _ in pairs)
    assert m["weights.relative_drift.global"].value == pytest.approx(np.sqrt(d2 / b2), rel=1e-6)
    assert m["weights.unmatched_tensors"].value == 2
    assert tables["weights_unmatched"] == [
        {"name": "h.1.attn.only_in_base", "present_in": "base",
         "reason": "absent from candidate"},
        {"name": "transformer.h.0.attn.only_in_candidate", "present_in": "candidate",
         "reason": "absent from base"},
    ]
    blocks = {(r["block"], r["module"]): r for r in tables["weights_blocks"]}
    attn = [n for n in GPT2_BODY if n.startswith("h.1.attn")]
    d2 = sum(np.sum((cand[f"transformer.{n}"].astype(np.float64) - base[n]) ** 2) for n in attn)
    b2 = sum(np.sum(base[n].astype(np.float64) ** 2) for n in attn)
    assert blocks[(1, "attention")]["relative_drift"] == pytest.approx(np.sqrt(d2 / b2),
                                                                       rel=1e-6)
    assert blocks[(1, "attention")]["tensors"] == 3
    assert blocks[(None, "head")]["tensors"] == 1
    assert set(blocks) >= {(0, "mlp"), (0, "layernorm"), (None, "embedding"),
                           (None, "layernorm")}


def int8_rows(name: str, w: torch.Tensor) -> torch.Tensor:
    """The caller's round-trip: per-row absmax, matrices only (a Conv1D would use columns)."""
    if w.ndim != 2:
        return w
    scale = w.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / 127
    return torch.clamp(torch.round(w / scale), -127, 127) * scale


def test_transform_measures_a_derived_variant_from_the_base_files(gpt2_pair) -> None:
    base_dir, _, base, _ = gpt2_pair
    seen: list[str] = []

    def spy(name: str, w: torch.Tensor) -> torch.Tensor:
        seen.append(name)
        return int8_rows(name, w)

    m, tables = weight_drift_metrics(base_dir, base_dir, transform=spy)
    assert sorted(seen) == sorted(base)
    rows = {r["name"]: r for r in tables["weights_tensors"]}
    for n, w in base.items():
        if w.ndim == 2:
            scale = np.maximum(np.abs(w).max(axis=1, keepdims=True), 1e-12) / 127
            q = np.clip(np.round(w / scale), -127, 127) * scale
            assert rows[n]["relative_drift"] == pytest.approx(rel(w, q), rel=1e-4)
        else:
            assert rows[n]["relative_drift"] == 0.0  # vectors are left as they are
    assert m["weights.unmatched_tensors"].value == 0
    m0, _ = weight_drift_metrics(base_dir, base_dir)
    assert m0["weights.relative_drift.max"].value == 0.0


def test_bert_masked_lm_prefix_and_head_only_keys(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    body = {"embeddings.word_embeddings.weight": (30, 6), "embeddings.LayerNorm.weight": (6,),
            "encoder.layer.0.attention.self.query.weight": (6, 6),
            "encoder.layer.0.attention.output.dense.weight": (6, 6),
            "encoder.layer.0.intermediate.dense.weight": (12, 6),
            "encoder.layer.0.output.dense.weight": (6, 12)}
    base = {n: rng.normal(size=s).astype(np.float32) for n, s in body.items()}
    base["pooler.dense.weight"] = rng.normal(size=(6, 6)).astype(np.float32)
    cand = {f"bert.{n}": v + np.float32(0.1) for n, v in base.items() if "pooler" not in n}
    cand["cls.predictions.bias"] = np.zeros(30, np.float32)  # decoder.weight is tied: not saved
    save_file(base, str(tmp_path / "base.safetensors"))
    save_file(cand, str(tmp_path / "mlm.safetensors"))
    drift = weight_drift(tmp_path / "base.safetensors", tmp_path / "mlm.safetensors")
    rows = {r["name"]: r for r in drift.tensors}
    assert set(rows) == set(body)
    for n in body:
        assert rows[n]["relative_drift"] == pytest.approx(rel(base[n], cand[f"bert.{n}"]),
                                                          rel=1e-6)
    assert {r["name"]: r["present_in"] for r in drift.unmatched} == {
        "pooler.dense.weight": "base", "cls.predictions.bias": "candidate"}
    assert rows["encoder.layer.0.output.dense.weight"]["module"] == "mlp"
    assert rows["encoder.layer.0.attention.output.dense.weight"]["module"] == "attention"


def test_resized_embeddings_are_listed_not_compared(tmp_path: Path) -> None:
    base = {"wte.weight": np.ones((50, 4), np.float32), "h.0.mlp.c_fc.weight":
            np.ones((4, 8), np.float32)}
    cand = {"wte.weight": np.ones((52, 4), np.float32), "h.0.mlp.c_fc.weight":
            np.full((4, 8), 2.0, np.float32)}
    save_file(base, str(tmp_path / "a.safetensors"))
    save_file(cand, str(tmp_path / "b.safetensors"))
    m, tables = weight_drift_metrics(tmp_path / "a.safetensors", tmp_path / "b.safetensors")
    assert tables["weights_unmatched"] == [{"name": "wte.weight", "present_in": "both",
                                            "reason": "shape [50, 4] in base, [52, 4] in "
                                                      "candidate"}]
    assert m["weights.relative_drift.max"].value == pytest.approx(1.0)


def test_bfloat16_tensors_are_compared_in_float(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    b = torch.randn(16, 16, generator=g).to(torch.bfloat16)
    c = (b.float() + 0.05 * torch.randn(16, 16, generator=g)).to(torch.bfloat16)
    save_torch({"model.layers.0.mlp.up_proj.weight": b}, str(tmp_path / "b.safetensors"))
    save_torch({"model.layers.0.mlp.up_proj.weight": c}, str(tmp_path / "c.safetensors"))
    drift = weight_drift(tmp_path / "b.safetensors", tmp_path / "c.safetensors")
    (row,) = drift.tensors
    assert row["relative_drift"] == pytest.approx(rel(b.float().numpy(), c.float().numpy()),
                                                  rel=1e-6)
    assert (row["block"], row["module"]) == (0, "mlp")


def test_no_safetensors_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as err:
        weight_drift(tmp_path, tmp_path)
    assert str(err.value) == (f"{tmp_path}: no .safetensors weights found (weight drift reads "
                              "safetensors only)")


@pytest.mark.parametrize(("name", "block", "module"), [
    ("transformer.h.3.attn.c_attn.weight", 3, "attention"),
    ("transformer.h.3.mlp.c_proj.weight", 3, "mlp"),
    ("transformer.h.11.ln_2.weight", 11, "layernorm"),
    ("transformer.wte.weight", None, "embedding"),
    ("lm_head.weight", None, "head"),
    ("bert.encoder.layer.3.attention.self.key.bias", 3, "attention"),
    ("bert.encoder.layer.3.attention.output.LayerNorm.weight", 3, "layernorm"),
    ("bert.encoder.layer.3.intermediate.dense.weight", 3, "mlp"),
    ("bert.pooler.dense.weight", None, "pooler"),
    ("cls.predictions.transform.dense.weight", None, "head"),
    ("distilbert.transformer.layer.3.attention.q_lin.weight", 3, "attention"),
    ("distilbert.transformer.layer.3.ffn.lin2.weight", 3, "mlp"),
    ("distilbert.transformer.layer.3.sa_layer_norm.weight", 3, "layernorm"),
    ("vocab_projector.weight", None, "head"),
    ("model.layers.3.self_attn.o_proj.weight", 3, "attention"),
    ("model.layers.3.mlp.gate_proj.weight", 3, "mlp"),
    ("model.layers.3.post_attention_layernorm.weight", 3, "layernorm"),
    ("model.embed_tokens.weight", None, "embedding"),
    ("model.norm.weight", None, "layernorm"),
])
def test_block_and_module_from_names(name: str, block: int | None, module: str) -> None:
    assert block_of(name) == block
    assert module_type(name) == module


def test_name_matching_prefers_the_largest_consistent_pairing() -> None:
    base = ["transformer.layer.0.ffn.lin1.weight", "embeddings.word_embeddings.weight"]
    cand = ["distilbert.transformer.layer.0.ffn.lin1.weight",
            "distilbert.embeddings.word_embeddings.weight", "vocab_projector.weight"]
    assert match_names(base, cand) == [
        ("embeddings.word_embeddings.weight", "distilbert.embeddings.word_embeddings.weight"),
        ("transformer.layer.0.ffn.lin1.weight", "distilbert.transformer.layer.0.ffn.lin1.weight"),
    ]
    same = ["model.layers.0.mlp.up_proj.weight", "lm_head.weight"]
    assert match_names(same, same) == [(n, n) for n in sorted(same)]
