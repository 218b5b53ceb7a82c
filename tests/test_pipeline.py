"""The whole audit on tiny models, checked against an unbatched transformers computation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers as tf
from scipy.spatial.distance import cosine

import reportgen
from reportgen.capture import loading

VOCAB = {"animals": ["cat", "dog", "horse", "bird"], "money": ["bank", "loan", "cash", "price"]}


def _spec(tmp: Path, base: Path, ft: Path, **checks_kw) -> dict:
    (tmp / "vocab.yaml").write_text(json.dumps(VOCAB))
    return {
        "audit": {"name": "tiny", "release": "t1", "created": "2026-01-02T03:04:05Z"},
        "models": {
            "base": {"path": str(base)},
            "candidates": [
                {"name": "ft", "path": str(ft)},
                {"name": "int8", "derive": {"from": "base", "quantize": "int8"},
                 "role": "noise_floor"},
            ],
        },
        "probes": {"concepts": {"vocabulary": str(tmp / "vocab.yaml"),
                                "template": "The concept of {term} is"}},
        "analysis": {"batch_size": 3, "bootstrap": 100},
        "checks": checks_kw.get("checks", [
            {"id": "drift", "metric": "concepts.cosine_distance.mean", "candidate": "ft",
             "fail_if": "> 100", "warn_if": "> 0"},
        ]),
    }


def _unbatched_last_token(folder: Path, texts: list[str], cls) -> np.ndarray:
    model = cls.from_pretrained(folder, dtype=torch.float32).eval()
    tok = tf.AutoTokenizer.from_pretrained(folder)
    out = []
    with torch.no_grad():
        for t in texts:
            enc = tok(t, return_tensors="pt")
            hs = model(**enc, output_hidden_states=True).hidden_states
            out.append(hs[-1][0, -1].double().numpy())
    return np.stack(out)


@pytest.mark.parametrize("kind,cls", [
    ("gpt2", tf.AutoModelForCausalLM), ("distilbert", tf.AutoModelForMaskedLM),
])
def test_audit_matches_independent_computation(tiny_models, tmp_path, kind, cls) -> None:
    base, ft = tiny_models[f"tiny-{kind}"], tiny_models[f"tiny-{kind}-ft"]
    cert = reportgen.audit(_spec(tmp_path, base, ft), progress=False)
    expected_kind = "causal-lm" if kind == "gpt2" else "masked-lm"
    assert [m["kind"] for m in cert.data["models"]] == [expected_kind] * 3
    terms = [t for ts in VOCAB.values() for t in ts]
    texts = [f"The concept of {t} is" for t in terms]
    b = _unbatched_last_token(base, texts, cls)
    f = _unbatched_last_token(ft, texts, cls)
    ref = {t: cosine(b[i], f[i]) for i, t in enumerate(terms)}
    rows = {r["term"]: r for r in cert.comparison("ft")["tables"]["concepts"]}
    for t in terms:
        assert rows[t]["cosine_distance"] == pytest.approx(ref[t], rel=1e-3, abs=1e-6)
    mean = cert.metric("ft", "concepts.cosine_distance.mean")
    assert mean == pytest.approx(np.mean(list(ref.values())), rel=1e-3)
    assert cert.verdict == "WARN"
    assert cert.checks[0]["status"] == "WARN"


def test_token_drift_matches_embedding_rows(tiny_models, tmp_path) -> None:
    base, ft = tiny_models["tiny-gpt2"], tiny_models["tiny-gpt2-ft"]
    cert = reportgen.audit(_spec(tmp_path, base, ft), progress=False)
    eb = tf.AutoModelForCausalLM.from_pretrained(base).get_input_embeddings().weight
    ef = tf.AutoModelForCausalLM.from_pretrained(ft).get_input_embeddings().weight
    eb, ef = eb.detach().double().numpy(), ef.detach().double().numpy()
    ref = 1 - (eb * ef).sum(1) / (np.linalg.norm(eb, axis=1) * np.linalg.norm(ef, axis=1))
    got = cert.metric("ft", "embeddings.cosine_distance.mean")
    assert got == pytest.approx(ref.mean(), rel=1e-4)
    top = cert.comparison("ft")["tables"]["tokens"][0]
    assert top["cosine_distance"] == pytest.approx(ref.max(), rel=1e-4)
    # the int8 noise floor moved, and ratios are formed against it
    assert cert.metric("int8", "embeddings.cosine_distance.mean") > 0
    ratio = cert.metric("ft", "embeddings.cosine_distance.noise_floor_ratio")
    assert ratio == pytest.approx(got / cert.metric("int8", "embeddings.cosine_distance.mean"),
                                  rel=1e-3)


def test_certificate_is_valid_and_byte_identical(tiny_models, tmp_path) -> None:
    from reportgen.certificate.schema import validate_certificate

    spec = _spec(tmp_path, tiny_models["tiny-gpt2"], tiny_models["tiny-gpt2-ft"])
    a = reportgen.audit(spec, progress=False)
    b = reportgen.audit(spec, progress=False)
    validate_certificate(a.data)
    assert a.to_json() == b.to_json()
    assert a.data["audit"]["created"] == "2026-01-02T03:04:05Z"
    models = {m["name"]: m for m in a.data["models"]}
    assert models["int8"]["derived_from"] == "base"
    assert models["int8"]["digest"]["root"] != models["base"]["digest"]["root"]


def test_second_audit_runs_no_forward_pass(tiny_models, tmp_path, monkeypatch) -> None:
    spec = _spec(tmp_path, tiny_models["tiny-gpt2"], tiny_models["tiny-gpt2-ft"])
    reportgen.audit(spec, progress=False)

    def no_loading(*a, **k):
        raise AssertionError("a model was loaded although every capture was cached")

    monkeypatch.setattr(loading, "load", no_loading)
    spec["checks"][0]["fail_if"] = "> 0"
    cert = reportgen.audit(spec, progress=False)
    assert cert.verdict == "FAIL"


def test_check_without_candidate_applies_to_every_candidate(tiny_models, tmp_path) -> None:
    spec = _spec(tmp_path, tiny_models["tiny-gpt2"], tiny_models["tiny-gpt2-ft"], checks=[
        {"metric": "concepts.cosine_distance.noise_floor_ratio", "fail_if": "> 1e9"},
        {"id": "floor", "metric": "concepts.cosine_distance.noise_floor_ratio",
         "candidate": "int8", "fail_if": "> 1"},
    ])
    cert = reportgen.audit(spec, progress=False)
    first = [c for c in cert.checks if c["id"] == "concepts.cosine_distance.noise_floor_ratio"]
    assert [c["candidate"] for c in first] == ["ft"]  # the noise floor is not a candidate
    floor = [c for c in cert.checks if c["id"] == "floor"][0]
    assert floor["status"] == "ERROR"
    assert floor["message"] == (
        "concepts.cosine_distance.noise_floor_ratio could not be computed: "
        "int8 is the noise floor itself")
    assert cert.verdict == "ERROR"
    share = cert.comparison("int8")["metrics"]["concepts.share_above_noise_floor_10x"]
    assert share["value"] is None and share["error"] == "int8 is the noise floor itself"
