"""Signing, PDF attachment, model card and archive, wired through a real audit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reportgen", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=600)


def _spec(tmp: Path, tiny: dict[str, Path], release: str) -> Path:
    (tmp / "v.yaml").write_text("a: [cat, dog]\nb: [bank, loan]\n")
    spec = tmp / f"{release}.yaml"
    spec.write_text(
        f"audit: {{name: signed, release: {release}, created: 2026-02-03}}\n"
        f"models:\n  base: {{path: {tiny['tiny-gpt2']}}}\n"
        f"  candidates: [{{name: ft, path: {tiny['tiny-gpt2-ft']}}}]\n"
        "probes:\n  concepts: {vocabulary: v.yaml}\n"
        "checks:\n  - {metric: concepts.cosine_distance.mean, fail_if: '> 1000'}\n"
        f"output: {{dir: out-{release}, formats: [json, pdf, model-card]}}\n"
    )
    return spec


def test_signed_audit_verifies_and_tampering_is_caught(tiny_models, tmp_path: Path) -> None:
    assert cli("keygen", "--out", "keys", cwd=tmp_path).returncode == 0
    spec = _spec(tmp_path, tiny_models, "r1")
    r = cli("audit", str(spec), "--sign", "keys/private.pem", "--archive", "archive",
            cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out-r1"
    names = sorted(p.name for p in out.iterdir())
    assert names == ["certificate.json", "certificate.pdf", "certificate.sig.json",
                     "model-card.md"]
    card = (out / "model-card.md").read_text()
    digest = json.loads((out / "certificate.json").read_text())["models"][0]["digest"]["root"]
    assert "PASS" in card
    model_arg = f"base={tiny_models['tiny-gpt2']}"
    ok = cli("verify", str(out), "--public-key", "keys/public.pem", "--model", model_arg,
             cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # the PDF alone carries the JSON and the signature
    alone = cli("verify", str(out / "certificate.pdf"), "--public-key", "keys/public.pem",
                cwd=tmp_path)
    assert alone.returncode == 0, alone.stdout + alone.stderr
    assert (tmp_path / "archive" / "index.html").is_file()
    # one byte changed in the JSON: verify fails and says so
    original = (out / "certificate.json").read_text()
    edited = digest[:-1] + ("1" if digest.endswith("0") else "0")  # never a no-op
    raw = original.replace(digest, edited, 1)
    assert raw != original
    (out / "certificate.json").write_text(raw)
    bad = cli("verify", str(out), "--public-key", "keys/public.pem", cwd=tmp_path)
    assert bad.returncode == 1
    assert "certificate.json" in bad.stdout + bad.stderr


def test_bad_signing_key_fails_before_any_work(tiny_models, tmp_path: Path) -> None:
    spec = _spec(tmp_path, tiny_models, "r2")
    (tmp_path / "key.pem").write_text("not a key")
    r = cli("audit", str(spec), "--sign", "key.pem", cwd=tmp_path)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert "key.pem" in r.stderr
    assert not (tmp_path / "out-r2").exists()
