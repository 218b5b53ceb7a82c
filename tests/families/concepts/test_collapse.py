"""Representation collapse: the mean pairwise cosine against sklearn, and a planted collapse
found through a real audit while an ordinary fine-tune is not flagged."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics.pairwise import cosine_similarity

import reportgen
from reportgen.families.concepts.collapse import (
    COLLAPSE_SPREAD_RATIO,
    collapse_metrics,
    collapsed,
    mean_pairwise_cosine,
)

VOCAB = ("animals: [cat, dog, horse, mouse, eagle, whale]\n"
         "tools: [hammer, saw, drill, wrench, axe, chisel]\n")
TEMPLATE = "The concept of {term} is"


def _reference(x: np.ndarray) -> float:
    c = cosine_similarity(x)
    n = len(x)
    return float(c[~np.eye(n, dtype=bool)].mean())


def test_mean_pairwise_cosine_matches_sklearn() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 16)) + 0.7
    assert mean_pairwise_cosine(x) == pytest.approx(_reference(x), abs=1e-12)
    x[3] = 0.0  # a zero row: cosine 0 with everything, as sklearn takes it
    assert mean_pairwise_cosine(x) == pytest.approx(_reference(x), abs=1e-12)
    with pytest.raises(ValueError, match="at least two"):
        mean_pairwise_cosine(x[:1])


def test_spread_ratio_and_the_collapse_threshold() -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(size=(30, 8))
    shared = rng.normal(size=8) * 10
    cand = shared + 1e-3 * rng.normal(size=(30, 8))  # every state nearly the same
    m = collapse_metrics(base, cand)
    pb, pc = _reference(base), _reference(cand)
    assert m["concepts.pairwise_cosine.base"].value == pytest.approx(pb, abs=1e-12)
    assert m["concepts.pairwise_cosine.candidate"].value == pytest.approx(pc, abs=1e-12)
    assert m["concepts.spread_ratio"].value == pytest.approx((1 - pc) / (1 - pb), rel=1e-9)
    assert collapsed(m) and m["concepts.spread_ratio"].value < COLLAPSE_SPREAD_RATIO
    assert not collapsed(collapse_metrics(base, base + 0.1 * rng.normal(size=base.shape)))
    same = np.tile(shared, (5, 1))  # a base whose states all point one way: no ratio
    m = collapse_metrics(same, same)
    assert m["concepts.spread_ratio"].value is None
    assert "no spread to compare with" in m["concepts.spread_ratio"].error
    assert not collapsed(m)


def _collapsed_copy(src: Path, dst: Path) -> Path:
    """tiny-gpt2 whose final layer norm maps every state to (almost) one vector: the last
    hidden state of every prompt becomes that vector plus a trace of the input."""
    from transformers import GPT2LMHeadModel

    model = GPT2LMHeadModel.from_pretrained(src, dtype=torch.float32)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        model.transformer.ln_f.weight.mul_(1e-3)
        model.transformer.ln_f.bias.copy_(torch.randn(model.config.n_embd, generator=gen))
    model.save_pretrained(dst)
    for f in src.iterdir():
        if f.name.startswith(("tokenizer", "vocab", "merges", "special")):
            shutil.copy(f, dst / f.name)
    return dst


def _last_states(folder: Path, terms: list[str]) -> np.ndarray:
    import transformers as tf

    model = tf.AutoModelForCausalLM.from_pretrained(folder).eval()
    tok = tf.AutoTokenizer.from_pretrained(folder)
    with torch.no_grad():
        return np.stack([model(**tok(TEMPLATE.format(term=t), return_tensors="pt"),
                               output_hidden_states=True).hidden_states[-1][0, -1].double()
                         .numpy() for t in terms])


@pytest.fixture(scope="module")
def audit(tiny_models, tmp_path_factory) -> tuple:
    tmp = tmp_path_factory.mktemp("collapse")
    collapsed_model = _collapsed_copy(tiny_models["tiny-gpt2"], tmp / "collapsed")
    (tmp / "vocab.yaml").write_text(VOCAB)
    spec = {
        "audit": {"name": "collapse", "created": "2026-01-02T03:04:05Z"},
        "models": {"base": {"path": str(tiny_models["tiny-gpt2"])}, "candidates": [
            {"name": "collapsed", "path": str(collapsed_model)},
            {"name": "ft", "path": str(tiny_models["tiny-gpt2-ft"])}]},
        "probes": {"concepts": {"vocabulary": str(tmp / "vocab.yaml"), "template": TEMPLATE}},
        "analysis": {"batch_size": 4, "bootstrap": 20, "umap": False},
        "output": {"dir": str(tmp / "out"), "formats": ["json"]},
    }
    return reportgen.audit(spec, progress=False), spec, tmp, collapsed_model


def test_a_planted_collapse_is_measured_and_warned_about(audit, tiny_models) -> None:
    cert, _, _, folder = audit
    terms = [t.strip() for line in VOCAB.splitlines()
             for t in line.split("[")[1].rstrip("]").split(",")]
    base = _last_states(tiny_models["tiny-gpt2"], terms)
    for name, path in (("collapsed", folder), ("ft", tiny_models["tiny-gpt2-ft"])):
        cand = _last_states(path, terms)
        assert cert.metric(name, "concepts.pairwise_cosine.base") == pytest.approx(
            _reference(base), abs=1e-5)
        assert cert.metric(name, "concepts.pairwise_cosine.candidate") == pytest.approx(
            _reference(cand), abs=1e-5)
    assert cert.metric("collapsed", "concepts.pairwise_cosine.candidate") > 0.99
    assert cert.metric("collapsed", "concepts.spread_ratio") < COLLAPSE_SPREAD_RATIO
    assert cert.metric("ft", "concepts.spread_ratio") > 0.5
    about = [w for w in cert.data["warnings"] if "collapsed:" in w]
    assert len(about) == 1 and about[0].startswith(
        "collapsed: the concept representations collapsed: the mean cosine between two "
        "different concepts' last-layer states rose from ")
    from reportgen.families.concepts.view import concept_notes

    assert concept_notes(cert.data) == about  # repeated in the concept section


def test_the_python_api_writes_only_when_asked(audit) -> None:
    """``reportgen.audit`` ignores ``output:`` unless write=True (then it writes there)."""
    cert, spec, tmp, _ = audit
    assert not (tmp / "out").exists()
    again = reportgen.audit(spec, progress=False, write=True)
    assert (tmp / "out" / "certificate.json").read_text() == again.to_json()
    assert again.to_json() == cert.to_json()


def test_unknown_names_get_a_did_you_mean(audit) -> None:
    from reportgen.core.errors import UnknownNameError

    cert = audit[0]
    with pytest.raises(UnknownNameError) as e:
        cert.metric("ft", "concepts.cosine_distanse.mean")
    assert str(e.value) == ("unknown metric 'concepts.cosine_distanse.mean'. Did you mean: "
                            "concepts.cosine_distance.mean, concepts.cosine_distance.median, "
                            "concepts.cosine_distance.max?")
    with pytest.raises(KeyError) as e:  # still a KeyError for code that caught one
        cert.metric("colapsed", "concepts.cosine_distance.mean")
    assert str(e.value) == ("unknown candidate 'colapsed'. Did you mean 'collapsed'? Known: "
                            "collapsed, ft")
    with pytest.raises(UnknownNameError) as e:  # registered, but this audit had no domains
        cert.metric("ft", "domains.finance.cosine_distance.mean")
    assert str(e.value) == ("metric 'domains.finance.cosine_distance.mean' was not computed "
                            "for 'ft' (this audit did not measure it).")
    with pytest.raises(UnknownNameError) as e:  # a category the vocabulary does not have
        cert.metric("ft", "concepts.category.animal.cosine_distance.mean")
    assert str(e.value) == ("metric 'concepts.category.animal.cosine_distance.mean' was not "
                            "computed for 'ft' (this audit did not measure it). Did you mean: "
                            "concepts.category.animals.cosine_distance.mean, "
                            "concepts.category.tools.cosine_distance.mean?")
