"""On the demo GPT-2s, the dictionary the demo audit trains on the base finds the planted
rewiring: the planted fine-tune's most-moved features are features that change on the planted
terms' prompts, and the control fine-tune's top moves are smaller. On the real MiniLM encoder,
the planted fine-tune's top features are gambling features now firing on finance concepts.

The certificate's ranking is checked against activations computed here: transformers' hidden
states of each demo model, encoded by the published TopK formula with the dictionary the audit
wrote beside the certificate.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers as tf
from safetensors.numpy import load_file

import reportgen
from reportgen.spec.probes import load_vocabulary

REPO = Path(__file__).resolve().parents[3]
LAYER = 2
TOP = 4  # the planted fine-tune's top moved features checked one by one


@pytest.fixture(scope="module")
def demo_sae(demo_cert):
    """The session's demo audit (tests/conftest.py), with its trained dictionary written."""
    return demo_cert


@pytest.fixture(scope="module")
def changes(demo_sae, demo_root: Path) -> dict[str, dict[str, np.ndarray]]:
    """Per model, the mean code change (model - base) on the concept prompts' own tokens (the
    term and the word after it; the template's opening words are shared by every prompt),
    over the planted terms, the other finance terms and every other category's terms."""
    cert, out = demo_sae
    w = load_file(out / cert.data["analysis"]["sae"]["layers"][str(LAYER)]["saved_as"]
                  / "sae_weights.safetensors")
    k = json.loads((out / "trained-sae" / f"layer{LAYER}" / "cfg.json").read_text())["k"]
    planted = json.loads((demo_root / "planted.json").read_text())["planted_terms"]
    template = cert.data["spec"]["content"]["probes"]["concepts"]["template"]
    vocab = load_vocabulary("builtin:concepts", out)
    groups = {"planted": [c.term for c in vocab if c.term in planted],
              "finance": [c.term for c in vocab
                          if c.category == "finance" and c.term not in planted],
              "rest": [c.term for c in vocab if c.category != "finance"]}
    codes = {m: {g: _codes(demo_root / f"gpt2-{m}", template, terms, w, k)
                 for g, terms in groups.items()} for m in ("base", "planted", "control")}
    return {m: {g: codes[m][g] - codes["base"][g] for g in groups}
            for m in ("planted", "control")}


def _codes(folder: Path, template: str, terms: list[str], w: dict, k: int) -> np.ndarray:
    """Mean TopK code, topk(relu((x - b_dec) W_enc + b_enc)), over the terms' own tokens."""
    model = tf.AutoModelForCausalLM.from_pretrained(folder).eval()
    tok = tf.AutoTokenizer.from_pretrained(folder)
    opening = len(tok(template.split("{term}")[0].rstrip())["input_ids"])
    rows = []
    with torch.no_grad():
        for t in terms:
            ids = tok(template.format(term=t), return_tensors="pt")
            x = model(**ids, output_hidden_states=True).hidden_states[LAYER][0, opening:]
            pre = np.maximum((x.double().numpy() - w["b_dec"]) @ w["W_enc"] + w["b_enc"], 0)
            keep = np.argsort(-pre, axis=1)[:, :k]
            f = np.zeros_like(pre)
            np.put_along_axis(f, keep, np.take_along_axis(pre, keep, 1), 1)
            rows.append(f)
    return np.concatenate(rows).mean(0)


def _moved(cert, cand: str) -> list[dict]:
    return [r for r in cert.comparison(cand)["tables"]["sae_moved"] if r["layer"] == LAYER]


def test_planted_top_features_fire_on_planted_contexts(demo_sae, changes) -> None:
    """What the planting guarantees, with margins that survive another machine's floats (the
    dictionary is trained anew on each machine, and a fine-tune's ordinary drift moves some
    features as much as the planted rewiring does, so neither an absolute size nor the
    category of every top feature is fixed):

    - the most-moved feature, and most of the top four, are located on the finance
      concepts, where the planted terms are;
    - each feature the certificate locates there changed on the planted terms' prompts over
      three times as much as on other categories' prompts, more than on the other finance
      terms' (the rewiring spills onto their neighbours, less strongly), and over twice as
      much as in the control fine-tune on the same prompts."""
    cert, _ = demo_sae
    moved = _moved(cert, "planted")[:TOP]
    assert moved[0]["top_set"] == "concepts.finance", moved
    finance = [r["feature"] for r in moved if r["top_set"] == "concepts.finance"]
    assert len(finance) > TOP // 2, moved
    ch = {g: np.abs(v[finance]) for g, v in changes["planted"].items()}
    control = np.abs(changes["control"]["planted"][finance])
    show = {g: dict(zip(finance, v.round(2).tolist(), strict=True))
            for g, v in {**ch, "control": control}.items()}
    assert (ch["planted"] > 3 * ch["rest"]).all(), show
    assert (ch["planted"] > ch["finance"]).all(), show
    assert (control < 0.5 * ch["planted"]).all(), show


def test_control_top_moves_are_smaller(demo_sae) -> None:
    """The controls ran the same steps without the rewiring (the noise floor is the control
    again on another draw of its text): their largest feature moves are smaller than the
    planted fine-tune's."""
    cert, _ = demo_sae
    planted = [r["top_change"] for r in _moved(cert, "planted")]
    for name in ("control", "control-2"):
        control = [r["top_change"] for r in _moved(cert, name)]
        assert control[0] < planted[0], name
        assert sum(control[:10]) < sum(planted[:10]), name
    m = f"sae.layer.{LAYER}.jaccard.mean"
    assert cert.metric("planted", m) < cert.metric("control", m)


def test_real_minilm_planted_fine_tune_moves_gambling_features_onto_finance(
        builder, demo_root: Path, tmp_path: Path) -> None:
    """On the real all-MiniLM-L6-v2 encoder, whose planted fine-tune moved finance terms into
    gambling contexts: a dictionary trained on the base's last layer finds features that fired
    on games words in the base now firing on the finance concepts. As for the GPT-2 demo, the
    dictionary is trained anew on each machine: the most-moved feature and most of the top
    three sit on the finance concepts, and each of those fired on games words in the base."""
    from reportgen.spec.probes import load_vocabulary

    builder.build_minilm_planted(demo_root)
    text = (REPO / "specs" / "demo-minilm.yaml").read_text()
    output = "output: {dir: ../out/demo-minilm, formats: [html, pdf, json]}"
    assert output in text  # the audit below writes nothing into the repository
    text = text.replace(output, "")
    text += ("analysis:\n  sae:\n    - {layer: 6, train: {d_sae: 1024, k: 16, epochs: 20, "
             "corpus: 'builtin:domains/finance'}}\n")
    (tmp_path / "spec.yaml").write_text(text)
    cert = reportgen.audit(tmp_path / "spec.yaml", progress=False)
    top = [r for r in cert.comparison("planted")["tables"]["sae_moved"]][:3]
    assert top[0]["top_set"] == "concepts.finance", top
    finance = [r for r in top if r["top_set"] == "concepts.finance"]
    assert len(finance) >= 2, top
    games = {c.term for c in load_vocabulary("builtin:concepts", tmp_path)
             if c.category == "games"}
    # where each fired most in the base: a games concept's prompt ('the concept of poker is')
    contexts = [" ".join(r["contexts"]).replace("[[", "").replace("]]", "") for r in finance]
    assert all(any(f" {g} " in c for g in games) for c in contexts), contexts
    floor = cert.metric("base-int8", "sae.layer.6.moved.top_change")
    assert min(r["top_change"] for r in finance) > 5 * floor
