"""``reportgen plan``: the audit's size from configs and tokenizers, checked against what an
audit of the tiny models really loads, reads and writes (transformers' own parameter count
and tokenization, the arrays and the probabilities store in the capture cache)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import transformers as tf
from golden.golden import tiny_spec

import reportgen
from reportgen.analysis.plan import flops, plan_audit, size
from reportgen.capture.sizes import model_sizes
from reportgen.cli import main
from reportgen.spec.load import load_spec
from reportgen.spec.probeset import build_probes

AUTO = {"gpt2": tf.AutoModelForCausalLM, "distilbert": tf.AutoModelForMaskedLM}


def _cached(cache: Path) -> list[dict[str, np.ndarray | int]]:
    """Per capture in the cache: its pooled and embedding arrays' bytes, its store's bytes
    (hidden states and the LM head's arrays)."""
    out = []
    for entry in sorted((cache / "captures").iterdir()):
        if entry.name.startswith("."):
            continue
        arrays = sum(np.load(entry / f"{n}.npy", mmap_mode="r").nbytes
                     for n in ("last", "mean", "embeddings"))
        store = [p.stat().st_size for p in entry.iterdir() if p.name.endswith(".hidden")]
        store += [np.load(p, mmap_mode="r").nbytes for p in entry.iterdir()
                  if p.name.endswith((".head_weight", ".head_bias"))]  # the base's head
        out.append({"capture": arrays, "store": sum(store)})
    return out


@pytest.mark.parametrize("kind", ["gpt2", "distilbert"])
def test_plan_matches_what_the_audit_loads_reads_and_writes(kind, tiny_models, tmp_path,
                                                            monkeypatch) -> None:
    monkeypatch.setenv("REPORTGEN_CACHE", str(tmp_path / "cache"))
    spec = tiny_spec(tiny_models, kind, tmp_path)
    spec["analysis"]["sae"] = []
    loaded = load_spec(spec, models=True)
    probe = build_probes(loaded)
    plan = plan_audit(loaded, probe)
    cert = reportgen.audit(spec, progress=False)
    assert [m.name for m in plan.models] == ["base", "ft", "int8"]
    by = {m.name: m for m in plan.models}
    for name, folder in (("base", tiny_models[f"tiny-{kind}"]),
                         ("ft", tiny_models[f"tiny-{kind}-ft"])):
        model = AUTO[kind].from_pretrained(folder)
        assert by[name].parameters == sum(p.numel() for p in model.parameters())
        assert by[name].weight_bytes == sum(p.numel() * p.element_size()
                                            for p in model.parameters())
        tok = tf.AutoTokenizer.from_pretrained(folder)
        assert by[name].tokens == sum(len(tok(t, truncation=True, max_length=32)["input_ids"])
                                      for t in probe.all_texts)
        e = model.get_input_embeddings().weight
        assert by[name].knn_flops == 2 * e.shape[0] ** 2 * e.shape[1]
    for m in cert.data["models"]:
        assert by[m["name"]].parameters == m["parameters"]
    rows = cert.comparison("ft")["tables"]["probabilities_probe_sets"]
    assert by["base"].scored_positions == sum(r["positions"] for r in rows
                                              if r["probe_set"] != "all") > 0
    cached = _cached(tmp_path / "cache")
    assert sorted(c["capture"] for c in cached) == sorted(m.capture_bytes for m in plan.models)
    assert sorted(c["store"] for c in cached) == sorted(m.store_bytes for m in plan.models)
    assert by["base"].store_bytes > 0 and by["ft"].store_bytes == by["int8"].store_bytes == 0
    assert plan.disk_bytes == sum(c["capture"] + c["store"] for c in cached)
    assert plan.knn_flops == sum(m.knn_flops for m in plan.models)
    for m in plan.models:
        assert m.peak_bytes > m.weight_bytes + m.capture_bytes


def test_parameters_from_config_match_every_architecture(arch_models) -> None:
    """Tied embeddings (Qwen2, Gemma 2) counted once, biases, fused projections (Phi-3)."""
    for name, folder in arch_models.items():
        model = tf.AutoModelForCausalLM.from_pretrained(folder)
        s = model_sizes(folder, "causal-lm", ["a b c"], 64)
        assert s.parameters == sum(p.numel() for p in model.parameters()), name
        assert s.head_rows == model.get_output_embeddings().weight.shape[0], name


def test_plan_command_prints_the_table(tiny_models, tmp_path, capsys) -> None:
    spec = tiny_spec(tiny_models, "gpt2", tmp_path)
    (tmp_path / "spec.yaml").write_text(json.dumps(spec))
    assert main(["plan", str(tmp_path / "spec.yaml")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{tmp_path / 'spec.yaml'}: audit plan, from configs and tokenizers " \
                     "(no weight loaded)"
    assert out[1].split() == ["model", "kind", "parameters", "weights", "tokens", "scored",
                              "capture", "store", "V×V", "work"]
    assert [line.split()[0] for line in out[2:5]] == ["base", "ft", "int8"]
    assert out[5].startswith("disk: ")


def test_units() -> None:
    assert [size(n) for n in (0, 1023, 1536, 3 * 1024 ** 3)] == [
        "0 B", "1023 B", "1.5 KiB", "3.0 GiB"]
    assert [flops(n) for n in (0, 999, 2_100_000_000, 134_600_000_000_000)] == [
        "0 FLOP", "999 FLOP", "2.1 GFLOP", "134.6 TFLOP"]


def test_readme_plan_example_is_what_the_command_prints(demo_root, capsys,
                                                        monkeypatch) -> None:
    repo = Path(__file__).resolve().parents[1]
    block = re.search(r"```\n\$ reportgen plan specs/demo.yaml\n(.*?)```",
                      (repo / "README.md").read_text(), flags=re.S)
    assert block is not None
    monkeypatch.chdir(repo)
    monkeypatch.setenv("REPORTGEN_DEMO_DIR", str(demo_root.parent))  # demo_root: ./v2
    assert main(["plan", "specs/demo.yaml"]) == 0
    assert capsys.readouterr().out == block.group(1)
