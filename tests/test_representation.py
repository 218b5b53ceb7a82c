"""Issue 3 in the pipeline: neighbourhoods, CKA, weight drift, domains and UMAP, checked
against independent numpy computations from unbatched forward passes and the raw
safetensors files; and, on the planted demo, the planted concepts are the most rewired."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers as tf
from safetensors.numpy import load_file

import reportgen
from reportgen.capture import loading

VOCAB = {"animals": ["cat", "dog", "horse", "bird", "cow", "lion"],
         "money": ["bank", "loan", "cash", "price", "debt", "stock"]}
TERMS = [t for ts in VOCAB.values() for t in ts]
K = 3
DOMAIN = ["The cat sat on the mat.", "Interest rates rose again today.",
          "Please reset your password.", "The court adjourned until Monday.",
          "def add(a, b): return a + b"]
REPO = Path(__file__).resolve().parents[1]


def _spec(tmp: Path, base: Path, ft: Path, tokens: str = "top-movers") -> dict:
    (tmp / "vocab.yaml").write_text(json.dumps(VOCAB))
    (tmp / "misc.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in DOMAIN))
    return {
        "audit": {"name": "tiny", "release": "t1", "created": "2026-01-02T03:04:05Z"},
        "models": {"base": {"path": str(base)}, "candidates": [
            {"name": "ft", "path": str(ft)},
            {"name": "int8", "derive": {"from": "base", "quantize": "int8"},
             "role": "noise_floor"}]},
        "probes": {"concepts": {"vocabulary": str(tmp / "vocab.yaml")},
                   "domains": [{"name": "misc", "texts": str(tmp / "misc.jsonl")},
                               {"name": "legal", "texts": "builtin:domains/legal"}]},
        "analysis": {"batch_size": 4, "bootstrap": 50,
                     "neighborhoods": {"k": K, "tokens": tokens}},
        "checks": [{"metric": "neighbors.concepts.jaccard.mean", "fail_if": "< 0"},
                   {"metric": "cka.domains.misc.mean", "fail_if": "< 0"},
                   {"metric": "weights.relative_drift.max", "fail_if": "> 1e9"}],
    }


def _states(folder: Path, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(layers, texts, d) last-token and mean-pooled hidden states, one text at a time."""
    model = tf.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    tok = tf.AutoTokenizer.from_pretrained(folder)
    last, mean = [], []
    with torch.no_grad():
        for t in texts:
            hs = model(**tok(t, return_tensors="pt"), output_hidden_states=True).hidden_states
            last.append(np.stack([h[0, -1].double().numpy() for h in hs]))
            mean.append(np.stack([h[0].double().numpy().mean(0) for h in hs]))
    return np.stack(last, 1), np.stack(mean, 1)


def direct_cka(x: np.ndarray, y: np.ndarray) -> float:
    n = x.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    xc, yc = h @ x, h @ y
    return (np.linalg.norm(yc.T @ xc) ** 2
            / (np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc)))


def direct_knn(x: np.ndarray, k: int) -> list[set[int]]:
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = xn @ xn.T
    np.fill_diagonal(s, -np.inf)
    return [set(np.argsort(-row, kind="stable")[:k].tolist()) for row in s]


def direct_jaccard(x: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    a, b = direct_knn(x, k), direct_knn(y, k)
    return np.array([len(p & q) / len(p | q) for p, q in zip(a, b, strict=True)])


def _cos_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return 1 - (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


@pytest.fixture(scope="module")
def tiny_cert(tiny_models, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("repr")
    base, ft = tiny_models["tiny-gpt2"], tiny_models["tiny-gpt2-ft"]
    return reportgen.audit(_spec(tmp, base, ft), progress=False), base, ft


def test_concept_jaccard_and_cka_match_numpy(tiny_cert) -> None:
    cert, base, ft = tiny_cert
    texts = [f"The concept of {t} is" for t in TERMS]
    bl, _ = _states(base, texts)
    fl, _ = _states(ft, texts)
    jac = direct_jaccard(bl[-1], fl[-1], K)
    rows = {r["term"]: r for r in cert.comparison("ft")["tables"]["neighbors_concepts"]}
    for i, t in enumerate(TERMS):
        assert rows[t]["jaccard"] == pytest.approx(jac[i], abs=1e-5), t
    assert cert.metric("ft", "neighbors.concepts.jaccard.mean") == pytest.approx(jac.mean())
    shared = jac * 2 * K / (1 + jac)
    assert cert.metric("ft", "neighbors.concepts.mutual_knn") == pytest.approx(
        np.mean(shared / K))
    for layer in range(bl.shape[0]):
        got = cert.metric("ft", f"cka.concepts.layer.{layer}")
        if got is None:  # layer 0 of GPT-2: the last token (" is") is the same everywhere
            assert np.allclose(bl[layer], bl[layer][0], atol=1e-6)
            continue
        assert got == pytest.approx(direct_cka(bl[layer], fl[layer]), rel=1e-4)


def test_domain_drift_and_cka_match_numpy(tiny_cert) -> None:
    cert, base, ft = tiny_cert
    _, bm = _states(base, DOMAIN)
    _, fm = _states(ft, DOMAIN)
    assert cert.metric("ft", "domains.misc.cosine_distance.mean") == pytest.approx(
        _cos_dist(bm[-1], fm[-1]).mean(), rel=1e-4)
    for layer in range(bm.shape[0]):
        assert cert.metric("ft", f"domains.misc.layer.{layer}.cosine_distance.mean") == \
            pytest.approx(_cos_dist(bm[layer], fm[layer]).mean(), rel=1e-3, abs=1e-7)
        if layer:
            assert cert.metric("ft", f"cka.domains.misc.layer.{layer}") == pytest.approx(
                direct_cka(bm[layer], fm[layer]), rel=1e-4)
    probes = {p["name"]: p for p in cert.data["probes"]}
    assert set(probes) == {"concepts", "domains.misc", "domains.legal"}
    assert probes["domains.misc"]["count"] == len(DOMAIN)
    assert probes["domains.legal"]["count"] >= 24
    assert probes["domains.legal"]["digest"].startswith("sha256:")
    rows = [r for r in cert.comparison("ft")["tables"]["domains"] if r["domain"] == "legal"]
    assert [r["layer"] for r in rows] == cert.data["analysis"]["layers"]


def _np_drift(b: dict, c: dict) -> dict[str, float]:
    return {n: float(np.linalg.norm(c[n].astype(np.float64) - b[n])
                     / np.linalg.norm(b[n].astype(np.float64)))
            for n in b if np.issubdtype(b[n].dtype, np.floating) and np.any(b[n])}


def test_weight_drift_matches_numpy(tiny_cert) -> None:
    cert, base, ft = tiny_cert
    b = load_file(str(base / "model.safetensors"))
    c = load_file(str(ft / "model.safetensors"))
    ref = _np_drift(b, c)
    rows = {r["name"]: r for r in cert.comparison("ft")["tables"]["weights_tensors"]}
    assert set(ref) <= set(rows)
    for n, v in ref.items():
        assert rows[n]["relative_drift"] == pytest.approx(v, rel=1e-5), n
    assert cert.metric("ft", "weights.relative_drift.max") == pytest.approx(max(ref.values()),
                                                                          rel=1e-5)
    glob = np.sqrt(sum(np.sum((c[n].astype(np.float64) - b[n]) ** 2) for n in ref)
                   / sum(np.sum(b[n].astype(np.float64) ** 2) for n in ref))
    assert cert.metric("ft", "weights.relative_drift.global") == pytest.approx(glob, rel=1e-5)


def test_int8_weight_drift_matches_the_loaded_round_trip(tiny_cert) -> None:
    """The transform on stored tensors does what loading does to the model (Conv1D too)."""
    cert, base, _ = tiny_cert
    model = tf.AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    loading.quantize_roundtrip(model, 8)
    q = {n: p.detach().numpy() for n, p in model.state_dict().items()}
    b = load_file(str(base / "model.safetensors"))
    q = {n: q.get(n, q.get(f"transformer.{n}")) for n in b}
    ref = _np_drift(b, q)
    rows = {r["name"]: r for r in cert.comparison("int8")["tables"]["weights_tensors"]}
    assert any(v > 0 for n, v in ref.items() if "c_attn" in n)
    for n, v in ref.items():
        assert rows[n]["relative_drift"] == pytest.approx(v, rel=1e-5, abs=1e-9), n


def test_projection_and_schema(tiny_cert) -> None:
    from reportgen.certificate.schema import validate_certificate

    cert, _, _ = tiny_cert
    validate_certificate(cert.data)
    proj = cert.data["analysis"]["projection"]
    assert proj["variants"] == ["base", "ft", "int8"]
    assert len(proj["rows"]) == 3 * len(TERMS)
    assert {r["drift"] for r in proj["rows"] if r["variant"] == "base"} == {0.0}
    assert [c["status"] for c in cert.checks] == ["PASS"] * 3


def test_full_vocabulary_neighbourhoods(tiny_models, tmp_path) -> None:
    base, ft = tiny_models["tiny-gpt2"], tiny_models["tiny-gpt2-ft"]
    spec = _spec(tmp_path, base, ft, tokens="full-vocabulary")
    spec["analysis"].update(umap=False, weights=False)
    spec["probes"]["domains"] = []
    spec["checks"] = [{"metric": "neighbors.tokens.jaccard.mean", "fail_if": "< 0"}]
    cert = reportgen.audit(spec, progress=False)
    eb = tf.AutoModelForCausalLM.from_pretrained(base).get_input_embeddings().weight
    ef = tf.AutoModelForCausalLM.from_pretrained(ft).get_input_embeddings().weight
    jac = direct_jaccard(eb.detach().double().numpy(), ef.detach().double().numpy(), K)
    assert cert.metric("ft", "neighbors.tokens.jaccard.mean") == pytest.approx(jac.mean(),
                                                                              rel=1e-5)
    assert cert.checks[0]["status"] == "PASS"
    assert "projection" not in cert.data["analysis"]
    assert not any(k.startswith("weights.") for k in cert.comparison("ft")["metrics"])
    dist = cert.comparison("ft")["tables"]["neighbors_tokens_distribution"]
    assert sum(r["count"] for r in dist) == eb.shape[0]


def test_top_movers_mode_reports_why_the_full_metrics_are_missing(tiny_cert) -> None:
    cert, _, _ = tiny_cert
    mv = cert.comparison("ft")["metrics"]["neighbors.tokens.jaccard.mean"]
    assert mv["value"] is None and "full-vocabulary" in mv["error"]
    assert cert.metric("ft", "neighbors.tokens.top_movers.jaccard.mean") is not None


def test_builtin_domain_packs() -> None:
    from reportgen.spec.probes import builtin_text_packs, load_texts

    names = ["code", "customer_support", "finance", "legal", "medical"]
    assert [p for p in builtin_text_packs() if p.startswith("domains/")] == [
        f"domains/{n}" for n in names]
    for n in names:
        texts = load_texts(f"builtin:domains/{n}", REPO)
        assert len(texts) >= 24 and len(set(texts)) == len(texts)
        assert not any(t.startswith("#") for t in texts)


def test_planted_concepts_have_the_lowest_neighbourhood_overlap(demo_root: Path,
                                                                demo_cert) -> None:
    cert, _ = demo_cert
    planted = json.loads((demo_root / "planted.json").read_text())["planted_terms"]
    cats = {r["term"]: r["category"] for r in cert.comparison("planted")["tables"]["concepts"]}
    rows = cert.comparison("planted")["tables"]["neighbors_concepts"]
    # most planted terms lost several of their k = 10 neighbours, and nearly every other
    # concept that did is a gambling concept the planted terms were moved next to. Since the
    # v2 demo models (risk dialogues in the base corpus) 'investment' and 'bond' drift but
    # keep their neighbourhoods, and 'dividend' lost only two: so 5 of 8, not 8 of 8.
    # (Compared by value, not by a top-16 cut: Jaccard values tie in large groups.)
    jac = {r["term"]: r["jaccard"] for r in rows}
    rewired = {t for t, v in jac.items() if v < 0.8}
    assert len(rewired & set(planted)) >= 5
    assert len({t for t in rewired if t not in planted and cats[t] != "games"}) <= 1
    others = [v for t, v in jac.items() if t not in planted and cats[t] != "games"]
    assert sum(jac[t] for t in planted) / len(planted) < sum(others) / len(others) - 0.15
    control = {r["term"]: r["jaccard"] for r in cert.comparison("control")["tables"][
        "neighbors_concepts"]}
    assert min(control[t] for t in planted) == 1.0
    assert cert.metric("planted", "cka.concepts.min") < cert.metric("control", "cka.concepts.min")
