"""The README's examples run, so they cannot drift from the code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from reportgen.specload import load_spec, resolve_path

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
