"""The SAE family end to end on the tiny GPT-2: a dictionary loaded from a SAELens folder and
one trained on the base, checked against computations made here from transformers' states."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers as tf
from test_pipeline import _spec as pipeline_spec

import reportgen
from reportgen.families.sae.metrics import MIN_CE_GAP, ce_gap_problem
from reportgen.sae import SAE, load_sae, save_saelens

DOMAIN = ["The cat sat on the mat.", "A loan is due next week.",
          "Birds fly south in winter.", "Cash is kept in the bank vault overnight."]
LAYER = 1


def _spec(tmp: Path, tiny: dict, sae: dict, family: str = "tiny-gpt2") -> dict:
    (tmp / "domain.txt").write_text("\n".join(DOMAIN) + "\n")
    spec = pipeline_spec(tmp, tiny[family], tiny[f"{family}-ft"])
    spec["probes"]["domains"] = [{"name": "mixed", "texts": str(tmp / "domain.txt")}]
    spec["probes"]["risk"] = [{"name": "fin", "prompts": "builtin:risk/financial_advice"}]
    spec["analysis"].update(umap=False, weights=False, bootstrap=50, sae=[{"layer": LAYER, **sae}])
    return spec


@pytest.fixture(scope="session")
def path_audit(tiny_models, tmp_path_factory) -> tuple[reportgen.Certificate, Path, dict]:
    tmp = tmp_path_factory.mktemp("sae-path")
    g = torch.Generator().manual_seed(3)
    sae = SAE("topk", torch.randn(32, 48, generator=g) / 4, torch.randn(48, 32, generator=g),
              torch.randn(32, generator=g) / 10, b_enc=torch.randn(48, generator=g) / 10, k=5)
    folder = save_saelens(sae, tmp / "sae", hook_name="blocks.1.hook_resid_post")
    (tmp / "labels.json").write_text(json.dumps({"0": "feature zero"}))
    spec = _spec(tmp, tiny_models, {"path": str(folder), "labels": str(tmp / "labels.json")})
    return reportgen.audit(spec, progress=False), folder, spec


@pytest.fixture(scope="session")
def trained_audit(tiny_models, tmp_path_factory) -> reportgen.Certificate:
    tmp = tmp_path_factory.mktemp("sae-train")
    spec = _spec(tmp, tiny_models, {"train": {"d_sae": 64, "k": 4, "epochs": 5}})
    return reportgen.audit(spec, progress=False)


def _texts(spec: dict) -> list[str]:
    from reportgen.spec.load import load_spec
    from reportgen.spec.probeset import build_probes

    return build_probes(load_spec(spec)).all_texts


def _states(folder: Path, texts: list[str]) -> tuple[np.ndarray, list[int]]:
    """Layer-LAYER states of every token, text by text (no batching, no padding)."""
    model = tf.AutoModelForCausalLM.from_pretrained(folder).eval()
    tok = tf.AutoTokenizer.from_pretrained(folder)
    out, lens = [], []
    with torch.no_grad():
        for t in texts:
            hs = model(**tok(t, return_tensors="pt"), output_hidden_states=True).hidden_states
            out.append(hs[LAYER][0].double().numpy())
            lens.append(out[-1].shape[0])
    return np.concatenate(out), lens


def _encode(folder: Path, x: np.ndarray) -> np.ndarray:
    """TopK encoder by its published formula: topk(relu((x - b_dec) W_enc + b_enc))."""
    from safetensors.numpy import load_file

    w = load_file(folder / "sae_weights.safetensors")
    pre = np.maximum((x - w["b_dec"]) @ w["W_enc"] + w["b_enc"], 0)
    keep = np.argsort(-pre, axis=1)[:, :5]
    f = np.zeros_like(pre)
    np.put_along_axis(f, keep, np.take_along_axis(pre, keep, 1), 1)
    return f


def test_path_dictionary_metrics_match_independent_computation(path_audit, tiny_models):
    cert, folder, spec = path_audit
    texts = _texts(spec)
    xb, _ = _states(tiny_models["tiny-gpt2"], texts)
    xc, _ = _states(tiny_models["tiny-gpt2-ft"], texts)
    fb, fc = _encode(folder, xb), _encode(folder, xc)
    w = load_sae(folder)
    rb = w.decode(torch.from_numpy(fb).float()).double().numpy()
    fvu = ((xb - rb) ** 2).sum() / ((xb - xb.mean(0)) ** 2).sum()
    p = f"sae.layer.{LAYER}"
    assert cert.metric("ft", f"{p}.fvu.base") == pytest.approx(fvu, rel=1e-3)
    a, b = fb != 0, fc != 0
    jac = ((a & b).sum(1) / (a | b).sum(1)).mean()
    assert cert.metric("ft", f"{p}.jaccard.mean") == pytest.approx(jac, abs=2e-3)
    cos = ((xb * xc).sum(1) / np.linalg.norm(xb, axis=1) / np.linalg.norm(xc, axis=1)).mean()
    # float16 storage of the raw activations moves the dense cosine by far less than 1e-4
    assert cert.metric("ft", f"{p}.dense_cosine.mean") == pytest.approx(cos, abs=1e-4)
    assert cert.metric("ft", f"{p}.l0.base") == pytest.approx(5.0)
    moved = cert.comparison("ft")["tables"]["sae_moved"]
    np.testing.assert_allclose(
        [r["top_change"] for r in moved], _set_scores(tiny_models, spec, fb, fc)[
            [r["feature"] for r in moved]], rtol=1e-3, atol=1e-4)
    assert [r["top_change"] for r in moved] == sorted((r["top_change"] for r in moved),
                                                     reverse=True)
    assert cert.metric("ft", f"{p}.moved.top_change") == pytest.approx(moved[0]["top_change"])
    if any(r["feature"] == 0 for r in moved):
        assert next(r for r in moved if r["feature"] == 0)["label"] == "feature zero"


def _set_scores(tiny_models: dict, spec: dict, fb: np.ndarray, fc: np.ndarray) -> np.ndarray:
    """Each feature's largest |mean change| over the probe sets, counting in a set only the
    tokens whose whole prefix occurs in one text alone (a causal LM's activation depends on
    the prefix only, so a shared template opening belongs to no concept)."""
    from reportgen.families.sae.metrics import MIN_SET_ROWS
    from reportgen.spec.load import load_spec
    from reportgen.spec.probeset import build_probes

    probe = build_probes(load_spec(spec))
    tok = tf.AutoTokenizer.from_pretrained(tiny_models["tiny-gpt2"])
    ids = [tok(t)["input_ids"] for t in probe.all_texts]
    texts_with: dict[tuple[int, ...], set[int]] = {}
    for r, seq in enumerate(ids):
        for i in range(len(seq)):
            texts_with.setdefault(tuple(seq[:i + 1]), set()).add(r)
    own = np.array([len(texts_with[tuple(seq[:i + 1])]) == 1
                    for seq in ids for i in range(len(seq))])
    row = np.repeat(np.arange(len(ids)), [len(s) for s in ids])
    sets = [range(s.start, s.stop) for s in probe.slices().values()]
    cats = np.array(probe.categories)
    sets += [np.flatnonzero(cats == c) for c in set(probe.categories)]
    masks = [np.isin(row, list(s)) & own for s in sets]
    d = fc - fb
    return np.max([np.abs(d[mk].mean(0)) for mk in masks if mk.sum() >= MIN_SET_ROWS], axis=0)


def _ce(model, tok, texts: list[str], replace) -> float:
    """Token-weighted next-token CE with block LAYER's output replaced, text by text."""
    total, n = 0.0, 0
    block = model.transformer.h[LAYER - 1]

    def hook(_m, _a, out):
        return (replace(out[0]), *out[1:]) if isinstance(out, tuple) else replace(out)

    h = block.register_forward_hook(hook) if replace else None
    with torch.no_grad():
        for t in texts:
            ids = tok(t, return_tensors="pt")["input_ids"]
            logits = model(input_ids=ids).logits[0, :-1]
            total += float(torch.nn.functional.cross_entropy(logits, ids[0, 1:], reduction="sum"))
            n += ids.shape[1] - 1
    if h:
        h.remove()
    return total / n


def test_ce_recovered_matches_hand_computation(path_audit, tiny_models):
    cert, folder, _ = path_audit
    sae = load_sae(folder)
    model = tf.AutoModelForCausalLM.from_pretrained(tiny_models["tiny-gpt2"]).eval()
    tok = tf.AutoTokenizer.from_pretrained(tiny_models["tiny-gpt2"])
    clean = _ce(model, tok, DOMAIN, None)
    spliced = _ce(model, tok, DOMAIN, lambda h: sae.reconstruct(h[0]).unsqueeze(0))
    zero = _ce(model, tok, DOMAIN, torch.zeros_like)
    row = cert.comparison("ft")["tables"]["sae_fit"][0]
    assert row["ce_clean_base"] == pytest.approx(clean, rel=1e-4)
    assert row["ce_sae_base"] == pytest.approx(spliced, rel=1e-4)
    assert row["ce_zero_base"] == pytest.approx(zero, rel=1e-4)
    # the tiny model is untrained: zero-ablating a layer barely moves its loss (~0.01 nats),
    # so the ratio would divide by noise and is reported as not available, with why
    assert zero - clean < MIN_CE_GAP
    mv = cert.comparison("ft")["metrics"][f"sae.layer.{LAYER}.ce_recovered.base"]
    assert mv["value"] is None
    assert mv["error"] == ce_gap_problem(clean, zero).replace(
        f"{zero - clean:.3g}", f"{row['ce_zero_base'] - row['ce_clean_base']:.3g}")


def test_trained_dictionary_is_shared_and_certificate_answers(trained_audit, tmp_path):
    cert = trained_audit
    info = cert.data["analysis"]["sae"]["layers"][str(LAYER)]
    assert info["origin"] == "trained" and info["d_sae"] == 64 and info["train"]["k"] == 4
    assert "hidden_states[L]" in cert.data["analysis"]["sae"]["hook_point"]
    assert cert.metric("ft", f"sae.layer.{LAYER}.l0.candidate") == pytest.approx(4.0)
    fvu = cert.metric("ft", f"sae.layer.{LAYER}.fvu.base")
    assert 0 < fvu < 1
    risky = cert.risky_features(3)
    assert risky == sorted(risky, key=lambda r: -r["rise"]) and len(risky) <= 3
    cert.save(tmp_path, ["json", "html"])
    # the trained dictionary is written beside the certificate, byte for byte what was used
    from reportgen.families.sae.sources import folder_digest

    folder = tmp_path / info["saved_as"]
    assert info["saved_as"] == f"trained-sae/layer{LAYER}"
    assert sorted(p.name for p in folder.iterdir()) == ["cfg.json", "sae_weights.safetensors"]
    assert folder_digest(folder) == info["dictionary_digest"]
    assert load_sae(folder).d_sae == 64
    (folder / "notes.txt").write_text("the user's own file")
    cert.save(tmp_path, ["json"])  # a second save replaces only the files it wrote
    assert (folder / "notes.txt").read_text() == "the user's own file"
    (folder / "notes.txt").unlink()
    assert folder_digest(folder) == info["dictionary_digest"]
    from reportgen.release.archive import add

    added = add(tmp_path / "archive", tmp_path)
    filed = added.path / info["saved_as"]
    assert folder_digest(filed) == info["dictionary_digest"]  # the archive keeps it too
    assert added.missing == []
    from reportgen.cli.commands import main

    # re-rendered elsewhere from the JSON alone, the certificate takes its dictionary along
    assert main(["render", str(tmp_path), "--out", str(tmp_path / "again"),
                 "--formats", "json"]) == 0
    assert folder_digest(tmp_path / "again" / info["saved_as"]) == info["dictionary_digest"]
    import shutil

    shutil.rmtree(tmp_path / "again" / "trained-sae")  # filed without it, and said so
    assert add(tmp_path / "archive2", tmp_path / "again").missing == [
        f"{info['saved_as']}/cfg.json", f"{info['saved_as']}/sae_weights.safetensors"]
    loaded = reportgen.Certificate.from_json(tmp_path)
    assert loaded.risky_features(3) == risky
    spec = loaded.drift_heatmap(LAYER, "ft").to_dict()
    assert spec["mark"]["type"] == "rect" and spec["data"]["values"]
    from reportgen.certificate.schema import certificate_problems

    assert certificate_problems(cert.data) == []
    html = (tmp_path / "certificate.html").read_text()
    assert "Sparse features (SAE)" in html
    # the trained dictionary's limits are stated, in the limitations and in the SAE section
    assert html.count("A sparse dictionary trained here learns") == 2


def test_trained_dictionary_is_deterministic(trained_audit, tiny_models, tmp_path, monkeypatch):
    monkeypatch.setenv("REPORTGEN_CACHE", str(tmp_path / "fresh-cache"))
    spec = _spec(tmp_path, tiny_models, {"train": {"d_sae": 64, "k": 4, "epochs": 5}})
    again = reportgen.audit(spec, progress=False)
    # the spec names other temporary paths; every measured number must be the same
    assert again.data["comparisons"] == trained_audit.data["comparisons"]
    assert again.data["analysis"]["sae"] == trained_audit.data["analysis"]["sae"]
    assert math.isfinite(again.metric("ft", f"sae.layer.{LAYER}.jaccard.mean"))


def test_encoder_ranks_moved_features_over_every_token(tiny_models, tmp_path) -> None:
    """A masked LM sees both sides of every token, so no token is a shared context: each
    probe set's change is its mean over all of its tokens (special tokens included)."""
    from reportgen.families.sae.metrics import MIN_SET_ROWS
    from reportgen.spec.load import load_spec
    from reportgen.spec.probeset import build_probes

    folder = tiny_models["tiny-distilbert"]
    d = json.loads((folder / "config.json").read_text())["dim"]
    g = torch.Generator().manual_seed(5)
    sae = SAE("topk", torch.randn(d, 48, generator=g) / 4, torch.randn(48, d, generator=g),
              torch.randn(d, generator=g) / 10, b_enc=torch.randn(48, generator=g) / 10, k=5)
    path = save_saelens(sae, tmp_path / "sae", hook_name="blocks.1.hook_resid_post")
    spec = _spec(tmp_path, tiny_models, {"path": str(path)}, family="tiny-distilbert")
    cert = reportgen.audit(spec, progress=False)
    probe = build_probes(load_spec(spec))
    codes = {}
    for m in ("tiny-distilbert", "tiny-distilbert-ft"):
        model = tf.AutoModel.from_pretrained(tiny_models[m]).eval()
        tok = tf.AutoTokenizer.from_pretrained(tiny_models[m])
        with torch.no_grad():
            states = [model(**tok(t, return_tensors="pt"), output_hidden_states=True)
                      .hidden_states[LAYER][0].double().numpy() for t in probe.all_texts]
        lens = [len(x) for x in states]
        codes[m] = _encode(path, np.concatenate(states))
    row = np.repeat(np.arange(len(lens)), lens)
    cats = np.array(probe.categories)
    sets = [np.isin(row, range(s.start, s.stop)) for s in probe.slices().values()]
    sets += [np.isin(row, np.flatnonzero(cats == c)) for c in set(probe.categories)]
    delta = codes["tiny-distilbert-ft"] - codes["tiny-distilbert"]
    want = np.max([np.abs(delta[s].mean(0)) for s in sets if s.sum() >= MIN_SET_ROWS], axis=0)
    moved = cert.comparison("ft")["tables"]["sae_moved"]
    assert moved and moved[0]["feature"] == int(np.argmax(want))
    # contexts read as text: word pieces joined to their words, words apart
    contexts = [c.replace("[[", "").replace("]]", "") for r in moved for c in r["contexts"]]
    assert contexts and not any("##" in c for c in contexts)
    assert any(" " in c for c in contexts), contexts
    np.testing.assert_allclose([r["top_change"] for r in moved],
                               want[[r["feature"] for r in moved]], rtol=1e-3, atol=1e-4)
