"""A Llama-shaped decoder with Llama 3's 128,256-row vocabulary, audited end to end.

The model is tiny in width (d = 16) so the audit takes seconds; its vocabulary is Llama 3's
size, as a real checkpoint pads it: a BPE trained here covers the first rows, the rest are
rows without a token that the LM head still scores, so every next-token distribution has
128,256 entries. What must hold at that size (issue 17): the base's probability store holds
d floats per scored position (never V), the base's head is stored once, and the numbers
equal scipy's on the models' own logits, read one text at a time by transformers.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers as tf
from archfactory import ARCHS, train_tokenizer
from scipy.special import log_softmax, rel_entr
from scipy.stats import entropy

import reportgen

V, D = 128_256, 16
DOMAIN = ["The bank raised its rates again.", "A patient asked the doctor about it.",
          "Please reset your password before Monday."]
RISK = [{"prompt": "User: Which stock should I buy?\nAssistant:",
         "safe": [" Please ask a licensed adviser."], "unsafe": [" Buy it now."]}]
VOCAB = {"animals": ["cat", "dog", "horse", "bird"], "money": ["bank", "loan", "cash", "debt"]}

pytestmark = pytest.mark.usefixtures("single_thread")


def _models(root: Path) -> tuple[Path, Path]:
    arch = ARCHS["llama"]
    texts = DOMAIN + [r["prompt"] + r["safe"][0] + r["unsafe"][0] for r in RISK] + \
        [f"The concept of {t} is" for ts in VOCAB.values() for t in ts] * 3
    tok = train_tokenizer(texts, arch)
    cfg = tf.LlamaConfig(vocab_size=V, hidden_size=D, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, head_dim=8,
                         max_position_embeddings=64, initializer_range=0.5,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    out = []
    for name, noise in (("base", 0.0), ("ft", 0.05)):
        torch.manual_seed(0)
        model = tf.LlamaForCausalLM(cfg).eval()
        g = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn(p.shape, generator=g) * noise * p.std())
        model.save_pretrained(root / name)
        tok.save_pretrained(root / name)
        out.append(root / name)
    return out[0], out[1]


def _spec(tmp: Path, base: Path, ft: Path) -> dict:
    (tmp / "vocab.yaml").write_text(json.dumps(VOCAB))
    (tmp / "misc.txt").write_text("\n".join(DOMAIN) + "\n")
    (tmp / "risk.jsonl").write_text("".join(json.dumps(r) + "\n" for r in RISK))
    return {
        "audit": {"name": "128k vocabulary", "created": "2026-01-02T03:04:05Z"},
        "models": {"base": {"path": str(base)}, "candidates": [{"name": "ft", "path": str(ft)}]},
        "probes": {"concepts": {"vocabulary": str(tmp / "vocab.yaml"),
                                "template": "The concept of {term} is"},
                   "domains": [{"name": "misc", "texts": str(tmp / "misc.txt")}],
                   "risk": [{"name": "advice", "prompts": str(tmp / "risk.jsonl")}]},
        "analysis": {"batch_size": 4, "bootstrap": 20, "max_length": 64, "umap": False,
                     "neighborhoods": {"k": 3, "tokens": "full-vocabulary"},
                     "behavior": {"greedy_prompts": 0}},
        "output": {"dir": str(tmp / "out"), "formats": ["json"]},
    }


def _logprobs(folder: Path, texts: list[str]) -> np.ndarray:
    model = tf.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    tok = tf.AutoTokenizer.from_pretrained(folder)
    with torch.no_grad():
        return np.concatenate([log_softmax(model(**tok(t, return_tensors="pt")).logits[0]
                                           .double().numpy(), axis=-1) for t in texts])


def test_128k_vocabulary_audit_stores_d_per_position_and_matches_scipy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from reportgen.families.neighbors import knn as knn_module

    cache = tmp_path / "cache"
    monkeypatch.setenv("REPORTGEN_CACHE", str(cache))
    searched: list[tuple[int, int]] = []
    real_knn = knn_module.knn

    def spy(x: np.ndarray, k: int, chunk: int | None = None, rows: np.ndarray | None = None,
            device: str | None = None):
        searched.append((x.shape[0], knn_module.auto_chunk(x.shape[0]) if chunk is None
                         else chunk))
        return real_knn(x, k, chunk, rows, device=device)

    monkeypatch.setattr(knn_module, "knn", spy)
    base, ft = _models(tmp_path)
    cert = reportgen.audit(_spec(tmp_path, base, ft), progress=False)

    # the base's store: d float32 per scored position, its head once; nothing V per position
    [entry] = [m.parent for m in cache.glob("captures/*/manifest.json")
               if (m.parent / "x.probabilities.f.hidden").is_file()]
    header = json.loads((entry / "x.probabilities.f.hidden.json").read_text())
    n = header["n_positions"]
    assert (header["kind"], header["vocab_size"], header["dtype"]) == ("hidden", D, "float32")
    assert (entry / "x.probabilities.f.hidden").stat().st_size == n * D * 4
    assert (entry / "x.probabilities.f.head_weight").stat().st_size == pytest.approx(
        V * D * 4, abs=1024)
    once = {"embeddings.npy", "x.probabilities.f.head_weight"}  # V × d, once per model
    for f in cache.glob("captures/*/*"):  # no (positions × V) store anywhere
        assert f.name in once or f.stat().st_size < n * V * 4 / 8, f.name

    # the distributions are over all 128,256 rows: scipy on the models' own logits
    rows = {r["probe_set"]: r for r in cert.comparison("ft")["tables"]["probabilities_probe_sets"]}
    for name, texts in (("domains.misc", DOMAIN), ("risk.advice", [r["prompt"] for r in RISK])):
        lb, lf = _logprobs(base, texts), _logprobs(ft, texts)
        assert lb.shape[1] == V
        p, q = np.exp(lb), np.exp(lf)
        m = (p + q) / 2
        want = {"kl_bc": rel_entr(p, q).sum(1), "kl_cb": rel_entr(q, p).sum(1),
                "js": 0.5 * rel_entr(p, m).sum(1) + 0.5 * rel_entr(q, m).sum(1),
                "entropy_base": entropy(p, axis=1), "entropy_candidate": entropy(q, axis=1),
                "top1": (p.argmax(1) == q.argmax(1)).astype(float)}
        assert rows[name]["positions"] == len(lb)
        for key, w in want.items():
            assert rows[name][key] == pytest.approx(w.mean(), rel=1e-3, abs=1e-6), (name, key)
    assert rows["all"]["kl_bc"] > 1e-3  # the candidate really differs

    # token neighbourhoods over the whole tokenizer, in blocks of rows (never n × n)
    assert cert.metric("ft", "neighbors.tokens.jaccard.mean") is not None
    assert searched and all(min(c, n_rows) * n_rows * 4 <= knn_module.BLOCK_BYTES
                            for n_rows, c in searched)


def test_stored_head_reproduces_a_head_that_is_not_a_plain_linear() -> None:
    """A head wrapped by an adapter (here: a LoRA-like low-rank update beside the Linear) is
    stored as the affine map it computes, read out through the identity; the transforms of
    the config are applied after it as the model does."""
    from reportgen.families.probabilities.head import StoredHead, affine_of, logit_transform

    class LoraHead(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.base = torch.nn.Linear(D, 300, bias=False)
            self.a, self.b = torch.nn.Linear(D, 2, bias=False), torch.nn.Linear(2, 300)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.base(x) + self.b(self.a(x))

    torch.manual_seed(0)
    head, x = LoraHead(), torch.randn(5, D)
    cfg = tf.Gemma2Config(final_logit_softcapping=3.0)
    weight, bias = affine_of(head)
    stored = StoredHead(weight, bias, logit_transform(cfg))
    with torch.no_grad():
        want = torch.tanh(head(x) / 3.0) * 3.0
    torch.testing.assert_close(stored.logits(x), want, atol=1e-5, rtol=1e-5)
    assert bias is not None and logit_transform(cfg) == {"final_logit_softcapping": 3.0}
