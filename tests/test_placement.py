"""Past one GPU: ``device: auto`` lets accelerate place a model across the GPUs of one
machine, then the CPU, then the disk. No GPU here, so the placement is tested with forced
memory limits: accelerate's plan for a Llama over two "GPUs" whose memory holds a few
layers each, and a real audit of a model pushed mostly onto the disk, whose numbers must be
the unsplit model's."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import transformers as tf

from reportgen.capture import loading

ORDER = {0: 0, 1: 1, "cpu": 2, "disk": 3}


def _llama() -> tf.PreTrainedModel:
    from accelerate import init_empty_weights

    cfg = tf.LlamaConfig(vocab_size=1000, hidden_size=64, intermediate_size=128,
                         num_hidden_layers=8, num_attention_heads=4, num_key_value_heads=2)
    with init_empty_weights():  # sizes only: nothing is allocated
        return tf.LlamaForCausalLM(cfg)


def test_accelerate_splits_a_llama_across_gpus_by_whole_layers_in_order() -> None:
    from accelerate import infer_auto_device_map
    from accelerate.utils import compute_module_sizes

    model = _llama()
    sizes = compute_module_sizes(model)
    layer, emb = sizes["model.layers.0"], sizes["model.embed_tokens"]
    caps = {0: emb + 3 * layer, 1: 3 * layer, "cpu": 2 * layer, "disk": 10 * sizes[""]}
    plan = infer_auto_device_map(model, max_memory=caps,
                                 no_split_module_classes=model._no_split_modules)
    layers = [plan[f"model.layers.{i}"] for i in range(8)]  # each layer whole, on one device
    assert not any(re.match(r"model\.layers\.\d+\.", k) for k in plan)
    assert [ORDER[d] for d in layers] == sorted(ORDER[d] for d in layers)  # in order
    assert {0, 1} <= set(layers) and plan["model.embed_tokens"] == 0
    for dev, cap in caps.items():
        used = sum(sizes[k] for k, d in plan.items() if d == dev)
        assert used <= cap, (dev, used, cap)
    summary = loading.placement_summary(plan)
    counts = {d: sum(1 for v in plan.values() if v == d) for d in set(plan.values())}
    assert summary.startswith(f"placed by accelerate: cuda:0 {counts[0]} modules, "
                              f"cuda:1 {counts[1]} modules")


def test_placement_summary_orders_gpus_cpu_disk_and_warns_of_disk() -> None:
    assert loading.placement_summary({"a": 1, "b": 0, "c": "disk", "d": "cpu", "e": 0}) == (
        "placed by accelerate: cuda:0 2 modules, cuda:1 1 module, cpu 1 module, disk 1 module"
        " (modules on disk are read back on every forward: slow)")
    assert loading.placement_summary({"": 0}) == "placed by accelerate: cuda:0 1 module"


def test_a_model_offloaded_to_disk_audits_as_the_unsplit_one(
        tiny_models, tmp_path: Path, monkeypatch, capsys) -> None:
    """Memory capped (the spec's max_memory) so that accelerate keeps only part of the model
    in memory and offloads the rest to disk (the LM head among it): the certificate's numbers,
    next-token probabilities included, equal the CPU run's."""
    from test_pipeline import _spec

    import reportgen

    base, ft = tiny_models["tiny-gpt2"], tiny_models["tiny-gpt2-ft"]
    (tmp_path / "texts.txt").write_text("The bank raised its rates.\nA cat sat on the mat.\n")

    def spec_with_texts() -> dict:
        spec = _spec(tmp_path, base, ft)
        spec["probes"]["domains"] = [{"name": "mixed", "texts": str(tmp_path / "texts.txt")}]
        return spec

    cpu = reportgen.audit(spec_with_texts(), progress=False)
    assert cpu.metric("ft", "probabilities.kl_base_candidate.mean") is not None
    seen = []
    real = loading._load_kwargs
    monkeypatch.setattr(loading, "_load_kwargs", lambda rm: seen.append(real(rm)) or seen[-1])
    monkeypatch.setenv("REPORTGEN_CACHE", str(tmp_path / "cache"))  # placement is not keyed
    spec = spec_with_texts()
    for model in (spec["models"]["base"], spec["models"]["candidates"][0]):
        # the embeddings and a layer or two in "memory", the rest on disk
        model.update(device="auto", max_memory={"cpu": "200KB"})
    split = reportgen.audit(spec, progress=True)
    assert seen and all(kw["max_memory"] == {"cpu": 200_000} for kw in seen)
    said = capsys.readouterr().err
    assert re.search(r"base: placed by accelerate: cpu \d+ modules?, disk \d+ module", said)
    for cand in ("ft", "int8"):
        for name, mv in cpu.comparison(cand)["metrics"].items():
            a, c = split.metric(cand, name), mv["value"]
            if c is None:
                assert a is None, name
            else:
                assert math.isclose(a, c, rel_tol=1e-5, abs_tol=1e-6), (cand, name, a, c)
    assert split.verdict == cpu.verdict


pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def test_an_offloaded_lm_head_is_read_where_accelerate_keeps_it() -> None:
    """A big model's last module, the LM head, is the one accelerate offloads first: its
    parameters sit on ``meta``. The probabilities family reads the head's weights from the
    offloaded copy and computes where the hook runs it (a plain Linear and a wrapped head)."""
    import torch
    from accelerate import cpu_offload

    from reportgen.capture.offload import execution_device
    from reportgen.families.probabilities.head import affine_of

    torch.manual_seed(0)
    lin = torch.nn.Linear(8, 5)
    want_w, want_b = lin.weight.detach().clone(), lin.bias.detach().clone()
    wrapped = torch.nn.Sequential(torch.nn.Linear(8, 5))
    wrapped[0].load_state_dict(lin.state_dict())
    for head in (lin, wrapped):
        cpu_offload(head, execution_device=torch.device("cpu"))
        assert next(head.parameters()).device.type == "meta"
        assert execution_device(head) == torch.device("cpu")
        w, b = affine_of(head)
        torch.testing.assert_close(w, want_w, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(b, want_b, rtol=1e-6, atol=1e-6)
