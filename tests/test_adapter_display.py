"""A LoRA adapter that leaves the embedding alone, audited for real: the footer names peft,
and the page says that no token moved instead of ranking unmoved tokens."""

from __future__ import annotations

from importlib.metadata import version

import pytest
import torch

import reportgen
from reportgen.views.html import figures as page_figures
from reportgen.views.html import render_html

peft = pytest.importorskip("peft")

VOCAB = "animals: [cat, dog, horse, mouse, eagle]\ntools: [hammer, saw, drill, wrench, axe]\n"


@pytest.fixture(scope="module")
def cert(tiny_models, tmp_path_factory):
    from transformers import GPT2LMHeadModel

    base = tiny_models["tiny-gpt2"]
    root = tmp_path_factory.mktemp("adapter-display")
    model = GPT2LMHeadModel.from_pretrained(base, dtype=torch.float32)
    pm = peft.get_peft_model(model, peft.LoraConfig(r=4, lora_alpha=8, target_modules=["c_attn"],
                                                    fan_in_fan_out=True))
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in pm.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    pm.save_pretrained(root / "adapter")
    (root / "vocab.yaml").write_text(VOCAB)
    spec = {
        "audit": {"name": "adapter display", "created": "2026-01-02T03:04:05Z"},
        "models": {"base": {"path": str(base)}, "candidates": [
            {"name": "lora", "path": str(base), "adapter": str(root / "adapter")},
            {"name": "ft", "path": str(tiny_models["tiny-gpt2-ft"])}]},
        "probes": {"concepts": {"vocabulary": str(root / "vocab.yaml")}},
        "analysis": {"batch_size": 4, "bootstrap": 20, "umap": False},
    }
    return reportgen.audit(spec, progress=False)


@pytest.fixture(scope="module")
def html(cert) -> str:
    return render_html(cert)


def test_libraries_that_touched_the_models_are_listed(cert, html) -> None:
    libs = cert.data["tool"]["libraries"]
    assert libs["peft"] == version("peft")
    assert libs["torch"] == version("torch")
    assert "accelerate" not in libs  # no model was placed with device: auto
    assert "umap-learn" not in libs  # analysis.umap was off
    footer = html[html.index('<footer class="colophon">'):]
    assert f"peft {version('peft')}" in footer


def test_no_token_moved_is_said_not_drawn(cert, html) -> None:
    lora = cert.comparison("lora")
    assert cert.metric("lora", "embeddings.cosine_distance.max") == 0.0
    assert cert.metric("lora", "concepts.cosine_distance.mean") > 0  # the adapter did act
    assert lora["tables"]["tokens"] == []
    ids = [f.id for f in page_figures(cert.data)]
    assert "token-movers-lora" not in ids and "token-movers-ft" in ids
    assert ("lora: no token moved (every shared token&#39;s input embedding is the "
            "base&#39;s), so there are no token movers to list.") in html
    assert "No token moved in lora" in html
