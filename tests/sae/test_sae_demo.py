"""On the demo GPT-2s, a dictionary trained on the base finds the planted rewiring: the
planted fine-tune's most-moved features move on the planted terms' prompts, far more than on
other concepts' prompts, and the control fine-tune's features move less."""

from __future__ import annotations

from pathlib import Path

import pytest

import reportgen
from reportgen.probes import load_vocabulary

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = "The concept of {term} is"
TOP = 10
CATEGORIES = ("finance", "games", "animals", "food")


@pytest.fixture(scope="session")
def demo_sae(demo_root: Path, tmp_path_factory: pytest.TempPathFactory):
    return reportgen.audit(demo_spec(demo_root, tmp_path_factory.mktemp("demo-sae")),
                           progress=False)


def demo_spec(demo_root: Path, tmp: Path) -> dict:
    import json

    planted = json.loads((demo_root / "planted.json").read_text())["planted_terms"]
    vocab = [c for c in load_vocabulary("builtin:concepts", tmp) if c.category in CATEGORIES]
    (tmp / "vocab.yaml").write_text(json.dumps(
        {cat: [c.term for c in vocab if c.category == cat] for cat in CATEGORIES}))
    others = [c.term for c in vocab if c.term not in planted]
    (tmp / "planted.txt").write_text("\n".join(TEMPLATE.format(term=t) for t in planted))
    (tmp / "others.txt").write_text("\n".join(TEMPLATE.format(term=t) for t in others))
    models = {n: str(demo_root / f"gpt2-{n}") for n in ("base", "planted", "control")}
    return {
        "audit": {"name": "demo sae", "release": "t", "created": "2026-01-01T00:00:00Z"},
        "models": {"base": {"path": models["base"]}, "candidates": [
            {"name": "planted", "path": models["planted"]},
            {"name": "control", "path": models["control"]}]},
        "probes": {"concepts": {"vocabulary": str(tmp / "vocab.yaml"), "template": TEMPLATE},
                   "domains": [{"name": "planted", "texts": str(tmp / "planted.txt")},
                               {"name": "others", "texts": str(tmp / "others.txt")},
                               {"name": "finance", "texts": "builtin:domains/finance"}]},
        "analysis": {"layers": [2], "umap": False, "weights": False, "bootstrap": 50,
                     "sae": [{"layer": 2, "train": {"d_sae": 256, "k": 8, "epochs": 40,
                                                    "corpus": "builtin:domains/legal"}}]},
    }


def _moved(cert, cand: str) -> list[dict]:
    return cert.comparison(cand)["tables"]["sae_moved"][:TOP]


def _specific(row: dict) -> float:
    """How much more a feature changed on the planted terms' prompts than on other terms'
    prompts in the same template (the template's own tokens cancel out)."""
    ch = row["change_by_probe"]
    return abs(ch["domains.planted"] - ch["domains.others"])


def test_planted_top_features_fire_on_planted_contexts(demo_sae) -> None:
    """Among the planted fine-tune's most-moved features are ones that change on the planted
    terms' prompts specifically, and ones that change on finance texts (where the planted
    terms live) but not on other concepts' prompts; the control's top features show far less
    of the first kind."""
    planted, control = _moved(demo_sae, "planted"), _moved(demo_sae, "control")
    assert max(map(_specific, planted)) > 2 * max(map(_specific, control))
    assert any(abs(r["change_by_probe"]["domains.finance"])
               > 3 * abs(r["change_by_probe"]["domains.others"]) + 0.1 for r in planted)


def test_control_top_moves_are_smaller(demo_sae) -> None:
    planted = [r["mean_abs_change"] for r in _moved(demo_sae, "planted")]
    control = [r["mean_abs_change"] for r in _moved(demo_sae, "control")]
    assert all(p > c for p, c in zip(planted[:3], control[:3], strict=True))
    assert sum(control) < 0.9 * sum(planted)
    m = "sae.layer.2.jaccard.mean"
    assert demo_sae.metric("planted", m) < demo_sae.metric("control", m)
