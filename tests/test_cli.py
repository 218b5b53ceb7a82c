"""The command line as a user meets it: exit codes, one-line errors, no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reportgen", *args], capture_output=True,
                          text=True, cwd=cwd or REPO, timeout=600)


def test_help_does_not_import_heavy_libraries() -> None:
    code = ("import sys; from reportgen.cli.commands import build_parser; build_parser(); "
            "import reportgen.cli, reportgen.spec.load, reportgen.core.names, reportgen.families; "
            "heavy = [m for m in ('torch', 'transformers', 'umap') if m in sys.modules]; "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stderr
    r = run("--help")
    assert r.returncode == 0 and "audit" in r.stdout and "validate" in r.stdout


def test_validate_does_not_import_heavy_libraries(demo_root: Path) -> None:
    """validate reads the demo models' configs and tokenizers (the demo must exist), never
    their weights: no torch, no transformers."""
    code = ("import sys; from reportgen.cli import main; "
            f"rc = main(['validate', {str(REPO / 'specs' / 'demo.yaml')!r}]); "
            "print(rc, [m for m in ('torch', 'transformers', 'umap') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO)
    assert out.stdout.strip().splitlines()[-1] == "0 []", out.stderr


def test_schema_is_json_schema() -> None:
    r = run("schema")
    assert r.returncode == 0
    schema = json.loads(r.stdout)
    assert schema["title"] == "reportgen audit spec"
    assert "checks" in schema["properties"]


def test_validate_reports_every_problem_with_exit_2(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(
        "audit: {name: x}\n"
        "models:\n"
        "  base: {path: ./b}\n"
        "  candidates:\n"
        "    - {name: ft, path: ./ft}\n"
        "probes:\n"
        "  concepts: {vocabulary: builtin:concepts, template: 'no placeholder'}\n"
        "checks:\n"
        "  - {metirc: concepts.cosine_distance.mean, fail_if: '> 0.2'}\n"
        "  - {metric: concepts.cosine_distanse.mean, candidate: fx, fail_if: 'big'}\n"
    )
    r = run("validate", str(spec))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) >= 5, r.stderr
    text = r.stderr
    assert f"{spec}:7: probes.concepts.template:" in text
    assert f"{spec}:9: checks[0].metirc: unknown key 'metirc'. Did you mean 'metric'?" in text
    assert f"{spec}:10: checks[1].metric:" in text and "concepts.cosine_distance.mean" in text
    assert f"{spec}:10: checks[1].candidate:" in text
    assert f"{spec}:10: checks[1].fail_if:" in text


def test_audit_bad_model_path_is_one_line_exit_2(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "audit: {name: x}\n"
        "models:\n  base: {path: ./missing}\n  candidates: [{name: ft, path: ./missing2}]\n"
        "probes:\n  concepts: {vocabulary: builtin:concepts}\n"
        f"output: {{dir: {tmp_path / 'out'}}}\n"
    )
    r = run("audit", str(spec))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"error: {spec}:3: models.base.path: model folder './missing' does not exist",
        f"error: {spec}:4: models.candidates[0].path: model folder './missing2' does not exist",
        "2 problems found; nothing was run."]
    assert not any((tmp_path / "out").glob("certificate.*"))


@pytest.mark.parametrize("fail_if,code", [("> 1000", 0), ("> 0", 1)])
def test_audit_exit_codes(tiny_models, tmp_path: Path, fail_if: str, code: int) -> None:
    (tmp_path / "v.yaml").write_text("a: [cat, dog]\nb: [bank, loan]\n")
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "audit: {name: cli, release: r1, created: 2026-01-01}\n"
        f"models:\n  base: {{path: {tiny_models['tiny-gpt2']}}}\n"
        f"  candidates: [{{name: ft, path: {tiny_models['tiny-gpt2-ft']}}}]\n"
        "probes:\n  concepts: {vocabulary: v.yaml}\n"
        "checks:\n"
        f"  - {{metric: concepts.cosine_distance.mean, fail_if: '{fail_if}'}}\n"
        "output: {dir: out, formats: [json, html]}\n"
    )
    r = run("audit", str(spec))
    assert r.returncode == code, r.stderr
    assert (tmp_path / "out" / "certificate.json").is_file()
    assert (tmp_path / "out" / "certificate.html").is_file()
    assert not (tmp_path / "out" / "certificate.pdf").exists()
    # progress is shown: a capture, or a cache hit when the other case ran first
    assert "capture ft" in r.stderr or "ft: capture found in cache" in r.stderr
    assert ("FAIL" if code else "PASS") in r.stdout
