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
    CHAT_TEMPLATE,
    CHAT_TOKENS,
    INSTRUCT,
    chat_ids,
    chat_text,
    embeddings,
    knn_jaccard,
    load,
    logits,
    margin,
    margin_ids,
    np_drift,
    stored_tensors,
    unit_rows,
)
from scipy.special import log_softmax
from test_architectures import (
    PATH_LAYER,
    RISK,
    Audited,
    K,
    _check_concepts,
    _dictionary,
    _spec,
)
from test_probabilities_pipeline import _scipy

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


# ------------------------------------------------------------------------ chat templates


def _chat_spec(tmp: Path, base: Path, ft: Path, setting: object) -> dict:
    """Risk prompts only (the families they feed: probabilities, behaviour, domains-free)."""
    (tmp / "risk.jsonl").write_text("".join(json.dumps(r) + "\n" for r in RISK))
    return {"audit": {"name": "chat", "created": "2026-01-02T03:04:05Z"},
            "models": {"base": {"path": str(base)}, "candidates": [{"name": "ft",
                                                                     "path": str(ft)}]},
            "probes": {"risk": [{"name": "advice", "prompts": str(tmp / "risk.jsonl")}],
                       "chat_template": setting},
            "analysis": {"batch_size": 4, "bootstrap": 10, "max_length": 64, "weights": False,
                         "umap": False, "behavior": {"greedy_prompts": 0}}}


@pytest.fixture(scope="module", params=INSTRUCT)
def chat(request, arch_models, tmp_path_factory) -> Audited:
    """Base → instruct, risk prompts rendered through the instruct model's template."""
    arch = request.param
    tmp = tmp_path_factory.mktemp(f"chat-{arch}")
    base, ft = arch_models[f"tiny-{arch}"], arch_models[f"tiny-{arch}-instruct"]
    spec = _chat_spec(tmp, base, ft, True)
    return Audited(arch, base, ft, spec, tmp, reportgen.audit(spec, progress=False))


def test_chat_margins_are_scored_after_the_assistant_prefix(chat: Audited) -> None:
    """The instruct model reads transformers' own apply_chat_template ids; the base reads the
    same rendered text through its own tokenizer; both score the continuation after it."""
    tb, tf_ = load(chat.base)[1], load(chat.ft)[1]
    prompts = {r["prompt"]: r for r in chat.cert.comparison("ft")["tables"]["behavior_prompts"]}
    assert len(prompts) == len(RISK)
    for r in RISK:
        text = chat_text(chat.ft, r["prompt"])
        row = prompts[text]  # the table shows the text that was scored
        ids = chat_ids(chat.ft, r["prompt"])
        prefix = tf_("<|im_start|>assistant\n", add_special_tokens=False)["input_ids"]
        assert ids[-len(prefix):] == prefix
        assert row["margin_candidate"] == pytest.approx(margin_ids(
            chat.ft, ids, r, lambda c, t=text: tf_(t + c)["input_ids"]), rel=1e-4, abs=1e-5)
        assert row["margin_base"] == pytest.approx(margin_ids(
            chat.base, tb(text)["input_ids"], r, lambda c, t=text: tb(t + c)["input_ids"]),
            rel=1e-4, abs=1e-5)
        assert row["margin_candidate"] != pytest.approx(margin(chat.ft, r), abs=1e-3)


def test_chat_template_is_recorded_and_shown(chat: Audited) -> None:
    from hashlib import sha256

    info = next(p for p in chat.cert.data["probes"] if p["name"] == "risk.advice")
    config = json.loads((chat.ft / "tokenizer_config.json").read_text())
    assert info["details"]["chat_template"] == {
        "model": "ft", "file": "tokenizer_config.json",
        "sha256": sha256(config["chat_template"].encode()).hexdigest()}
    assert chat.cert.data["spec"]["content"]["probes"]["chat_template"] is True
    from reportgen.views.html import render_html

    page = render_html(chat.cert)
    assert "risk.advice: prompts rendered as a user turn through the chat template of ft " \
        f"(tokenizer_config.json, sha256 {info['details']['chat_template']['sha256'][:12]}" in page
    # both places a template can live are part of the model's digest
    from reportgen.spec.digest import is_ignored, list_files

    assert "tokenizer_config.json" in list_files(chat.ft)
    assert not is_ignored("chat_template.jinja") and not is_ignored("tokenizer_config.json")


def test_chat_probabilities_match_the_templated_text(arch_models, tmp_path) -> None:
    """Same vocabulary (a fine-tune given a ChatML template over its own tokens): KL, JS,
    entropy and top-1 agreement over the rendered prompts, from the models' own logits."""
    import shutil

    base, ft = arch_models["tiny-qwen2"], tmp_path / "ft-chat"
    shutil.copytree(arch_models["tiny-qwen2-ft"], ft)
    cfg = json.loads((ft / "tokenizer_config.json").read_text())
    (ft / "tokenizer_config.json").write_text(json.dumps({**cfg, "chat_template":
                                                          CHAT_TEMPLATE}))
    cert = reportgen.audit(_chat_spec(tmp_path, base, ft, "auto"), progress=False)
    rows = {r["probe_set"]: r for r in cert.comparison("ft")["tables"]["probabilities_probe_sets"]}
    ids = [chat_ids(ft, r["prompt"]) for r in RISK]
    assert [load(base)[1](chat_text(ft, r["prompt"]))["input_ids"] for r in RISK] == ids
    lb, lf = (np.concatenate([log_softmax(logits(f, i), axis=-1) for i in ids])
              for f in (base, ft))
    assert rows["risk.advice"]["positions"] == len(lb)
    for key, want in _scipy(lb, lf).items():
        assert rows["risk.advice"][key] == pytest.approx(want, rel=1e-3, abs=1e-6), key


def test_chat_template_false_scores_raw_text(arch_models, tmp_path) -> None:
    base, ft = arch_models["tiny-qwen2"], arch_models["tiny-qwen2-instruct"]
    spec = _chat_spec(tmp_path, base, ft, False)
    cert = reportgen.audit(spec, progress=False)
    assert "chat_template" not in cert.data["spec"]["content"]["probes"]  # digest unchanged
    info = next(p for p in cert.data["probes"] if p["name"] == "risk.advice")
    assert "chat_template" not in info["details"]
    prompts = {r["prompt"]: r for r in cert.comparison("ft")["tables"]["behavior_prompts"]}
    for r in RISK:
        assert prompts[r["prompt"]]["margin_candidate"] == pytest.approx(
            margin(ft, r), rel=1e-4, abs=1e-5)


def test_validate_refuses_true_without_a_template(arch_models, tmp_path) -> None:
    from reportgen.core.errors import SpecError
    from reportgen.spec.load import load_spec

    spec = _chat_spec(tmp_path, arch_models["tiny-qwen2"], arch_models["tiny-qwen2-ft"], True)
    with pytest.raises(SpecError) as e:
        load_spec(spec, models=True)
    assert str(e.value) == (
        "<dict>: probes.chat_template: true, but no model has a chat template ('base', 'ft': "
        "no chat_template.jinja and no chat_template in tokenizer_config.json)")


def test_validate_names_the_template_and_refuses_one_it_cannot_reproduce(
        arch_models, tmp_path, capsys) -> None:
    """A template without the BOS its tokenizer adds: the text would be read with a BOS the
    template's own ids lack, so it is refused, in one line, exit 2."""
    import shutil
    from hashlib import sha256

    from reportgen.cli import main

    ft = arch_models["tiny-mistral-instruct"]
    spec = _chat_spec(tmp_path, arch_models["tiny-mistral"], ft, "auto")
    (tmp_path / "spec.yaml").write_text(json.dumps(spec))
    assert main(["validate", str(tmp_path / "spec.yaml")]) == 0
    digest = sha256(json.loads((ft / "tokenizer_config.json").read_text())[
        "chat_template"].encode()).hexdigest()
    assert capsys.readouterr().out.splitlines()[0] == (
        f"risk prompts: rendered through the chat template of 'ft' (tokenizer_config.json, "
        f"sha256 {digest[:12]}…)")
    odd = tmp_path / "odd"
    shutil.copytree(ft, odd)
    cfg = json.loads((odd / "tokenizer_config.json").read_text())
    cfg["chat_template"] = CHAT_TEMPLATE.removeprefix("{{ bos_token }}")
    (odd / "tokenizer_config.json").write_text(json.dumps(cfg))
    spec["models"]["candidates"][0]["path"] = str(odd)
    (tmp_path / "spec.yaml").write_text(json.dumps(spec))
    assert main(["validate", str(tmp_path / "spec.yaml")]) == 2
    assert capsys.readouterr().err == (
        f"error: {tmp_path / 'spec.yaml'}: probes.risk[0].prompts: the chat template of 'ft' "
        "renders a prompt that its tokenizer does not read back as the template's tokens "
        "(prompt 'User: Which stock should I buy?\\nAssistan'); the prompts cannot be scored "
        "as the model reads them\n")


def test_validate_refuses_true_on_a_masked_lm(tiny_models, tmp_path) -> None:
    from reportgen.core.errors import SpecError
    from reportgen.spec.load import load_spec

    spec = _chat_spec(tmp_path, tiny_models["tiny-distilbert"], tiny_models["tiny-distilbert-ft"],
                      True)
    with pytest.raises(SpecError) as e:
        load_spec(spec, models=True)
    assert str(e.value) == ("<dict>: probes.chat_template: true, but 'base' is a masked-lm; chat "
                            "templates apply to decoders (causal LMs)")
    spec["probes"]["chat_template"] = "auto"  # auto: raw text, no problem
    assert load_spec(spec, models=True).facts.chat is None


def test_a_candidate_with_another_template_is_named_in_a_warning(arch_models, tmp_path) -> None:
    """One template renders every model's prompts: a candidate whose own template differs
    reads them in a format it was not tuned for, and the certificate's warnings say so."""
    import shutil

    from reportgen.spec.load import load_spec

    base, ft = arch_models["tiny-qwen2"], arch_models["tiny-qwen2-instruct"]
    other = tmp_path / "other"
    shutil.copytree(ft, other)
    cfg = json.loads((other / "tokenizer_config.json").read_text())
    (other / "tokenizer_config.json").write_text(json.dumps(
        {**cfg, "chat_template": cfg["chat_template"].replace("<|im_start|>", "<|im_start|> ")}))
    spec = _chat_spec(tmp_path, base, ft, True)
    same = load_spec(spec, models=True).facts.warnings
    assert not [w for w in same if "chat_template" in w]  # base has none: no warning
    spec["models"]["candidates"].append({"name": "other", "path": str(other)})
    assert [w for w in load_spec(spec, models=True).facts.warnings if "chat_template" in w] == [
        "probes.chat_template: the risk prompts are rendered through the chat template of "
        "'ft' for every model, but 'other' has a different one of its own; it reads the "
        "prompts in a format it was not tuned for"]
