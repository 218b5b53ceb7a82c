"""The catalogue of bad input (issue 7): one test each, through the command line.

Every case ends with exit code 2, one ``error:`` line per problem naming the file, field or
path and what was expected (spec problems end with "N problems found; nothing was run."),
no traceback, and no certificate file in the output folder.
"""

from __future__ import annotations

import errno
import io
import json
import os
import re
import shutil
import subprocess
import sys
from contextlib import redirect_stderr
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

REPO = Path(__file__).resolve().parents[1]
VOCAB = "animals: [cat, dog, horse, mouse]\ntools: [hammer, saw, drill, wrench]\n"
TINY: dict[str, Path] = {}


@pytest.fixture(autouse=True)
def _tiny(tiny_models: dict[str, Path]) -> None:
    """Specs name real (tiny) models unless a test says otherwise: validate reads their
    configs and tokenizers, so only the problem under test is reported."""
    TINY.update(tiny_models)


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reportgen", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=600, env={**os.environ, **(env or {})})


def write_spec(tmp: Path, base: str | None = None, cand: str | None = None,
               models: str | None = None, probes: str | None = None, extra: str = "",
               audit: str = "{name: x}") -> Path:
    """A spec in ``tmp`` with a small vocabulary; the models default to tiny GPT-2s."""
    (tmp / "vocab.yaml").write_text(VOCAB)
    base = base or str(TINY["tiny-gpt2"])
    cand = cand or str(TINY["tiny-gpt2-ft"])
    models = models or (f"models:\n  base: {{path: {base}}}\n"
                        f"  candidates: [{{name: ft, path: {cand}}}]\n")
    probes = probes or "probes:\n  concepts: {vocabulary: ./vocab.yaml}\n"
    spec = tmp / "spec.yaml"
    spec.write_text(f"audit: {audit}\n{models}{probes}{extra}output: {{dir: ./out}}\n")
    return spec


def assert_refused(r: subprocess.CompletedProcess, tmp: Path, *lines: str) -> None:
    """Exit 2, exactly ``lines`` on stderr (after any progress lines), no traceback, no output
    (not even the empty output folder)."""
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error: ")]
    tail = r.stderr.strip().splitlines()[-len(lines):]
    assert tail == list(lines), r.stderr
    assert len(errors) == sum(ln.startswith("error: ") for ln in lines), r.stderr
    assert not list(tmp.rglob("certificate.*"))
    assert not (tmp / "out").exists()


def one(msg: str) -> tuple[str, str]:
    return (f"error: {msg}", "1 problem found; nothing was run.")


def copy_model(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# ---------------------------------------------------------------------------------------------
# The spec


def test_yaml_syntax_error(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("audit: {name: x\nmodels: [\n")
    r = run("validate", str(spec))
    assert_refused(r, tmp_path, *one(
        f"{spec}:2: YAML syntax error: expected ',' or '}}', but got ':'"))


def test_unknown_key(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, extra="analysys: {layers: all}\n")
    assert_refused(run("validate", str(spec)), tmp_path, *one(
        f"{spec}:7: analysys: unknown key 'analysys'. Did you mean 'analysis'?"))


def test_wrong_type(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, extra="analysis: {batch_size: many}\n")
    assert_refused(run("validate", str(spec)), tmp_path, *one(
        f"{spec}:7: analysis.batch_size: expected a whole number, got 'many'"))


def test_missing_required_key(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"audit: {{name: x}}\nmodels:\n  base: {{path: {TINY['tiny-gpt2']}}}\n"
                    f"  candidates: [{{name: ft, path: {TINY['tiny-gpt2-ft']}}}]\n")
    assert_refused(run("validate", str(spec)), tmp_path, *one(
        f"{spec}:1: probes: required key is missing"))


def test_empty_probe_set(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, probes="probes:\n  concepts: {vocabulary: ./empty.yaml}\n")
    (tmp_path / "empty.yaml").write_text("animals: []\n")
    assert_refused(run("validate", str(spec)), tmp_path, *one(
        f"{spec}:6: probes.concepts.vocabulary: ./empty.yaml:1: category 'animals' has no "
        "terms; expected a list of terms"))


def test_vocabulary_file_missing(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, probes="probes:\n  concepts: {vocabulary: ./nope.yaml}\n")
    assert_refused(run("validate", str(spec)), tmp_path, *one(
        f"{spec}:6: probes.concepts.vocabulary: ./nope.yaml: vocabulary file not found"))


def test_vocabulary_file_empty(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, probes="probes:\n  concepts: {vocabulary: ./v0.yaml}\n")
    (tmp_path / "v0.yaml").write_text("")
    assert_refused(run("validate", str(spec)), tmp_path, *one(
        f"{spec}:6: probes.concepts.vocabulary: ./v0.yaml: the file is empty; expected a "
        "mapping of category: [terms]"))


def test_vocabulary_file_malformed(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, probes="probes:\n  concepts: {vocabulary: ./bad.yaml}\n")
    (tmp_path / "bad.yaml").write_text("animals: [cat, dog\n")
    assert_refused(run("validate", str(spec)), tmp_path, *one(
        f"{spec}:6: probes.concepts.vocabulary: ./bad.yaml:2: YAML syntax error: expected "
        "',' or ']', but got '<stream end>'"))


def test_template_without_term(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, probes="probes:\n  concepts: {vocabulary: ./vocab.yaml, "
                                       "template: 'The concept is'}\n")
    assert_refused(run("validate", str(spec)), tmp_path, *one(
        f"{spec}:6: probes.concepts.template: must contain the placeholder {{term}}"))


def test_check_naming_an_unknown_metric(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, extra="checks:\n  - {metric: concepts.cosine_distanse.mean, "
                                      "fail_if: '> 0.2'}\n")
    assert_refused(run("validate", str(spec)), tmp_path, *one(
        f"{spec}:8: checks[0].metric: unknown metric 'concepts.cosine_distanse.mean'. Did you "
        "mean: concepts.cosine_distance.mean, concepts.cosine_distance.median, "
        "concepts.cosine_distance.max?"))


def test_check_naming_an_unknown_candidate(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, extra="checks:\n  - {metric: concepts.cosine_distance.mean, "
                                      "candidate: fx, fail_if: '> 0.2'}\n")
    assert_refused(run("validate", str(spec)), tmp_path, *one(
        f"{spec}:8: checks[0].candidate: unknown candidate 'fx'. Known: ft"))


def test_threshold_that_does_not_parse(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, extra="checks:\n  - {metric: concepts.cosine_distance.mean, "
                                      "fail_if: 'big'}\n")
    assert_refused(run("validate", str(spec)), tmp_path, *one(
        f"{spec}:8: checks[0].fail_if: cannot parse condition 'big': expected an operator "
        "(>, >=, <, <=, ==, !=) and a number, e.g. '> 0.2'"))


def test_duplicate_model_names(tmp_path: Path) -> None:
    ft = TINY["tiny-gpt2-ft"]
    models = (f"models:\n  base: {{path: {TINY['tiny-gpt2']}}}\n  candidates:\n"
              f"    - {{name: ft, path: {ft}}}\n    - {{name: ft, path: {ft}}}\n")
    spec = write_spec(tmp_path, models=models)
    assert_refused(run("validate", str(spec)), tmp_path, *one(
        f"{spec}:6: models.candidates[1].name: duplicate model name 'ft'; "
        "models.candidates[0] already uses it"))


# ---------------------------------------------------------------------------------------------
# Models


def test_model_path_missing(tmp_path: Path, tiny_models) -> None:
    spec = write_spec(tmp_path, base="./missing", cand=str(tiny_models["tiny-gpt2-ft"]))
    assert_refused(run("audit", str(spec)), tmp_path, *one(
        f"{spec}:3: models.base.path: model folder './missing' does not exist"))


def test_folder_without_a_config(tmp_path: Path, tiny_models) -> None:
    (tmp_path / "noconfig").mkdir()
    (tmp_path / "noconfig" / "README.md").write_text("hi\n")
    spec = write_spec(tmp_path, base=str(tiny_models["tiny-gpt2"]), cand="./noconfig")
    assert_refused(run("audit", str(spec)), tmp_path, *one(
        f"{spec}:4: models.candidates[0].path: './noconfig' has no config.json; expected a "
        "transformers model folder"))


def test_config_without_weights(tmp_path: Path, tiny_models) -> None:
    m = copy_model(tiny_models["tiny-gpt2"], tmp_path / "noweights")
    (m / "model.safetensors").unlink()
    spec = write_spec(tmp_path, base=str(tiny_models["tiny-gpt2"]), cand="./noweights")
    assert_refused(run("audit", str(spec)), tmp_path, *one(
        f"{spec}:4: models.candidates[0].path: './noweights' has a config but no weights "
        "(*.safetensors)"))


def test_truncated_safetensors(tmp_path: Path, tiny_models) -> None:
    m = copy_model(tiny_models["tiny-gpt2"], tmp_path / "trunc")
    data = (m / "model.safetensors").read_bytes()
    (m / "model.safetensors").write_bytes(data[: len(data) // 2])
    spec = write_spec(tmp_path, base=str(tiny_models["tiny-gpt2"]), cand="./trunc")
    assert_refused(run("audit", str(spec)), tmp_path, *one(
        f"{spec}:4: models.candidates[0].path: ./trunc/model.safetensors is truncated or "
        "corrupt (Error while deserializing header: incomplete metadata, file not fully "
        "covered)"))


def test_corrupt_safetensors(tmp_path: Path, tiny_models) -> None:
    m = copy_model(tiny_models["tiny-gpt2"], tmp_path / "corrupt")
    data = (m / "model.safetensors").read_bytes()
    (m / "model.safetensors").write_bytes(data[:8] + b"#" * 16 + data[24:])
    spec = write_spec(tmp_path, base=str(tiny_models["tiny-gpt2"]), cand="./corrupt")
    assert_refused(run("audit", str(spec)), tmp_path, *one(
        f"{spec}:4: models.candidates[0].path: ./corrupt/model.safetensors is truncated or "
        "corrupt (Error while deserializing header: invalid JSON in header: expected value at "
        "line 1 column 1)"))


def test_nan_weights(tmp_path: Path, tiny_models) -> None:
    m = copy_model(tiny_models["tiny-gpt2"], tmp_path / "nan")
    tensors = load_file(m / "model.safetensors")
    name = next(k for k in sorted(tensors) if k.endswith("attn.c_attn.weight"))
    tensors[name][0, 0] = float("nan")
    save_file(tensors, m / "model.safetensors", metadata={"format": "pt"})
    spec = write_spec(tmp_path, base=str(tiny_models["tiny-gpt2"]), cand="./nan")
    assert_refused(run("audit", str(spec)), tmp_path,
                   "error: models.candidates[0].path: weights of './nan' contain NaN or Inf "
                   f"({name})")


def test_different_architectures(tmp_path: Path, tiny_models) -> None:
    spec = write_spec(tmp_path, base=str(tiny_models["tiny-gpt2"]),
                      cand=str(tiny_models["tiny-distilbert"]))
    assert_refused(run("audit", str(spec)), tmp_path, *one(
        f"{spec}:4: models.candidates[0].path: 'ft' cannot be compared with the base: "
        "architecture GPT2LMHeadModel vs DistilBertForMaskedLM; model_type gpt2 vs distilbert"))


def _other_tokenizer(folder: Path, size: int) -> None:
    """Replace the tokenizer with a byte-level BPE of the same size trained on other text."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=size, special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    corpus = [" ".join(f"q{i * 7 % 997}z{j}x" for j in range(40)) for i in range(400)]
    tok.train_from_iterator(corpus, trainer)
    tok.save(str(folder / "tokenizer.json"))


def test_tokenizers_that_cannot_be_aligned(tmp_path: Path, tiny_models) -> None:
    m = copy_model(tiny_models["tiny-gpt2"], tmp_path / "othertok")
    size = json.loads((m / "config.json").read_text())["vocab_size"]
    _other_tokenizer(m, size)
    spec = write_spec(tmp_path, base=str(tiny_models["tiny-gpt2"]), cand="./othertok")
    assert_refused(run("audit", str(spec)), tmp_path,
                   "error: models.candidates[0].path: the tokenizer of 'ft' shares only 25% of "
                   "the base vocabulary; tokens cannot be aligned")


def test_layer_index_out_of_range(tmp_path: Path, tiny_models) -> None:
    spec = write_spec(tmp_path, base=str(tiny_models["tiny-gpt2"]),
                      cand=str(tiny_models["tiny-gpt2-ft"]), extra="analysis: {layers: [99]}\n")
    assert_refused(run("audit", str(spec)), tmp_path, *one(
        f"{spec}:7: analysis.layers[0]: layer 99 is out of range; base has layers 0..2"))


def _pickled(src: Path, dst: Path) -> Path:
    m = copy_model(src, dst)
    torch.save(load_file(m / "model.safetensors"), m / "pytorch_model.bin")
    (m / "model.safetensors").unlink()
    return m


def test_pickle_weights_without_allow_pickle(tmp_path: Path, tiny_models) -> None:
    _pickled(tiny_models["tiny-gpt2-ft"], tmp_path / "pickled")
    spec = write_spec(tmp_path, base=str(tiny_models["tiny-gpt2"]), cand="./pickled")
    assert_refused(run("audit", str(spec)), tmp_path, *one(
        f"{spec}:4: models.candidates[0].path: './pickled' has only pickle weights "
        "(pytorch_model.bin); convert them to safetensors, or set "
        "models.candidates[0].allow_pickle: true if you trust them (unpickling can run code)"))


def test_trust_remote_code_required_but_not_allowed(tmp_path: Path, tiny_models) -> None:
    m = copy_model(tiny_models["tiny-gpt2-ft"], tmp_path / "remote")
    cfg = json.loads((m / "config.json").read_text())
    cfg["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilModel"}
    (m / "config.json").write_text(json.dumps(cfg))
    (m / "modeling_evil.py").write_text("raise SystemExit('remote code ran')\n")
    spec = write_spec(tmp_path, base=str(tiny_models["tiny-gpt2"]), cand="./remote")
    r = run("audit", str(spec))
    assert "remote code ran" not in r.stderr
    assert_refused(r, tmp_path, *one(
        f"{spec}:4: models.candidates[0].trust_remote_code: 'ft' ('./remote') needs its own "
        "Python code (config.json auto_map); set trust_remote_code: true for this model only "
        "if you trust it"))


def test_hub_id_not_in_the_local_cache(tmp_path: Path, tiny_models) -> None:
    spec = write_spec(tmp_path, base=str(tiny_models["tiny-gpt2"]), cand="acme/not-cached")
    r = run("audit", str(spec), env={"HF_HUB_CACHE": str(tmp_path / "hub")})
    assert_refused(r, tmp_path, *one(
        f"{spec}:4: models.candidates[0].path: 'acme/not-cached' is not a local folder and not "
        f"in the local Hugging Face cache ({tmp_path / 'hub'}); reportgen never downloads "
        "models"))


# ---------------------------------------------------------------------------------------------
# Output


def test_output_folder_not_writable(tmp_path: Path, tiny_models) -> None:
    (tmp_path / "afile").write_text("a file, not a folder\n")
    spec = write_spec(tmp_path, base=str(tiny_models["tiny-gpt2"]),
                      cand=str(tiny_models["tiny-gpt2-ft"]))
    spec.write_text(spec.read_text().replace("dir: ./out", "dir: ./afile/sub"))
    assert_refused(run("audit", str(spec)), tmp_path,
                   f"error: {tmp_path / 'afile' / 'sub'}: output folder is not writable "
                   "(Not a directory)")


def test_disk_full_while_writing(tmp_path: Path, tiny_models, monkeypatch) -> None:
    from reportgen.cli import commands as cli

    spec = write_spec(tmp_path, base=str(tiny_models["tiny-gpt2"]),
                      cand=str(tiny_models["tiny-gpt2-ft"]))
    real_replace = os.replace

    def full(src, dst, *a, **k):  # the atomic rename of a finished file: disk is full
        if Path(dst).name.startswith("certificate"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
        return real_replace(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", full)
    err = io.StringIO()
    with redirect_stderr(err):
        code = cli.main(["audit", "-q", str(spec)])
    assert code == 2, err.getvalue()
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == 1 and re.fullmatch(  # the size depends on the charts
        re.escape(f"error: {tmp_path / 'out'}: no space left on the device for the certificate "
                  "(needs about ") + r"[\d.]+ [kM]B free\)", lines[0]), lines
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file()]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_a_gpu(tmp_path: Path, tiny_models) -> None:
    models = (f"models:\n  base: {{path: {tiny_models['tiny-gpt2']}}}\n"
              f"  candidates: [{{name: ft, path: {tiny_models['tiny-gpt2-ft']}, "
              "device: cuda}]\n")
    spec = write_spec(tmp_path, models=models)
    assert_refused(run("audit", str(spec)), tmp_path,
                   "error: models.candidates[0].device: 'cuda' was asked for 'ft' but no CUDA "
                   "GPU is available; use device: cpu or auto")


# ---------------------------------------------------------------------------------------------
# Sparse autoencoders (checked before any model is loaded)


def _sae_spec(tmp: Path, tiny_models, folder: Path) -> Path:
    return write_spec(tmp, base=str(tiny_models["tiny-gpt2"]),
                      cand=str(tiny_models["tiny-gpt2-ft"]),
                      extra=f"analysis:\n  sae: [{{layer: 1, path: {folder}}}]\n")


def test_sae_of_the_wrong_width(tmp_path: Path, tiny_models) -> None:
    from reportgen.sae import SAE, save_saelens

    g = torch.Generator().manual_seed(0)
    sae = SAE("topk", torch.randn(16, 8, generator=g), torch.randn(8, 16, generator=g),
              torch.zeros(16), b_enc=torch.zeros(8), k=2)
    folder = save_saelens(sae, tmp_path / "sae16", hook_name="blocks.1.hook_resid_post")
    assert_refused(run("audit", str(_sae_spec(tmp_path, tiny_models, folder))), tmp_path,
                   f"error: analysis.sae[0].path: {folder}: SAE has d_in 16 but layer 1 of the "
                   "model has width 32")


def test_sae_folder_of_an_unknown_format(tmp_path: Path, tiny_models) -> None:
    folder = tmp_path / "not-an-sae"
    folder.mkdir()
    (folder / "weights.npz").write_bytes(b"\0")
    assert_refused(run("audit", str(_sae_spec(tmp_path, tiny_models, folder))), tmp_path,
                   f"error: analysis.sae[0].path: {folder}: unknown SAE format: expected "
                   "cfg.json with sae_weights.safetensors (SAELens) or sae.safetensors "
                   "(EleutherAI sparsify)")


def _risk_spec(tmp: Path, pack: str) -> Path:
    return write_spec(tmp, probes="probes:\n  concepts: {vocabulary: ./vocab.yaml}\n"
                                  f"  risk: [{{name: advice, prompts: {pack}}}]\n")


def test_risk_pack_malformed_line(tmp_path: Path) -> None:
    (tmp_path / "risk.jsonl").write_text(
        '{"prompt": "Q:", "safe": [" A."], "unsafe": [" B."]}\n{"prompt": "Q:", "safe": []}\n')
    spec = _risk_spec(tmp_path, "./risk.jsonl")
    pack = tmp_path / "risk.jsonl"
    assert_refused(run("validate", str(spec)), tmp_path, *one(
        f"{spec}:7: probes.risk[0].prompts: {pack}:2: expected {{\"prompt\": str, \"safe\": "
        "[str, ...], \"unsafe\": [str, ...]} with non-empty lists"))


def test_risk_pack_missing(tmp_path: Path) -> None:
    spec = _risk_spec(tmp_path, "./nope.jsonl")
    r = run("validate", str(spec))
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and "probes.risk[0].prompts" in errors[0], r.stderr
    assert "nope.jsonl" in errors[0]
