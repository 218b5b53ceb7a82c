"""Real checkpoints: a PEFT/LoRA adapter over its base, and reduced-precision loads."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

import reportgen

peft = pytest.importorskip("peft")

VOCAB = "animals: [cat, dog, horse, mouse, eagle]\ntools: [hammer, saw, drill, wrench, axe]\n"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "vocab.json", "merges.txt")


@pytest.fixture(scope="module")
def lora(tiny_models, tmp_path_factory) -> dict[str, Path]:
    """A LoRA adapter on tiny-gpt2 that changes outputs, and a merged copy of it."""
    from transformers import GPT2LMHeadModel

    base = tiny_models["tiny-gpt2"]
    root = tmp_path_factory.mktemp("lora")
    model = GPT2LMHeadModel.from_pretrained(base, dtype=torch.float32)
    cfg = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["c_attn"], fan_in_fan_out=True)
    pm = peft.get_peft_model(model, cfg)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in pm.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    pm.save_pretrained(root / "adapter")  # adapter_model.safetensors
    pm.merge_and_unload().save_pretrained(root / "merged")
    for f in TOKENIZER_FILES:
        if (base / f).is_file():
            shutil.copy(base / f, root / "merged" / f)
    return {"base": base, "adapter": root / "adapter", "merged": root / "merged"}


def _spec(tmp: Path, base: Path, candidate: dict) -> dict:
    (tmp / "vocab.yaml").write_text(VOCAB)
    return {
        "audit": {"name": "lora", "created": "2026-01-02T03:04:05Z"},
        "models": {"base": {"path": str(base)}, "candidates": [candidate]},
        "probes": {"concepts": {"vocabulary": str(tmp / "vocab.yaml")}},
        "analysis": {"batch_size": 4, "bootstrap": 50},
    }


def _drift(tmp: Path, base: Path, candidate: dict) -> float:
    cert = reportgen.audit(_spec(tmp, base, candidate), progress=False)
    return float(cert.metric(candidate["name"], "concepts.cosine_distance.mean"))


def test_adapter_is_saved_as_safetensors(lora) -> None:
    assert (lora["adapter"] / "adapter_model.safetensors").is_file()
    assert (lora["adapter"] / "adapter_config.json").is_file()


def test_lora_adapter_drift_equals_the_merged_copy(lora, tmp_path: Path) -> None:
    cand = {"name": "lora", "path": str(lora["base"]), "adapter": str(lora["adapter"])}
    drift = _drift(tmp_path, lora["base"], cand)
    merged = _drift(tmp_path, lora["base"], {"name": "lora", "path": str(lora["merged"])})
    assert drift > 0
    assert drift == pytest.approx(merged, abs=1e-5)


def test_adapter_digest_is_recorded_beside_the_base(lora, tmp_path: Path) -> None:
    from reportgen.digest import digest_folder
    from reportgen.models import LoadOptions, resolve

    rm = resolve("lora", "candidate", str(lora["base"]), tmp_path, "models.candidates[0].path",
                 options=LoadOptions(adapter=str(lora["adapter"])))
    assert rm.digest.root == digest_folder(lora["base"]).root
    assert rm.adapter_digest is not None
    assert rm.adapter_digest.root == digest_folder(lora["adapter"]).root
    assert rm.capture_identity != rm.digest.root  # the cache never mixes base and adapter


def test_missing_adapter_folder_is_one_line(lora, tmp_path: Path) -> None:
    from reportgen.errors import ModelError
    from reportgen.models import LoadOptions, resolve

    with pytest.raises(ModelError) as e:
        resolve("lora", "candidate", str(lora["base"]), tmp_path, "models.candidates[0].path",
                options=LoadOptions(adapter="./nope"))
    assert str(e.value) == ("models.candidates[0].adapter: adapter folder './nope' does not "
                            "exist; expected a PEFT adapter folder")


def test_bfloat16_load_gives_drift_close_to_float32(tiny_models, tmp_path: Path) -> None:
    base, ft = tiny_models["tiny-gpt2"], tiny_models["tiny-gpt2-ft"]
    f32 = _drift(tmp_path, base, {"name": "ft", "path": str(ft)})
    bf16 = _drift(tmp_path, base, {"name": "ft", "path": str(ft), "dtype": "bfloat16"})
    assert bf16 > 0
    assert bf16 == pytest.approx(f32, rel=0.1, abs=1e-3)


def test_bfloat16_weights_and_float32_hidden_states(tiny_models) -> None:
    from reportgen.loading import load
    from reportgen.models import LoadOptions, resolve

    rm = resolve("ft", "candidate", str(tiny_models["tiny-gpt2-ft"]), Path("."),
                 "models.candidates[0].path", options=LoadOptions(dtype="bfloat16"))
    model, _ = load(rm)
    assert next(model.parameters()).dtype == torch.bfloat16


def test_allow_pickle_loads_bin_weights(tiny_models, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from reportgen.loading import load
    from reportgen.models import LoadOptions, resolve

    m = tmp_path / "pickled"
    shutil.copytree(tiny_models["tiny-gpt2-ft"], m)
    torch.save(load_file(m / "model.safetensors"), m / "pytorch_model.bin")
    (m / "model.safetensors").unlink()
    rm = resolve("ft", "candidate", str(m), tmp_path, "models.candidates[0].path",
                 options=LoadOptions(allow_pickle=True))
    model, _ = load(rm)
    ref = load_file(tiny_models["tiny-gpt2-ft"] / "model.safetensors")
    name = next(k for k in ref if k.endswith("c_attn.weight"))
    assert torch.equal(model.state_dict()[name], ref[name])


def test_certificate_names_the_adapter_by_its_digest(lora, tmp_path: Path) -> None:
    from reportgen.digest import digest_folder

    cand = {"name": "lora", "path": str(lora["base"]), "adapter": str(lora["adapter"])}
    cert = reportgen.audit(_spec(tmp_path, lora["base"], cand), progress=False)
    models = {m["name"]: m for m in cert.data["models"]}
    assert models["lora"]["digest"]["root"] == models["base"]["digest"]["root"]
    assert models["lora"]["adapter"]["root"] == digest_folder(lora["adapter"]).root
    assert models["base"]["adapter"] is None
