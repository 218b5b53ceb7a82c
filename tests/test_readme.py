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
from reportgen.errors import SpecError
from reportgen.specload import load_spec

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
    said = re.search(r"\(`(checks\[0\]\.metric: probes\.concepts is not set[^`]*)`\)", README)
    spec["checks"][0]["metric"] = "concepts.cosine_distance.mean"
    with pytest.raises(SpecError) as err:
        load_spec(spec)
    assert str(err.value) == f"<dict>: {said.group(1)}"


def test_readme_commands_in_the_table_exist() -> None:
    for cmd in re.findall(r"^\| `reportgen (\w+)", README, flags=re.M):
        r = subprocess.run([sys.executable, "-m", "reportgen", cmd, "--help"],
                           capture_output=True, text=True)
        assert r.returncode == 0, cmd


def test_readme_python_example_runs(demo_root: Path, monkeypatch, tmp_path: Path) -> None:
    code = _blocks("python")[0]
    monkeypatch.chdir(REPO)
    code = code.replace('"out/notebook"', repr(str(tmp_path / "notebook")))
    exec(compile(code, "README.md", "exec"), {})
    assert (tmp_path / "notebook" / "certificate.html").is_file()


def test_readme_images_exist() -> None:
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README)
    assert images
    for path in images:
        assert (REPO / path).is_file(), path
        assert (REPO / path).stat().st_size < 300_000, f"{path}: keep README images small"
