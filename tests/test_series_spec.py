"""A series in the spec: how its steps are read, and every mistake located, all at once."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from reportgen.core.errors import SpecError
from reportgen.spec.load import load_spec
from reportgen.spec.series import Series


def _spec(tmp: Path, base: Path, candidates: list, checks: list | None = None) -> Path:
    (tmp / "vocab.yaml").write_text(json.dumps({"animals": ["cat", "dog"]}))
    lines = ["audit: {name: run}", "models:", f"  base: {{path: {base}}}", "  candidates:"]
    lines += [f"    - {json.dumps(c)}" for c in candidates]
    lines += ["probes:", "  concepts: {vocabulary: vocab.yaml}", "checks:"]
    lines += [f"  - {json.dumps(c)}" for c in checks or [
        {"metric": "concepts.cosine_distance.mean", "fail_if": "> 1"}]]
    path = tmp / "spec.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _problems(path: Path, models: bool = True) -> list[str]:
    with pytest.raises(SpecError) as err:
        load_spec(path, models=models)
    return str(err.value).splitlines()


def _run(tmp: Path, series: Path, steps: list[str]) -> Path:
    """A run folder holding copies of one checkpoint under each of the names given."""
    run = tmp / "out"
    for name in steps:
        shutil.copytree(series / "checkpoint-100", run / name)
    return run


def test_glob_sorted_by_step_number(tiny_models, tiny_series, tmp_path) -> None:
    """checkpoint-1000 sorts after checkpoint-200 (by number, not by name)."""
    _run(tmp_path, tiny_series, ["checkpoint-1000", "checkpoint-200", "checkpoint-300"])
    loaded = load_spec(_spec(tmp_path, tiny_models["tiny-gpt2"], [
        {"name": "run", "series": "./out/checkpoint-*"}]), models=True)
    assert loaded.series == (Series("run", ((200, "run@200"), (300, "run@300"),
                                            (1000, "run@1000"))),)
    assert [(c.name, c.path) for c in loaded.spec.models.candidates] == [
        ("run@200", "out/checkpoint-200"), ("run@300", "out/checkpoint-300"),
        ("run@1000", "out/checkpoint-1000")]
    assert loaded.normalised["models"]["candidates"][0]["series"] == "./out/checkpoint-*"


def test_list_with_adapters_over_the_candidates_path(tiny_models, tmp_path) -> None:
    """In a list a step without a path takes the candidate's: a LoRA run's adapters."""
    loaded = load_spec(_spec(tmp_path, tiny_models["tiny-gpt2"], [
        {"name": "lora", "path": str(tiny_models["tiny-gpt2"]),
         "series": [{"step": 20, "adapter": "a20"}, {"step": 10, "adapter": "a10"}]}]))
    assert [(c.name, c.path, c.adapter) for c in loaded.spec.models.candidates] == [
        ("lora@10", str(tiny_models["tiny-gpt2"]), "a10"),
        ("lora@20", str(tiny_models["tiny-gpt2"]), "a20")]


def test_series_mistakes_all_at_once(tiny_models, tiny_series, tmp_path) -> None:
    _run(tmp_path, tiny_series, ["checkpoint-100", "checkpoint-final"])
    shutil.copytree(tiny_models["tiny-distilbert"], tmp_path / "out" / "checkpoint-200")
    base = tiny_models["tiny-gpt2"]
    path = _spec(tmp_path, base, [
        {"name": "run", "series": "./out/checkpoint-*"},
        {"name": "none", "series": "./nowhere/checkpoint-*"},
        {"name": "dup", "series": [{"step": 5, "path": str(base)}, {"step": 5, "path": str(base)}]},
        {"name": "word", "series": [{"step": "five", "path": str(base)}]},
        {"name": "floor", "series": [{"step": 1, "path": str(base)}], "role": "noise_floor"},
        {"name": "bare", "series": [{"step": 1}]},
    ], checks=[
        {"metric": "concepts.cosine_distance.mean", "fail_if": "> 1"},
        {"id": "a", "metric": "concepts.cosine_distance.mean", "candidate": "dup",
         "step": 7, "fail_if": "> 1"},
        {"id": "b", "metric": "concepts.cosine_distance.mean", "step": "final",
         "fail_if": "> 1"},
        {"id": "c", "metric": "concepts.cosine_distance.mean", "candidate": "dup",
         "step": "final", "fail_if_onset_before": 5, "warn_if": "> 1"},
    ])
    assert _problems(path) == [
        f"{path}:5: models.candidates[0].series: cannot read a step number from folder "
        "'checkpoint-final'; expected a name ending in digits, such as checkpoint-500",
        f"{path}:5: models.candidates[0].series: 'run@200' cannot be compared with the base: "
        "architecture GPT2LMHeadModel vs DistilBertForMaskedLM; model_type gpt2 vs distilbert",
        f"{path}:6: models.candidates[1].series: './nowhere/checkpoint-*' matches no folder",
        f"{path}:7: models.candidates[2].series[1]: duplicate step 5; "
        "models.candidates[2].series[0] already has it",
        f"{path}:8: models.candidates[3].series[0].step: expected a whole number, got 'five'",
        f"{path}:9: models.candidates[4].role: a series is audited as a candidate; "
        "a noise floor is one model",
        f"{path}:10: models.candidates[5].series[0]: has no path, and the candidate names "
        "none; expected a path here or on the candidate",
        f"{path}:15: checks[1].step: series 'dup' has no step 7; its steps: 5",
        f"{path}:16: checks[2].step: judges a series, and the check names no candidate; "
        "expected candidate: a series (series: run, none, dup, word, floor, bare)",
        f"{path}:17: checks[3].step: an onset condition judges every step; "
        "remove step or the onset condition",
    ]


def test_glob_of_adapters_over_the_candidates_path_and_a_derived_step(tmp_path) -> None:
    """With a path on the candidate, the globbed folders are adapters over it; a variant
    may derive from one step by its NAME@STEP."""
    (tmp_path / "base").mkdir()
    for step in (20, 10):
        (tmp_path / "out" / f"checkpoint-{step}").mkdir(parents=True)
    loaded = load_spec(_spec(tmp_path, tmp_path / "base", [
        {"name": "lora", "path": "./base", "series": "./out/checkpoint-*", "dtype": "bfloat16"},
        {"name": "lora-int8", "derive": {"from": "lora@20", "quantize": "int8"},
         "role": "noise_floor"}]), models=False)
    assert [(c.name, c.path, c.adapter, c.dtype) for c in loaded.spec.models.candidates] == [
        ("lora@10", "./base", "out/checkpoint-10", "bfloat16"),
        ("lora@20", "./base", "out/checkpoint-20", "bfloat16"),
        ("lora-int8", None, None, "float32")]


def test_glob_with_wildcards_in_a_parent_folder_names_the_real_folders(tiny_models, tiny_series,
                                                                       tmp_path) -> None:
    """``runs/*/checkpoint-*`` gives each match's own folder (not ``runs/*/checkpoint-N``)."""
    run = _run(tmp_path, tiny_series, ["checkpoint-100"])
    (tmp_path / "runs").mkdir()
    run.rename(tmp_path / "runs" / "a")
    loaded = load_spec(_spec(tmp_path, tiny_models["tiny-gpt2"], [
        {"name": "run", "series": "runs/*/checkpoint-*"}]), models=True)
    assert [(c.name, c.path) for c in loaded.spec.models.candidates] == [
        ("run@100", "runs/a/checkpoint-100")]


def test_a_step_named_like_another_candidate_is_refused(tiny_models, tiny_series,
                                                        tmp_path) -> None:
    """``run@100`` written as a candidate and made by series ``run``: two models, one name."""
    _run(tmp_path, tiny_series, ["checkpoint-100"])
    base = tiny_models["tiny-gpt2"]
    path = _spec(tmp_path, base, [{"name": "run@100", "path": str(base)},
                                  {"name": "run", "series": "./out/checkpoint-*"}])
    assert _problems(path) == [
        f"{path}:6: models.candidates[1].name: step 'run@100' of this series has the name of "
        "models.candidates[0]; rename one"]
