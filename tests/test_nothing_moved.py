"""A candidate identical to its base, audited for real: every family that would rank its
"top movers" says in words that nothing moved, and draws no chart of zeros."""

from __future__ import annotations

import shutil

import pytest

import reportgen
from reportgen.certificate import Certificate
from reportgen.render import charts
from reportgen.render.html import page_context

VOCAB = "animals: [cat, dog, horse, mouse, eagle]\ntools: [hammer, saw, drill, wrench, axe]\n"


@pytest.fixture(scope="module")
def page(tiny_models, tmp_path_factory) -> tuple[dict, dict]:
    root = tmp_path_factory.mktemp("nothing-moved")
    shutil.copytree(tiny_models["tiny-gpt2"], root / "same")
    (root / "vocab.yaml").write_text(VOCAB)
    spec = {
        "audit": {"name": "nothing moved", "created": "2026-01-02T03:04:05Z"},
        "models": {"base": {"path": str(tiny_models["tiny-gpt2"])}, "candidates": [
            {"name": "same", "path": str(root / "same")},
            {"name": "ft", "path": str(tiny_models["tiny-gpt2-ft"])}]},
        "probes": {"concepts": {"vocabulary": str(root / "vocab.yaml")},
                   "domains": [{"name": "finance", "texts": "builtin:domains/finance"}],
                   "risk": [{"name": "financial_advice",
                             "prompts": "builtin:risk/financial_advice"}]},
        "analysis": {"batch_size": 8, "bootstrap": 20, "umap": False,
                     "sae": [{"layer": 1, "train": {"d_sae": 32, "k": 4, "epochs": 2}}]},
    }
    data = reportgen.audit(spec, progress=False).data
    ctx = page_context(Certificate(data), "html")
    return data, {s.family: s for s in ctx["sections"]}


def test_every_drift_of_an_identical_copy_is_zero(page) -> None:
    data, _ = page
    m = charts.comparison(data, "same")["metrics"]
    for name in ("concepts.cosine_distance.max", "embeddings.cosine_distance.max",
                 "weights.relative_drift.max", "probabilities.kl_base_candidate.mean",
                 "sae.layer.1.moved.top_change"):
        assert m[name]["value"] == 0.0, name
    assert charts.comparison(data, "same")["tables"].get("sae_moved", []) == []


def test_nothing_is_ranked_and_each_section_says_so(page) -> None:
    data, sections = page
    ids = [f.id for s in sections.values() for f in s.figures]
    for gone in ("top-concepts-same", "token-movers-same", "weights-same",
                 "prob-tokens-same", "sae-heatmap-same-1"):
        assert gone not in ids, gone
    for kept in ("top-concepts-ft", "token-movers-ft", "weights-ft", "sae-heatmap-ft-1"):
        assert kept in ids, kept
    said = {
        "concepts": "same: no concept moved (every concept's last-layer state is the base's), "
                    "so there is no ranking to show.",
        "embeddings": "same: no token moved (every shared token's input embedding is the "
                      "base's), so there are no token movers to list.",
        "weights": "same: no weight changed (every compared tensor equals the base's).",
        "probabilities": "same: no token gained or lost probability mass at any scored "
                         "position, so none is listed.",
        "behavior": "same: no risk prompt's margin fell, so none is listed as worsened.",
        "sae": "same, layer 1: no feature's mean activation changed on any probe set, so no "
               "feature moved.",
    }
    for fam, note in said.items():
        assert note in sections[fam].notes, (fam, sections[fam].notes)
    # the tables behind a chart left out still reach the page (the SAE fit, for one)
    fit = [t.caption for t in sections["sae"].tables["sae-heatmap-same-1"]]
    assert "Does the base dictionary fit same? (layer 1)" in fit
