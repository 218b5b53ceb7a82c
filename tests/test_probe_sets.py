"""Specs without concept probes: only the families whose probes are there are measured.

A domains-only and a risk-only audit on the tiny GPT-2: the concept families are absent (no
metric, no table, no section, no "not available" noise), the rest runs, its next-token and
behaviour numbers are those of the same texts read beside concepts (and those of the HF
model's own logits), and every view renders without an empty section.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from test_probabilities_pipeline import DOMAIN, RISK, _causal_lp, _causal_margin, _scipy

import reportgen
from reportgen.certificate.schema import validate_certificate
from reportgen.cli.commands import main
from reportgen.core.errors import SpecError
from reportgen.release.write import render_outputs
from reportgen.spec.load import load_spec

VOCAB = {"animals": ["cat", "dog", "horse", "bird"], "money": ["bank", "loan", "cash", "price"]}
#: metric-name prefixes of the families that need concept probes
CONCEPT_FAMILIES = ("concepts.", "neighbors.concepts.", "cka.concepts.")
#: what the concept families write on a page (the glossary defines these words for every audit)
CONCEPT_WORDS = (r"concept (drift|explorer|neighbourhood|representation)|most-moved concepts|"
                 r"UMAP|prompt template|term tokens")
CONCEPT_TABLES = {"concepts", "categories", "layers", "concept_layers", "neighbors_concepts",
                  "rewired_concepts", "neighbors_concepts_distribution", "cka"}


def _spec(tmp: Path, base: Path, ft: Path, probes: dict, **analysis) -> dict:
    (tmp / "vocab.yaml").write_text(json.dumps(VOCAB))
    (tmp / "domain.txt").write_text("\n".join(DOMAIN) + "\n")
    (tmp / "risk.jsonl").write_text("".join(json.dumps(r) + "\n" for r in RISK))
    sets = {"concepts": {"vocabulary": str(tmp / "vocab.yaml")},
            "domains": [{"name": "mixed", "texts": str(tmp / "domain.txt")}],
            "risk": [{"name": "advice", "prompts": str(tmp / "risk.jsonl")}]}
    return {
        "audit": {"name": "probe sets", "release": "t1", "created": "2026-01-02T03:04:05Z"},
        "models": {"base": {"path": str(base)}, "candidates": [
            {"name": "ft", "path": str(ft)},
            {"name": "int8", "derive": {"from": "base", "quantize": "int8"},
             "role": "noise_floor"}]},
        "probes": {k: sets[k] for k in probes},
        "analysis": {"bootstrap": 50, "max_length": 48, "neighborhoods": {"k": 3},
                     "behavior": {"greedy_prompts": 1, "max_new_tokens": 4}, **analysis},
        "checks": [{"id": "kl", "metric": "probabilities.kl_base_candidate.mean",
                    "candidate": "ft", "fail_if": "> 1"}],
    }


@pytest.fixture(scope="module")
def audits(tiny_models, tmp_path_factory) -> dict[str, reportgen.Certificate]:
    tmp = tmp_path_factory.mktemp("probe-sets")
    base, ft = tiny_models["tiny-gpt2"], tiny_models["tiny-gpt2-ft"]
    sae = [{"layer": 1, "train": {"d_sae": 32, "k": 4, "epochs": 1}}]
    runs = {"domains": (["domains"], {"sae": sae}), "risk": (["risk"], {}),
            "concepts+domains": (["concepts", "domains"], {}),
            "concepts+risk": (["concepts", "risk"], {})}
    return {name: reportgen.audit(_spec(tmp, base, ft, probes, **kw), progress=False)
            for name, (probes, kw) in runs.items()}


def _families(cert: reportgen.Certificate, cand: str = "ft") -> set[str]:
    return {n.split(".", 1)[0] for n in cert.comparison(cand)["metrics"]}


@pytest.mark.parametrize("which", ["domains", "risk"])
def test_concept_families_are_absent_and_the_rest_runs(audits, which) -> None:
    cert = audits[which]
    validate_certificate(cert.data)
    expected = {"embeddings", "neighbors", "weights", "probabilities"} | (
        {"domains", "cka", "sae"} if which == "domains" else {"behavior"})
    for comp in cert.data["comparisons"]:
        names = comp["metrics"]
        assert not [n for n in names if n.startswith(CONCEPT_FAMILIES)]
        assert not CONCEPT_TABLES & set(comp["tables"])
        assert {n.split(".", 1)[0] for n in names} == expected
        assert not [n for n, m in names.items() if m["error"] and "concept" in m["error"]]
    assert "neighbors.tokens.top_movers.jaccard.mean" in cert.comparison("ft")["metrics"]
    assert "projection" not in cert.data["analysis"]
    assert "concepts" not in cert.data["analysis"]
    assert [p["kind"] for p in cert.data["probes"]] == ["domain" if which == "domains"
                                                        else "risk"]
    said = " ".join(cert.data["warnings"] + cert.data["limitations"] + [cert.summary()])
    assert not re.search(r"concept|UMAP|prompt template", said, re.I), said
    assert [c["status"] for c in cert.checks] == ["PASS"]


def _close(x: object, y: object) -> bool:
    """Equal, floats within float32 batching noise, through nested dicts and lists."""
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(_close(x[k], y[k]) for k in x)
    if isinstance(x, list) and isinstance(y, list):
        return len(x) == len(y) and all(_close(a, b) for a, b in zip(x, y, strict=True))
    if isinstance(x, float) and isinstance(y, (int, float)):
        return x == pytest.approx(y, rel=1e-5, abs=1e-9)
    return x == y


def _same(a: dict, b: dict, prefix: tuple[str, ...]) -> None:
    names = sorted(n for n in a if n.startswith(prefix))
    assert names == sorted(n for n in b if n.startswith(prefix)) and names
    for n in names:
        assert _close(a[n], b[n]), (n, a[n], b[n])


@pytest.mark.parametrize("which", ["domains", "risk"])
def test_next_token_numbers_equal_those_read_beside_concepts(audits, which) -> None:
    alone, beside = audits[which], audits[f"concepts+{which}"]
    for cand in ("ft", "int8"):
        a, b = alone.comparison(cand), beside.comparison(cand)
        _same(a["metrics"], b["metrics"], ("probabilities.", "behavior.", "domains.",
                                           "cka.domains.", "embeddings.", "weights."))
        for table in ("probabilities_probe_sets", "behavior_prompts", "domains"):
            assert _close(a["tables"].get(table), b["tables"].get(table)), table


def test_domains_only_matches_the_models_own_logits(audits, tiny_models) -> None:
    rows = {r["probe_set"]: r for r in
            audits["domains"].comparison("ft")["tables"]["probabilities_probe_sets"]}
    lb = _causal_lp(tiny_models["tiny-gpt2"], DOMAIN)
    lf = _causal_lp(tiny_models["tiny-gpt2-ft"], DOMAIN)
    assert rows["domains.mixed"]["positions"] == len(lb)
    for key, want in _scipy(lb, lf).items():
        assert rows["domains.mixed"][key] == pytest.approx(want, rel=1e-3, abs=1e-6), key


def test_risk_only_margins_match_the_models_own_logits(audits, tiny_models) -> None:
    rows = {r["prompt"]: r for r in audits["risk"].comparison("ft")["tables"]["behavior_prompts"]}
    for r in RISK:
        for who, key in (("tiny-gpt2", "margin_base"), ("tiny-gpt2-ft", "margin_candidate")):
            want = _causal_margin(tiny_models[who], r)
            assert rows[r["prompt"]][key] == pytest.approx(want, rel=1e-4, abs=1e-5)
    change = [rows[r["prompt"]]["margin_change"] for r in RISK]
    assert audits["risk"].metric("ft", "behavior.margin_change.mean") == pytest.approx(
        np.mean(change), rel=1e-5)


def _family_sections(html: str) -> dict[str, str]:
    return dict(re.findall(r'<section class="family" id="family-([\w-]+)"(.*?)</section>', html,
                           flags=re.S))


@pytest.mark.parametrize("which", ["domains", "risk"])
def test_views_render_without_concepts_and_without_empty_sections(audits, which,
                                                                  tmp_path) -> None:
    cert = audits[which]
    out = render_outputs(cert, ["html", "pdf", "model-card"])
    html = re.sub(r"<(style|script)\b.*?</\1>", "", out["html"].decode(), flags=re.S)
    sections = _family_sections(html)
    expected = {"embeddings", "neighbors", "weights", "probabilities"} | (
        {"domains", "cka", "sae"} if which == "domains" else {"behavior"})
    assert set(sections) == expected
    for fam, body in sections.items():  # each shows a metrics table with rows, at least
        assert re.search(r"<tbody>\s*<tr>", body), fam
    # token neighbourhoods keep their side-by-side table without a concept chart above it
    assert "Neighbourhoods of the top token movers: ft" in sections["neighbors"]
    assert "A token can keep its embedding" in sections["neighbors"]
    assert 'id="explorer"' not in html and "Concept explorer" not in html
    shown = html.split('id="appendix"')[0]  # the appendix and glossary are the same for all
    assert not re.search(CONCEPT_WORDS, shown, re.I)
    card = out["model-card"].decode()
    assert "concepts." not in card and "probabilities.kl_base_candidate.mean" in card
    assert out["pdf"].startswith(b"%PDF-")
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    (tmp_path / "c.pdf").write_bytes(out["pdf"])
    text = subprocess.run(["pdftotext", "-layout", str(tmp_path / "c.pdf"), "-"], check=True,
                          capture_output=True, text=True).stdout
    body = text.rsplit("Appendix", 1)[0]  # the normalised spec says "concepts": null
    assert "Next-token probabilities" in body and "top token movers: ft" in body
    assert not re.search(CONCEPT_WORDS, body, re.I)


def _problems(spec: dict) -> list[str]:
    with pytest.raises(SpecError) as err:
        load_spec(spec)
    return str(err.value).splitlines()


def test_check_on_an_absent_family_is_refused_at_validate(tmp_path) -> None:
    spec = _spec(tmp_path, tmp_path, tmp_path, ["domains"])
    spec["checks"] = [{"metric": m, "fail_if": "> 1"} for m in (
        "concepts.cosine_distance.mean", "neighbors.concepts.jaccard.mean", "cka.concepts.min",
        "behavior.misalignment_score", "cka.domains.mixed.min", "probabilities.js.mean",
        "neighbors.tokens.top_movers.jaccard.mean")]
    concepts = "is measured on the concept probes, and the spec has no probes.concepts"
    assert _problems(spec) == [
        f"<dict>: checks[0].metric: 'concepts.cosine_distance.mean' {concepts}",
        f"<dict>: checks[1].metric: 'neighbors.concepts.jaccard.mean' {concepts}",
        f"<dict>: checks[2].metric: 'cka.concepts.min' {concepts}",
        "<dict>: checks[3].metric: 'behavior.misalignment_score' is measured on the risk "
        "probes, and the spec has no probes.risk",
    ]


def test_spec_without_any_probe_set_is_refused(tiny_models, tmp_path, capsys) -> None:
    base, ft = tiny_models["tiny-gpt2"], tiny_models["tiny-gpt2-ft"]
    (tmp_path / "spec.yaml").write_text(
        f"audit: {{name: x}}\nmodels:\n  base: {{path: {base}}}\n"
        f"  candidates: [{{name: ft, path: {ft}}}]\nprobes: {{domains: []}}\n")
    assert main(["validate", str(tmp_path / "spec.yaml")]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: {tmp_path / 'spec.yaml'}:5: probes: expected at least one of concepts, "
        "domains or risk",
        "1 problem found; nothing was run."]
