"""Distribution-shift metrics against scipy, streamed in uneven blocks and through the store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.special import log_softmax, rel_entr
from scipy.stats import entropy

from reportgen.core.names import lookup
from reportgen.families.probabilities.metrics import (
    ShiftAccumulator,
    position_stats,
    probability_metrics,
    shift_from_blocks,
)
from reportgen.families.probabilities.store import (
    RowReader,
    RowWriter,
    model_logprob_blocks,
    paired_blocks,
)

V = 97


def _pair(n: int = 150, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.normal(scale=3.0, size=(n, V))
    b = a + rng.normal(scale=rng.uniform(0.0, 2.0, size=(n, 1)), size=(n, V))
    b[:10] = a[:10]  # identical rows: every divergence exactly 0
    return log_softmax(a, axis=1), log_softmax(b, axis=1)


def _scipy_rows(lp: np.ndarray, lq: np.ndarray) -> dict[str, np.ndarray]:
    p, q = np.exp(lp), np.exp(lq)
    return {
        "kl_bc": rel_entr(p, q).sum(axis=1),
        "kl_cb": rel_entr(q, p).sum(axis=1),
        "js": np.array([jensenshannon(x, y) ** 2 for x, y in zip(p, q, strict=True)]),
        "entropy_base": entropy(p, axis=1),
        "entropy_candidate": entropy(q, axis=1),
        "top1": (p.argmax(1) == q.argmax(1)).astype(float),
    }


def _logit_shift(lp: np.ndarray, lq: np.ndarray) -> np.ndarray:
    """By the definition, on independently centred log-probs."""
    cb = lp - lp.mean(axis=1, keepdims=True)
    cc = lq - lq.mean(axis=1, keepdims=True)
    return np.abs(cc - cb).mean(axis=1)


def test_per_position_statistics_match_scipy() -> None:
    lp, lq = _pair()
    got = position_stats(lp, lq)
    for key, want in _scipy_rows(lp, lq).items():
        np.testing.assert_allclose(got[key], want, rtol=1e-9, atol=1e-12, err_msg=key)
    np.testing.assert_allclose(got["logit_shift"], _logit_shift(lp, lq), rtol=1e-9)
    assert np.all(got["kl_bc"][:10] == 0) and np.all(got["js"][:10] == 0)
    assert np.all(got["js"] <= np.log(2) + 1e-12)


def test_streamed_uneven_blocks_equal_the_unstreamed_result() -> None:
    lp, lq = _pair()
    edges = np.cumsum([0, 7, 1, 64, 33, 45])
    acc = ShiftAccumulator(V, top_n=5)
    for s, e in zip(edges[:-1], edges[1:], strict=True):
        acc.update(lp[s:e], lq[s:e], "a" if s < 70 else "b")
    res = acc.result()
    whole = position_stats(lp, lq)
    for key, want in whole.items():
        np.testing.assert_allclose(res.stats[key], want, rtol=1e-12, atol=1e-15)
    delta = np.exp(lq) - np.exp(lp)
    np.testing.assert_allclose(res.gained, np.clip(delta, 0, None).sum(0), atol=1e-12)
    np.testing.assert_allclose(res.lost, np.clip(-delta, 0, None).sum(0), atol=1e-12)
    np.testing.assert_allclose(res.gained - res.lost, delta.sum(0), atol=1e-12)
    top = np.argsort(-whole["kl_bc"], kind="stable")[:5]
    assert [t.position for t in res.top_positions] == top.tolist()
    t0 = res.top_positions[0]
    assert t0.base_ids == np.argsort(-lp[top[0]])[:5].tolist()
    np.testing.assert_allclose(t0.cand_probs, np.sort(np.exp(lq[top[0]]))[::-1][:5])


def test_metrics_and_tables() -> None:
    lp, lq = _pair()
    res = shift_from_blocks([(lp[:80], lq[:80]), (lp[80:], lq[80:])], V, groups=["x", "y"])
    m, tables = probability_metrics(res, n_boot=200, seed=0)
    rows = _scipy_rows(lp, lq)
    assert m["probabilities.kl_base_candidate.mean"].value == pytest.approx(rows["kl_bc"].mean())
    assert m["probabilities.js.mean"].value == pytest.approx(rows["js"].mean())
    assert m["probabilities.top1_agreement"].value == pytest.approx(rows["top1"].mean())
    comp = rows["entropy_base"].mean() - rows["entropy_candidate"].mean()
    assert m["probabilities.entropy_compression"].value == pytest.approx(comp)
    lo, hi = m["probabilities.kl_base_candidate.mean"].ci
    assert lo <= m["probabilities.kl_base_candidate.mean"].value <= hi
    for name, mv in m.items():
        assert lookup(name) is not None and mv.definition
    assert [r["probe_set"] for r in tables["probe_sets"]] == ["all", "x", "y"]
    assert tables["probe_sets"][1]["kl_bc"] == pytest.approx(rows["kl_bc"][:80].mean())
    hist = [r for r in tables["kl_histogram"] if r["probe_set"] == "all"]
    assert sum(r["count"] for r in hist) == 150
    ent = [r for r in tables["entropy"] if r["probe_set"] == "all"]
    assert sum(r["base"] for r in ent) == sum(r["candidate"] for r in ent) == 150
    net = (np.exp(lq) - np.exp(lp)).sum(0)
    assert tables["tokens_gained"][0]["token_id"] == int(np.argmax(net))
    assert tables["tokens_lost"][0]["token_id"] == int(np.argmin(net))


def test_float16_store_is_close(tmp_path: Path) -> None:
    lp, lq = _pair()
    with RowWriter(tmp_path / "b.bin", V, dtype=np.float16) as w:
        w.append(lp[:100])
        w.append(lp[100:])
    res = shift_from_blocks(paired_blocks(RowReader(tmp_path / "b.bin"),
                                          [lq[:100], lq[100:]]), V)
    want = _scipy_rows(lp, lq)["kl_bc"]
    np.testing.assert_allclose(res.stats["kl_bc"], want, atol=2e-2, rtol=2e-2)


def test_tiny_gpt2_streamed_through_the_store_matches_full_distributions(
        tiny_models: dict[str, Path], tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_models["tiny-gpt2"], local_files_only=True)
    tok.pad_token = tok.pad_token or tok.eos_token
    tok.padding_side = "right"
    texts = ["The bank raised its rates again.", "A patient asked the doctor",
             "Short", "Write a function that parses the config file safely and returns"]
    enc = tok(texts, return_tensors="pt", padding=True)
    batches = [(enc["input_ids"][:3], enc["attention_mask"][:3]),
               (enc["input_ids"][3:], enc["attention_mask"][3:])]
    full = {}
    for name in ("tiny-gpt2", "tiny-gpt2-ft"):
        model = AutoModelForCausalLM.from_pretrained(tiny_models[name],
                                                     local_files_only=True).eval()
        with torch.inference_mode():
            logits = model(**enc).logits.double()
        full[name] = torch.log_softmax(logits, -1)[enc["attention_mask"].bool()].numpy()
        if name == "tiny-gpt2":
            with RowWriter(tmp_path / "base.bin", model.config.vocab_size) as w:
                for block in model_logprob_blocks(model, batches, block_rows=7):
                    w.append(block)
        else:
            pairs = paired_blocks(RowReader(tmp_path / "base.bin"),
                                  model_logprob_blocks(model, batches, block_rows=7))
            res = shift_from_blocks(pairs, model.config.vocab_size)
        del model
    want = _scipy_rows(full["tiny-gpt2"], full["tiny-gpt2-ft"])
    assert res.n_positions == int(enc["attention_mask"].sum())
    for key, w in want.items():
        np.testing.assert_allclose(res.stats[key], w, rtol=1e-4, atol=1e-6, err_msg=key)
    assert want["kl_bc"].mean() > 0  # the ft copy really differs
