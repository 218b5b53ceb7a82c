"""Multi-token concept terms: flagged with their piece counts, checked against the tokenizer.

The reference walks the prompt's tokens by decoding growing prefixes (no offsets), so it
shares no code with the collector's offset-based count.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import transformers as tf

import reportgen
from reportgen.certificate.schema import validate_certificate
from reportgen.families.concepts.pieces import term_token_ids
from reportgen.release.write import render_outputs

TEMPLATE = "The concept of {term} is"
NONSENSE = "zqxjvkwplm"
VOCAB = {"animals": ["cat", "dog", "horse", NONSENSE], "money": ["bank", "ice cream", "price"]}
TERMS = [t for ts in VOCAB.values() for t in ts]


def _spec(tmp: Path, base: Path, ft: Path) -> dict:
    (tmp / "vocab.yaml").write_text(json.dumps(VOCAB))
    return {
        "audit": {"name": "pieces", "created": "2026-01-02T03:04:05Z"},
        "models": {"base": {"path": str(base)}, "candidates": [{"name": "ft", "path": str(ft)}]},
        "probes": {"concepts": {"vocabulary": str(tmp / "vocab.yaml"), "template": TEMPLATE}},
        "analysis": {"bootstrap": 0, "umap": False, "weights": False,
                     "neighborhoods": {"k": 3}},
    }


def reference_pieces(folder: Path, term: str) -> list[str]:
    """The tokens of the prompt whose characters overlap the term's, found by decoding."""
    tok = tf.AutoTokenizer.from_pretrained(folder)
    text = TEMPLATE.replace("{term}", term)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    start = TEMPLATE.index("{term}")
    out, at = [], 0
    for j in range(len(ids)):
        end = len(tok.decode(ids[:j + 1], clean_up_tokenization_spaces=False))
        piece = text[at:end]
        if end > start and at < start + len(term) and piece.strip():
            out.append(piece)
        at = end
    assert "".join(tok.decode(ids, clean_up_tokenization_spaces=False)) == text
    return out


def _pdf_text(pdf: bytes, tmp: Path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    (tmp / "c.pdf").write_bytes(pdf)
    return subprocess.run(["pdftotext", "-layout", str(tmp / "c.pdf"), "-"], check=True,
                          capture_output=True, text=True).stdout


def test_multi_token_terms_are_flagged_as_the_tokenizer_cuts_them(tiny_models,
                                                                   tmp_path) -> None:
    base, ft = tiny_models["tiny-gpt2"], tiny_models["tiny-gpt2-ft"]
    cert = reportgen.audit(_spec(tmp_path, base, ft), progress=False)
    validate_certificate(cert.data)
    want = {t: reference_pieces(base, t) for t in TERMS}
    assert len(want[NONSENSE]) > 3 and len(want["cat"]) == 1 and len(want["ice cream"]) >= 2
    rows = {r["term"]: r for r in cert.comparison("ft")["tables"]["concepts"]}
    assert {t: (r["pieces"], r["candidate_pieces"]) for t, r in rows.items()} == {
        t: (len(p), len(p)) for t, p in want.items()}
    info = cert.data["analysis"]["concepts"]
    multi = [t for t in TERMS if len(want[t]) > 1]
    assert [r["term"] for r in info["multi_token"]] == multi
    assert {r["term"]: "".join(r["tokens"]) for r in info["multi_token"]} == {
        t: "".join(want[t]) for t in multi}
    assert info["split_differently"] == {} and info["terms"] == len(TERMS)
    listed = ", ".join(f"{t} ({len(want[t])})" for t in multi)
    line = next(x for x in cert.data["limitations"] if "more than one token" in x)
    assert line.startswith(f"{len(multi)} of {len(TERMS)} concept terms are split by the base "
                           f"tokenizer into more than one token (pieces in brackets): "
                           f"{listed}. A concept is read at the template's last token, after "
                           "the whole term")

    out = render_outputs(cert, ["html", "pdf"])
    html = out["html"].decode()
    concepts = re.search(r'<section class="family" id="family-concepts".*?</section>', html,
                         re.S).group(0)
    assert "<th scope=\"col\" class=\"k-int\">term tokens</th>" in concepts
    assert f"<td class=\"k-text\">{NONSENSE}</td>" in concepts
    assert listed in concepts  # the limitation, in the section's own box
    text = _pdf_text(out["pdf"], tmp_path)
    assert "term tokens" in text
    assert re.search(rf"{NONSENSE}\s.*\s{len(want[NONSENSE])}\s*$", text, re.M)


def test_candidate_tokenizer_that_cuts_a_term_otherwise_is_named(tiny_models,
                                                                 tmp_path) -> None:
    base, ft = tiny_models["tiny-gpt2"], tiny_models["tiny-gpt2-ft"]
    tok = tf.AutoTokenizer.from_pretrained(ft)
    model = tf.AutoModelForCausalLM.from_pretrained(ft)
    assert tok.add_tokens([NONSENSE]) == 1
    model.resize_token_embeddings(len(tok))
    grown = tmp_path / "grown"
    model.save_pretrained(grown)
    tok.save_pretrained(grown)

    cert = reportgen.audit(_spec(tmp_path, base, grown), progress=False)
    validate_certificate(cert.data)
    b, c = reference_pieces(base, NONSENSE), reference_pieces(grown, NONSENSE)
    assert len(b) > 3 and c == [NONSENSE]
    for t in TERMS:  # every other term is cut alike
        assert t == NONSENSE or reference_pieces(grown, t) == reference_pieces(base, t)
    differ = cert.data["analysis"]["concepts"]["split_differently"]
    assert list(differ) == ["ft"]
    [row] = differ["ft"]
    assert (row["term"], row["pieces"], row["candidate_pieces"]) == (NONSENSE, len(b), 1)
    assert "".join(row["tokens"]) == "".join(b) and row["candidate_tokens"] == [NONSENSE]
    cut = "|".join(p.strip() for p in b)
    assert (f"The tokenizer of ft splits 1 concept term differently from the base's (base → "
            f"ft pieces): {NONSENSE} ({cut} → {NONSENSE}); their prompts are not the same "
            "token sequence in both models.") in cert.data["limitations"]
    html = render_outputs(cert, ["html"])["html"].decode()
    assert "term tokens in ft</th>" in html


class _NoOffsets:
    """A tokenizer without offsets (no tokenizers backend, as the slow ones): the
    prefix-difference path."""

    def __init__(self, tok) -> None:
        self.tok = tok

    def __call__(self, text, **kw):
        return self.tok(text, **kw)


@pytest.mark.parametrize("kind", ["gpt2", "distilbert"])
def test_slow_path_counts_what_offsets_count(tiny_models, kind) -> None:
    tok = tf.AutoTokenizer.from_pretrained(tiny_models[f"tiny-{kind}"])
    assert tok.backend_tokenizer is not None
    fast = term_token_ids(tok, TEMPLATE, TERMS)
    assert term_token_ids(_NoOffsets(tok), TEMPLATE, TERMS) == fast
    # WordPiece cuts words alone (whitespace pre-tokenizer); byte-level BPE decodes exactly
    want = [len(tok.tokenize(t)) if kind == "distilbert"
            else len(reference_pieces(tiny_models[f"tiny-{kind}"], t)) for t in TERMS]
    assert [len(i) for i in fast] == want and max(want) > 1
