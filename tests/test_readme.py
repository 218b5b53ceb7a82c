"""The README's examples run, so they cannot drift from the code."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

import reportgen
from reportgen.core.errors import SpecError
from reportgen.spec.load import load_spec
from reportgen.spec.yamlsrc import resolve_path

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_readme_starts_with_the_two_commands() -> None:
    first = _blocks("console")[0]
    assert first.splitlines()[0].startswith("make demo")
    assert first.splitlines()[1].startswith("make test")


def test_readme_spec_example_is_valid() -> None:
    spec = yaml.safe_load(_blocks("yaml")[0])
    loaded = load_spec(spec)
    assert loaded.spec.checks[0].metric == "concepts.cosine_distance.mean"


def test_readme_validate_example_prints_what_it_shows(tmp_path: Path) -> None:
    bad = next(b for b in _blocks("yaml") if b.startswith("# bad.yaml"))
    (tmp_path / "bad.yaml").write_text(bad)
    shown = next(b for b in _blocks("console") if b.startswith("$ reportgen validate bad.yaml"))
    expected = shown.splitlines()[1:]
    r = subprocess.run([sys.executable, "-m", "reportgen", "validate", "bad.yaml"],
                       cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.splitlines() == expected


def test_readme_spec_without_concepts_runs(tiny_models, tmp_path: Path) -> None:
    block = next(textwrap.dedent(b) for b in _blocks("yaml")
                 if b.lstrip().startswith("# next-token.yaml"))
    spec = yaml.safe_load(block)
    spec["models"]["base"]["path"] = str(tiny_models["tiny-gpt2"])
    spec["models"]["candidates"][0]["path"] = str(tiny_models["tiny-gpt2-ft"])
    spec["analysis"] = {"max_length": 48, "bootstrap": 20}  # the tiny model reads 64 positions
    (tmp_path / "support-tickets.txt").write_text(
        "My order has not arrived yet.\nHow do I reset my password?\nThe app crashes on start.\n")
    (tmp_path / "next-token.yaml").write_text(yaml.safe_dump(spec))
    cert = reportgen.audit(str(tmp_path / "next-token.yaml"), progress=False)
    families = {n.split(".", 1)[0] for n in cert.comparison("finetuned")["metrics"]}
    assert families == {"embeddings", "neighbors", "cka", "weights", "domains", "probabilities"}
    assert not [n for n in cert.comparison("finetuned")["metrics"] if ".concepts." in n]
    assert [c["value"] == cert.metric("finetuned", c["metric"]) is not None
            for c in cert.checks] == [True, True]  # measured (PASS or FAIL), never ERROR
    said = re.search(r"\(`(checks\[0\]\.metric: 'concepts[^`]*)`\)", README)
    spec["checks"][0]["metric"] = "concepts.cosine_distance.mean"
    spec["probes"]["domains"][0]["texts"] = str(tmp_path / "support-tickets.txt")
    with pytest.raises(SpecError) as err:
        load_spec(spec)
    assert str(err.value) == "<dict>: " + " ".join(said.group(1).split())


#: each item of the README's "It checks:" list (its first words), and the tests that hold it
VALIDATE_CHECKS = {
    "the spec's keys, types and values": [
        "test_hostile_inputs.py::test_unknown_key", "test_hostile_inputs.py::test_wrong_type"],
    "model and adapter folders": [
        "test_validate.py::test_every_model_problem_in_one_run",
        "test_hostile_inputs.py::test_config_without_weights",
        "test_hostile_inputs.py::test_pickle_weights_without_allow_pickle",
        "test_hostile_inputs.py::test_trust_remote_code_required_but_not_allowed"],
    "that base and candidates can be compared": [
        "test_hostile_inputs.py::test_different_architectures"],
    "that the model kind can run what the spec asks": [
        "test_validate.py::test_encoder_without_head_and_unreadable_terms"],
    "layers (`analysis.layers`, `analysis.sae`) and `analysis.max_length`": [
        "test_validate.py::test_every_model_problem_in_one_run",
        "test_validate.py::test_default_max_length_is_capped_at_the_model"],
    "the vocabulary, domain texts and risk packs": [
        "test_specload.py::test_every_vocabulary_problem_with_every_other_problem",
        "test_specload.py::test_every_bad_line_of_domain_texts_and_risk_packs"],
    "concept terms the tokenizer reads as unknown tokens only": [
        "test_validate.py::test_encoder_without_head_and_unreadable_terms",
        "test_validate.py::test_term_tokens_are_the_tokens_transformers_reads"],
    "`probes.chat_template`": [
        "test_instruct_pair.py::test_validate_refuses_true_without_a_template",
        "test_instruct_pair.py::test_validate_refuses_true_on_a_masked_lm",
        "test_instruct_pair.py::test_validate_names_the_template_and_refuses_one_it_cannot_"
        "reproduce"],
    "each check": [
        "test_metricnames.py::test_names_the_spec_does_not_define_are_all_reported",
        "test_hostile_inputs.py::test_check_naming_an_unknown_metric"],
}


def test_readme_validate_list_is_held_by_tests() -> None:
    """Every item the README says validate checks has tests asserting its messages, and
    no item goes unlisted: change the list and this mapping together."""
    listed = re.search(r"It checks:\n\n((?:- .*\n(?:  .*\n)*)+)", README).group(1)
    items = [" ".join(item.split()) for item in re.split(r"^- ", listed, flags=re.M)[1:]]
    assert len(items) == len(VALIDATE_CHECKS)
    for item, start in zip(items, VALIDATE_CHECKS, strict=True):
        assert item.startswith(start), (item, start)
        for test in VALIDATE_CHECKS[start]:
            file, name = test.split("::")
            assert f"def {name}(" in (REPO / "tests" / file).read_text(), test


def test_readme_commands_in_the_table_exist() -> None:
    for cmd in re.findall(r"^\| `reportgen (\w+)", README, flags=re.M):
        r = subprocess.run([sys.executable, "-m", "reportgen", cmd, "--help"],
                           capture_output=True, text=True)
        assert r.returncode == 0, cmd


def test_readme_python_example_runs(demo_root: Path, monkeypatch, tmp_path: Path,
                                    capsys) -> None:
    """It runs, prints the "did you mean" its comment shows, and writes only where it saves
    (not the spec's output.dir: reportgen.audit writes nothing unless asked)."""
    code = _blocks("python")[0]
    monkeypatch.chdir(REPO)
    demo = load_spec(REPO / "specs" / "demo.yaml")
    out_dir = resolve_path(demo.spec.output.dir, demo.base_dir)
    before = {p: p.stat().st_mtime_ns for p in out_dir.rglob("*")} if out_dir.exists() else {}
    code = code.replace('"out/notebook"', repr(str(tmp_path / "notebook")))
    exec(compile(code, "README.md", "exec"), {})
    assert (tmp_path / "notebook" / "certificate.html").is_file()
    after = {p: p.stat().st_mtime_ns for p in out_dir.rglob("*")} if out_dir.exists() else {}
    assert after == before
    shown = re.search(r"print\(e\)  # (.*)", code).group(1)
    assert shown in capsys.readouterr().out.splitlines()


def test_readme_images_exist() -> None:
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README)
    assert images
    for path in images:
        assert (REPO / path).is_file(), path
        assert (REPO / path).stat().st_size < 300_000, f"{path}: keep README images small"


def test_readme_verify_examples_print_what_they_show(tmp_path: Path, monkeypatch, capsys
                                                     ) -> None:
    """The README's verify transcript, replayed on a folder built as it describes: a signed
    audit output whose HTML page was replaced; digests and key ids shown shortened."""
    import json as _json
    from dataclasses import asdict

    from certfactory import CHECK_PLAN, make_certificate

    from reportgen.api import Certificate
    from reportgen.cli import commands as cli
    from reportgen.release.signing import generate_keypair
    from reportgen.release.write import write_outputs
    from reportgen.spec.digest import digest_folder

    ft = tmp_path / "checkpoints" / "ft"
    ft.mkdir(parents=True)
    for name, text in (("config.json", '{"model_type": "gpt2"}'), ("tokenizer.json", "{}"),
                       ("model.safetensors", "weights")):
        (ft / name).write_text(text)
    data = make_certificate(n_concepts=12, noise_floor=False, checks=CHECK_PLAN[3:5])
    next(m for m in data["models"] if m["name"] == "finetuned")["digest"] = \
        _json.loads(_json.dumps(asdict(digest_folder(ft))))
    keys = generate_keypair(tmp_path / "keys")
    out = tmp_path / "out" / "v1.3"
    write_outputs(Certificate(data), out, ["json", "html", "model-card"], sign=keys.private)
    (out / "certificate.html").write_text("<!doctype html><title>PASS</title><p>PASS</p>\n")

    block = next(b for b in _blocks("console") if b.startswith("$ reportgen verify"))
    runs = re.split(r"^\$ ", block, flags=re.M)[1:]
    monkeypatch.chdir(tmp_path)
    for run in runs:
        command, *shown = run.splitlines()
        argv = command.split()[1:]
        assert cli.main(argv) == 1, command
        printed = capsys.readouterr().out.splitlines()
        assert [re.sub(r"[0-9a-f]{64}", "HEX", line) for line in printed] == \
            [re.sub(r"[0-9a-f]{4}…", "HEX", line) for line in shown], command


def test_readme_series_example_loads(tmp_path: Path) -> None:
    """The series example's glob, sorted by step; its checks on the series validate."""
    block = next(b for b in _blocks("yaml") if b.startswith("# series.yaml"))
    (tmp_path / "checkpoints" / "base").mkdir(parents=True)
    for step in (1000, 500):
        (tmp_path / "out" / f"checkpoint-{step}").mkdir(parents=True)
    spec = tmp_path / "series.yaml"
    spec.write_text(block)
    loaded = load_spec(spec)
    assert [c.name for c in loaded.spec.models.candidates] == ["run@500", "run@1000",
                                                               "base-int8"]
    assert [c.step for c in loaded.spec.checks] == [None, "final", None]
