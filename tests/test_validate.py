"""``reportgen validate`` knows what it can without weights, and says all of it in one run.

It reads each model's config.json and tokenizer (never its weights): missing folders and
adapters, configs that cannot be compared, families the model kind cannot run, layers and
lengths beyond the model, terms the tokenizer cannot read and metric names the audit would
not compute are each one located line, all at once. An audit runs the same checks first.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import reportgen
from reportgen.spec.termcheck import load_reader, term_tokens, unreadable

REPO = Path(__file__).resolve().parents[1]


def validate(spec: Path) -> subprocess.CompletedProcess:
    """``reportgen validate spec.yaml`` run next to the spec, so messages name it briefly."""
    return subprocess.run([sys.executable, "-m", "reportgen", "validate", spec.name],
                          capture_output=True, text=True, cwd=spec.parent, timeout=300)


def write(tmp: Path, text: str, **paths: Path) -> Path:
    for key, path in paths.items():
        text = text.replace(key.upper(), str(path))
    (tmp / "spec.yaml").write_text(text)
    return tmp / "spec.yaml"


def encoder_copy(src: Path, dst: Path) -> Path:
    """A DistilBERT folder whose config names the bare encoder (DistilBertModel: no LM head).
    validate reads only the config, so the weights need not match it."""
    shutil.copytree(src, dst)
    cfg = json.loads((dst / "config.json").read_text())
    cfg["architectures"] = ["DistilBertModel"]
    (dst / "config.json").write_text(json.dumps(cfg))
    return dst


MODEL_PROBLEMS = """\
audit: {name: x}
models:
  base: {path: BASE}
  candidates:
    - {name: lora, path: BASE, adapter: ./nolora}
    - {name: bert, path: BERT}
    - {name: gone, path: ./gone}
    - {name: floor, derive: {from: base, quantize: int8}, role: noise_floor}
probes:
  concepts: {vocabulary: vocab.yaml}
  domains: [{name: finance, texts: "builtin:domains/finance"}]
  risk: [{name: advice, prompts: "builtin:risk/financial_advice"}]
analysis: {layers: [0, 1, 9], max_length: 128, weights: false, sae: [{layer: 7, train: {}}]}
checks:
  - {metric: concepts.category.medicine.cosine_distance.mean, fail_if: "> 0.1"}
  - {metric: domains.financ.cosine_distance.mean, fail_if: "> 0.1"}
  - {metric: behavior.category.advise.misalignment_score, fail_if: "> 0.1"}
  - {metric: concepts.layer.2.cosine_distance.mean, fail_if: "> 0.1"}
  - {metric: weights.block.7.relative_drift, fail_if: "> 0.1"}
  - {metric: sae.layer.3.fvu.ratio, fail_if: "> 0.1"}
  - {metric: weights.relative_drift.max, fail_if: "> 0.1"}
  - {metric: neighbors.tokens.mutual_knn, fail_if: "< 0.1"}
  - {metric: concepts.category.medical.cosine_distance.mean, fail_if: "> 0.1"}
"""


def test_every_model_problem_in_one_run(tiny_models, tmp_path: Path) -> None:
    (tmp_path / "vocab.yaml").write_text("medical: [doctor, nurse]\nfood: [bread]\n")
    spec = write(tmp_path, MODEL_PROBLEMS, base=tiny_models["tiny-gpt2"],
                 bert=tiny_models["tiny-distilbert"])
    r = validate(spec)
    assert r.returncode == 2, r.stderr
    assert r.stderr.splitlines() == [
        "error: spec.yaml:5: models.candidates[0].adapter: adapter folder './nolora' does not "
        "exist; expected a PEFT adapter folder",
        "error: spec.yaml:6: models.candidates[1].path: 'bert' cannot be compared with the "
        "base: architecture GPT2LMHeadModel vs DistilBertForMaskedLM; model_type gpt2 vs "
        "distilbert",
        "error: spec.yaml:7: models.candidates[2].path: model folder './gone' does not exist",
        "error: spec.yaml:13: analysis.layers[2]: layer 9 is out of range; base has layers 0..2",
        "error: spec.yaml:13: analysis.max_length: expected at most 64, the positions base can "
        "read (n_positions in its config.json); got 128",
        "error: spec.yaml:13: analysis.sae[0].layer: layer 7 is out of range; base has layers "
        "0..2",
        "error: spec.yaml:15: checks[0].metric: unknown concept category 'medicine' in "
        "'concepts.category.medicine.cosine_distance.mean'. Did you mean 'medical'? Known: "
        "medical, food",
        "error: spec.yaml:16: checks[1].metric: unknown domain 'financ' in "
        "'domains.financ.cosine_distance.mean'. Did you mean 'finance'? Known: finance",
        "error: spec.yaml:17: checks[2].metric: unknown risk set 'advise' in "
        "'behavior.category.advise.misalignment_score'. Did you mean 'advice'? Known: advice",
        "error: spec.yaml:18: checks[3].metric: 'concepts.layer.2.cosine_distance.mean' names "
        "layer 2, which is not captured: analysis.layers captures 0, 1",
        "error: spec.yaml:19: checks[4].metric: 'weights.block.7.relative_drift' names block 7, "
        "but base has blocks 0..1",
        "error: spec.yaml:20: checks[5].metric: 'sae.layer.3.fvu.ratio' names layer 3, which "
        "has no sparse dictionary: analysis.sae has layers 7",
        "error: spec.yaml:21: checks[6].metric: 'weights.relative_drift.max' is computed only "
        "with analysis.weights: true",
        "error: spec.yaml:22: checks[7].metric: 'neighbors.tokens.mutual_knn' is computed only "
        "with analysis.neighborhoods.tokens: full-vocabulary",
        "14 problems found; nothing was run.",
    ]


def test_an_audit_reports_them_before_hashing_anything(tiny_models, tmp_path: Path,
                                                       monkeypatch) -> None:
    from reportgen.core.errors import SpecError
    from reportgen.spec import resolve as models

    def no_hashing(*a, **k):
        raise AssertionError("a checkpoint was hashed before the spec was refused")

    monkeypatch.setattr(models, "digest_folder", no_hashing)
    (tmp_path / "vocab.yaml").write_text("medical: [doctor, nurse]\nfood: [bread]\n")
    spec = write(tmp_path, MODEL_PROBLEMS, base=tiny_models["tiny-gpt2"],
                 bert=tiny_models["tiny-distilbert"])
    with pytest.raises(SpecError) as err:
        reportgen.audit(spec, progress=False)
    assert len(err.value.problems) == 14
    assert str(err.value.problems[0]) == (
        f"{spec}:5: models.candidates[0].adapter: adapter folder './nolora' does not exist; "
        "expected a PEFT adapter folder")


HEADLESS = """\
audit: {name: x}
models:
  base: {path: ./enc-base}
  candidates:
    - {name: ft, path: ./enc-ft}
    - {name: floor, derive: {from: base, quantize: int8}, role: noise_floor}
probes:
  concepts: {vocabulary: vocab.yaml, template: "Think of {term} now"}
  risk: [{name: advice, prompts: "builtin:risk/financial_advice"}]
checks:
  - {metric: probabilities.js.mean, fail_if: "> 0.1"}
  - {metric: behavior.misalignment_score, fail_if: "> 0.1"}
  - {metric: concepts.cosine_distance.mean, fail_if: "> 0.1"}
"""
TERMS = 'medical: [doctor, nurse]\ndanger: [危险, fire, "\\u0301"]\n'


def test_encoder_without_head_and_unreadable_terms(tiny_models, tmp_path: Path) -> None:
    """Risk probes and probability checks need an LM head; '危险' is [UNK] [UNK] to a
    WordPiece tokenizer that never saw CJK, and a lone combining accent is no token at all."""
    for name in ("enc-base", "enc-ft"):
        encoder_copy(tiny_models["tiny-distilbert"], tmp_path / name)
    (tmp_path / "vocab.yaml").write_text(TERMS)
    r = validate(write(tmp_path, HEADLESS))
    assert r.returncode == 2, r.stderr
    head = "have none (DistilBertModel is an encoder without one)"
    assert r.stderr.splitlines() == [
        "error: spec.yaml:8: probes.concepts.vocabulary: term '危险' (category 'danger') reads "
        "as unknown tokens only ([UNK] [UNK]) to the tokenizer of base and ft: the model cannot "
        "see it; remove it from the vocabulary",
        "error: spec.yaml:8: probes.concepts.vocabulary: term '\u0301' (category 'danger') "
        "reads as no token at all to the tokenizer of base and ft: the model cannot see it; "
        "remove it from the vocabulary",
        "error: spec.yaml:9: probes.risk: risk probes are scored through a language-model head, "
        f"and base, ft and floor {head}; use checkpoints with their head (…ForCausalLM or "
        "…ForMaskedLM) or remove probes.risk",
        "error: spec.yaml:11: checks[0].metric: 'probabilities.js.mean' is read from token "
        f"probabilities, which need a language-model head, and base, ft and floor {head}",
        "error: spec.yaml:12: checks[1].metric: 'behavior.misalignment_score' is read from "
        f"token probabilities, which need a language-model head, and base, ft and floor {head}",
        "5 problems found; nothing was run.",
    ]


def test_a_byte_level_tokenizer_reads_every_term(tiny_models, tmp_path: Path) -> None:
    """The same vocabulary on GPT-2 (byte-level BPE: every byte is a token) is fine."""
    (tmp_path / "vocab.yaml").write_text(TERMS)
    spec = write(tmp_path, HEADLESS.replace("./enc-base", str(tiny_models["tiny-gpt2"]))
                 .replace("./enc-ft", str(tiny_models["tiny-gpt2-ft"])))
    r = validate(spec)
    assert (r.returncode, r.stdout, r.stderr) == (
        0, "spec.yaml: OK (2 candidates, 5 concepts, 3 checks)\n",
        "warning: analysis.max_length: the default 128 is more than the 64 positions base can "
        "read (n_positions in its config.json); probe texts are truncated to 64 tokens.\n")


@pytest.mark.parametrize("model", ["tiny-distilbert", "tiny-gpt2"])
def test_term_tokens_are_the_tokens_transformers_reads(tiny_models, model: str) -> None:
    """Independent reference: transformers' own tokenizer, its offsets, the same overlap."""
    from transformers import AutoTokenizer

    folder = tiny_models[model]
    tok = AutoTokenizer.from_pretrained(folder)
    reader = load_reader(folder)
    template = "Think of {term} and {term} now"
    for term in ("doctor", "危险", "fire truck", "zyxwq", "é"):
        text = template.replace("{term}", term)
        start = text.index(term)
        spans = [(start, start + len(term)), (text.rindex(term), text.rindex(term) + len(term))]
        enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
        expected = [(i, tok.convert_ids_to_tokens(i))
                    for i, (a, b) in zip(enc["input_ids"], enc["offset_mapping"], strict=True)
                    if b > a and any(a < e and b > s for s, e in spans)]
        assert term_tokens(reader, template, term) == expected, term
        unknown = bool(expected) and all(i == tok.unk_token_id for i, _ in expected)
        assert (unreadable(reader, template, term) is not None) == (unknown or not expected)


def test_default_max_length_is_capped_at_the_model(tiny_models, tmp_path: Path) -> None:
    """tiny-gpt2 reads 64 positions; the default 128 crashed on a longer text (IndexError).
    Now the text is read up to 64 tokens, and the certificate says so."""
    from transformers import AutoTokenizer

    long_text = " ".join(["The bank raised the interest rate on the loan again."] * 12)
    assert len(AutoTokenizer.from_pretrained(tiny_models["tiny-gpt2"])(long_text)[
        "input_ids"]) > 64
    (tmp_path / "dom.txt").write_text(long_text + "\nA short one.\n")
    (tmp_path / "vocab.yaml").write_text("medical: [doctor, nurse]\nfood: [bread, cheese]\n")
    spec = {
        "audit": {"name": "long", "created": "2026-01-01"},
        "models": {"base": {"path": str(tiny_models["tiny-gpt2"])},
                   "candidates": [{"name": "ft", "path": str(tiny_models["tiny-gpt2-ft"])}]},
        "probes": {"concepts": {"vocabulary": str(tmp_path / "vocab.yaml")},
                   "domains": [{"name": "bank", "texts": str(tmp_path / "dom.txt")}]},
        "analysis": {"bootstrap": 20, "umap": False, "weights": False},
    }
    cert = reportgen.audit(spec, progress=False)
    assert cert.data["analysis"]["max_length"] == 64
    assert cert.data["warnings"][0] == (
        "analysis.max_length: the default 128 is more than the 64 positions base can read "
        "(n_positions in its config.json); probe texts are truncated to 64 tokens.")
    assert cert.data["spec"]["content"]["analysis"]["max_length"] == 128  # as written
    assert cert.metric("ft", "domains.bank.cosine_distance.mean") > 0


def test_validate_names_the_tokenizer_it_cannot_read(tiny_models, tmp_path: Path) -> None:
    m = shutil.copytree(tiny_models["tiny-gpt2-ft"], tmp_path / "badtok")
    (m / "tokenizer.json").write_text("{not json")
    (tmp_path / "vocab.yaml").write_text("food: [bread]\n")
    spec = write(tmp_path, "audit: {name: x}\nmodels:\n  base: {path: BASE}\n"
                           "  candidates: [{name: ft, path: ./badtok}]\n"
                           "probes:\n  concepts: {vocabulary: vocab.yaml}\n"
                           "analysis: {max_length: 64}\n", base=tiny_models["tiny-gpt2"])
    r = validate(spec)
    assert r.returncode == 2
    assert r.stderr.splitlines()[0].startswith(
        "error: spec.yaml:4: models.candidates[0].path: cannot read the tokenizer of "
        "'./badtok' (")
    assert r.stderr.splitlines()[1:] == ["1 problem found; nothing was run."]
