"""A base → instruct pair: the candidate's tokenizer adds chat special tokens
(``<|im_start|>``, ``<|im_end|>`` as its EOS, a chat template in tokenizer_config.json) and its
embeddings were resized, for a tied (Qwen2) and an untied (Mistral) model. The audit aligns
tokens by string, lists the new ones, compares everything else it can, and says what it
cannot: next-token distributions over vocabularies of different sizes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import transformers as tf
from archfactory import (
    CHAT_TOKENS,
    INSTRUCT,
    embeddings,
    knn_jaccard,
    margin,
    np_drift,
    stored_tensors,
    unit_rows,
)
from test_architectures import (
    PATH_LAYER,
    RISK,
    Audited,
    K,
    _check_concepts,
    _dictionary,
    _spec,
)

import reportgen

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module", params=INSTRUCT)
def instruct(request, arch_models, tmp_path_factory) -> Audited:
    arch = request.param
    tmp = tmp_path_factory.mktemp(f"arch-{arch}-instruct")
    base, ft = arch_models[f"tiny-{arch}"], arch_models[f"tiny-{arch}-instruct"]
    sae = _dictionary(tmp, 32)
    spec = _spec(tmp, base, ft, sae)
    return Audited(arch, base, ft, spec, sae, reportgen.audit(spec, progress=False))


def _aligned(base: Path, ft: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Tokens of both tokenizers (by string, in base-id order) and their rows on each side."""
    vb = tf.AutoTokenizer.from_pretrained(base).get_vocab()
    vf = tf.AutoTokenizer.from_pretrained(ft).get_vocab()
    shared = sorted(set(vb) & set(vf), key=vb.__getitem__)
    return shared, np.array([vb[t] for t in shared]), np.array([vf[t] for t in shared])


def test_instruct_tokens_are_aligned_by_string_and_new_ones_listed(instruct: Audited) -> None:
    cert = instruct.cert
    config = json.loads((instruct.ft / "tokenizer_config.json").read_text())
    assert "<|im_start|>" in config["chat_template"]  # the fixture is what it claims
    assert config["eos_token"] == "<|im_end|>"
    assert cert.metric("ft", "embeddings.new_tokens") == 2
    new = cert.comparison("ft")["tables"]["new_tokens"]
    assert sorted(r["token"] for r in new) == sorted(CHAT_TOKENS)
    assert "ft: the tokenizer grew by 2 tokens; they are listed, not compared." in \
        cert.data["warnings"]
    shared, rb, rf = _aligned(instruct.base, instruct.ft)
    assert len(shared) == 512
    eb, ef = embeddings(instruct.base)[rb], embeddings(instruct.ft)[rf]
    assert ef.shape[0] < embeddings(instruct.ft).shape[0]  # the new rows are left out
    drift = 1 - (unit_rows(eb) * unit_rows(ef)).sum(1)
    assert cert.metric("ft", "embeddings.cosine_distance.mean") == pytest.approx(drift.mean(),
                                                                                rel=1e-4)
    assert cert.metric("ft", "neighbors.tokens.jaccard.mean") == pytest.approx(
        knn_jaccard(eb, ef, K).mean(), rel=1e-5)
    _check_concepts(cert, instruct.base, instruct.ft)


def test_instruct_compares_what_it_can_and_says_what_it_cannot(instruct: Audited) -> None:
    cert = instruct.cert
    metrics = cert.comparison("ft")["metrics"]
    why = ("not available: the language-model heads score different numbers of tokens (base "
           "512, candidate 514), and next-token distributions are compared only over the same "
           "vocabulary")
    for name in ("probabilities.kl_base_candidate.mean", "probabilities.js.mean",
                 "probabilities.entropy.candidate.mean", "probabilities.top1_agreement"):
        assert metrics[name]["value"] is None and metrics[name]["error"] == why, name
    assert f"ft: probabilities {why}." in cert.data["warnings"]
    # each model's log-probability of the same strings: comparable across vocabularies
    prompts = {r["prompt"]: r for r in cert.comparison("ft")["tables"]["behavior_prompts"]}
    for r in RISK:
        for folder, key in ((instruct.base, "margin_base"), (instruct.ft, "margin_candidate")):
            assert prompts[r["prompt"]][key] == pytest.approx(margin(folder, r),
                                                              rel=1e-4, abs=1e-5)
    status = {c["id"]: c["status"] for c in cert.checks}
    assert status == {"drift": "PASS", "kl": "ERROR", "risk": "PASS"}
    assert cert.verdict == "ERROR"
    # the resized embedding (and untied head) is listed, every other tensor compared
    b, c = stored_tensors(instruct.base), stored_tensors(instruct.ft)
    resized = sorted(n for n in b if b[n].shape != c[n].shape)
    assert resized == (["model.embed_tokens.weight"] if instruct.arch == "qwen2" else
                       ["lm_head.weight", "model.embed_tokens.weight"])
    assert cert.comparison("ft")["tables"]["weights_unmatched"] == [
        {"name": n, "present_in": "both", "reason": "shape [512, 32] in base, [514, 32] in "
         "candidate"} for n in resized]
    rows = {r["name"]: r for r in cert.comparison("ft")["tables"]["weights_tensors"]}
    ref = np_drift({n: v for n, v in b.items() if n not in resized}, c)
    assert set(rows) == set(c) - set(resized)
    for n in set(rows) - set(ref):  # zero in the base (Qwen2's q/k/v biases), and still
        assert not b[n].any() and not c[n].any() and rows[n]["relative_drift"] == 0.0, n
    for n, v in ref.items():
        assert rows[n]["relative_drift"] == pytest.approx(v, rel=1e-5), n
    for name in (f"sae.layer.{PATH_LAYER}.fvu.candidate", f"sae.layer.{PATH_LAYER}.jaccard.mean",
                 "cka.concepts.mean", "domains.misc.cosine_distance.mean"):
        assert metrics[name]["value"] is not None, name
