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
    from reportgen.spec.digest import digest_folder
    from reportgen.spec.resolve import LoadOptions, resolve

    rm = resolve("lora", "candidate", str(lora["base"]), tmp_path, "models.candidates[0].path",
                 options=LoadOptions(adapter=str(lora["adapter"])))
    assert rm.digest.root == digest_folder(lora["base"]).root
    assert rm.adapter_digest is not None
    assert rm.adapter_digest.root == digest_folder(lora["adapter"]).root
    assert rm.capture_identity != rm.digest.root  # the cache never mixes base and adapter


def test_missing_adapter_folder_is_one_line(lora, tmp_path: Path) -> None:
    from reportgen.core.errors import ModelError
    from reportgen.spec.resolve import LoadOptions, resolve

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
    from reportgen.capture.loading import load
    from reportgen.spec.resolve import LoadOptions, resolve

    rm = resolve("ft", "candidate", str(tiny_models["tiny-gpt2-ft"]), Path("."),
                 "models.candidates[0].path", options=LoadOptions(dtype="bfloat16"))
    model, _ = load(rm)
    assert next(model.parameters()).dtype == torch.bfloat16


def test_allow_pickle_loads_bin_weights(tiny_models, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from reportgen.capture.loading import load
    from reportgen.spec.resolve import LoadOptions, resolve

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
    from reportgen.spec.digest import digest_folder

    cand = {"name": "lora", "path": str(lora["base"]), "adapter": str(lora["adapter"])}
    cert = reportgen.audit(_spec(tmp_path, lora["base"], cand), progress=False)
    models = {m["name"]: m for m in cert.data["models"]}
    assert models["lora"]["digest"]["root"] == models["base"]["digest"]["root"]
    assert models["lora"]["adapter"]["root"] == digest_folder(lora["adapter"]).root
    assert models["base"]["adapter"] is None


def test_adapter_not_reproduced_makes_weight_checks_error(tiny_models, tmp_path: Path) -> None:
    """A DoRA adapter: the captures see it (PEFT merges it), the weight family cannot
    merge it from its files, so its metrics are not available and their checks ERROR."""
    from adapterfactory import make_adapter
    from transformers import DistilBertForMaskedLM

    base = tiny_models["tiny-distilbert"]
    dora = make_adapter(base, DistilBertForMaskedLM,
                        peft.LoraConfig(r=2, lora_alpha=4, target_modules=["q_lin"],
                                        use_dora=True), tmp_path / "dora")
    spec = _spec(tmp_path, base, {"name": "dora", "path": str(base),
                                  "adapter": str(dora["adapter"])})
    spec["checks"] = [{"metric": "weights.relative_drift.max", "fail_if": "> 10"}]
    cert = reportgen.audit(spec, progress=False)
    why = ("not available: the adapter of dora cannot be merged from its files: "
           "use_dora=True is not reproduced")
    assert [(c["status"], c["message"]) for c in cert.checks] == [
        ("ERROR", f"weights.relative_drift.max could not be computed: {why}")]
    metrics = cert.comparison("dora")["metrics"]
    assert {n: metrics[n]["error"] for n in metrics if n.startswith("weights.")} == {
        n: why for n in ("weights.relative_drift.max", "weights.relative_drift.mean",
                         "weights.relative_drift.global", "weights.unmatched_tensors")}
    assert cert.metric("dora", "concepts.cosine_distance.mean") > 0  # the captures saw it
    assert ("dora: weight drift not available: the adapter of dora cannot be merged from "
            "its files: use_dora=True is not reproduced.") in cert.data["warnings"]


def _pickled_adapter(lora, tmp_path: Path) -> Path:
    """The fixture's adapter pickled as adapter_model.bin, beside an unrelated safetensors."""
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "pickled-adapter"
    shutil.copytree(lora["adapter"], folder)
    torch.save(load_file(folder / "adapter_model.safetensors"), folder / "adapter_model.bin")
    (folder / "adapter_model.safetensors").unlink()
    save_file({"unrelated": torch.zeros(2)}, folder / "notes.safetensors")
    return folder


def test_pickled_adapter_is_refused_before_torch_load(lora, tmp_path: Path, monkeypatch,
                                                      capsys) -> None:
    import yaml

    from reportgen.cli import commands as cli

    _pickled_adapter(lora, tmp_path)
    loads: list[object] = []
    monkeypatch.setattr(torch, "load", lambda *a, **k: loads.append(a) or {})
    spec = _spec(tmp_path, lora["base"], {"name": "lora", "path": str(lora["base"]),
                                          "adapter": "./pickled-adapter"})
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    assert cli.main(["audit", str(tmp_path / "spec.yaml"), "-q"]) == 2
    spec_file = tmp_path / "spec.yaml"
    line = next(i for i, t in enumerate(spec_file.read_text().splitlines(), 1)
                if "pickled-adapter" in t)
    assert capsys.readouterr().err.splitlines() == [
        f"error: {spec_file}:{line}: models.candidates[0].adapter: './pickled-adapter' has no "
        "adapter_model.safetensors, only pickle weights (adapter_model.bin); convert them to "
        "safetensors, or set models.candidates[0].allow_pickle: true if you trust them "
        "(unpickling can run code)", "1 problem found; nothing was run."]
    assert loads == []
    assert not list(tmp_path.rglob("certificate.*"))


def test_pickled_adapter_is_refused_at_load_too(lora, tmp_path: Path, monkeypatch) -> None:
    """loading.apply_adapter checks again right before PEFT reads the folder."""
    from reportgen.capture.loading import apply_adapter
    from reportgen.core.errors import ModelError
    from reportgen.spec.resolve import LoadOptions, resolve

    rm = resolve("lora", "candidate", str(lora["base"]), tmp_path, "models.candidates[0].path",
                 options=LoadOptions(adapter=str(lora["adapter"])))
    rm.adapter_path = _pickled_adapter(lora, tmp_path)
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load was reached"))
    with pytest.raises(ModelError, match=r"^models\.candidates\[0\]\.adapter: .* has no "
                                         r"adapter_model\.safetensors, only pickle weights "
                                         r"\(adapter_model\.bin\); .* set models\.candidates"
                                         r"\[0\]\.allow_pickle: true "):
        apply_adapter(object(), rm)


def test_adapter_for_another_model_class_is_refused(lora, tiny_models, tmp_path: Path) -> None:
    """Saved over the bare GPT2Model (``h.0…``), applied to GPT2LMHeadModel
    (``transformer.h.0…``): PEFT only warns and applies nothing, so it is an error."""
    from transformers import GPT2Model

    from reportgen.capture.loading import load
    from reportgen.core.errors import ModelError
    from reportgen.spec.resolve import LoadOptions, resolve

    pm = peft.get_peft_model(GPT2Model.from_pretrained(lora["base"]), peft.LoraConfig(
        r=2, lora_alpha=2, target_modules=["c_attn"], fan_in_fan_out=True))
    pm.save_pretrained(tmp_path / "bare")
    rm = resolve("lora", "candidate", str(lora["base"]), tmp_path, "models.candidates[0].path",
                 options=LoadOptions(adapter="./bare"))
    with pytest.raises(ModelError) as e:
        load(rm)
    assert str(e.value) == (
        "models.candidates[0].adapter: adapter './bare' does not fit "
        f"{str(lora['base'])!r} (GPT2LMHeadModel): 4 of its tensors match no module of the "
        "model (e.g. base_model.model.h.0.attn.c_attn.lora_A.weight), so PEFT would apply it "
        "only in part, without an error")


def test_a_variant_derived_from_an_adapter_model_is_named_by_both(lora, tmp_path: Path) -> None:
    import hashlib

    from reportgen.spec.resolve import LoadOptions, derive, resolve

    field = "models.candidates[0].path"
    base = resolve("base", "base", str(lora["base"]), tmp_path, "models.base.path")
    rm = resolve("lora", "candidate", str(lora["base"]), tmp_path, field,
                 options=LoadOptions(adapter=str(lora["adapter"])))
    of_base = derive("int8", "noise_floor", base, "int8", "models.candidates[1].derive")
    of_lora = derive("int8", "noise_floor", rm, "int8", "models.candidates[1].derive")
    recipe = "int8 per-output-channel absmax weight round-trip of every weight matrix"
    assert of_base.digest.root == hashlib.sha256(
        f"{base.digest.root}\n{recipe}".encode()).hexdigest()
    assert of_lora.digest.root == hashlib.sha256(
        f"{base.digest.root}\nadapter:{rm.adapter_digest.root}\n{recipe}".encode()).hexdigest()
