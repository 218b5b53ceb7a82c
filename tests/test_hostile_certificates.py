"""Files from outside are never trusted as they come (issue 15): one test per attack.

Each test does what a hostile vendor did: hands over a certificate folder, PDF or JSON, and
the auditor runs ``render``, ``verify``, ``archive add`` or ``modelcard`` on it. Each asserts
the exit code and the exact line, and that nothing was written where it should not be.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from certfactory import make_certificate

from reportgen.api import Certificate
from reportgen.cli import commands as cli
from reportgen.release.write import render_outputs

LINK = ("is a symbolic link; reportgen reads only regular files from a certificate folder and "
        "never follows links there")


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def vendor_folder(root: Path, data: dict[str, Any] | None = None, raw: str | None = None
                  ) -> Path:
    """A vendor's audit output folder holding ``certificate.json``."""
    folder = root / "from-vendor"
    folder.mkdir(parents=True, exist_ok=True)
    text = raw if raw is not None else Certificate(data or make_certificate()).to_json()
    (folder / "certificate.json").write_text(text, encoding="utf-8")
    return folder


def tree(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with its bytes (None for a folder), to compare states."""
    return {p.relative_to(root).as_posix(): (p.read_bytes() if p.is_file() else None)
            for p in sorted(root.rglob("*"))} if root.exists() else {}


# ------------------------------------------------------------------ archive add: views


def test_archive_renders_its_own_html_not_the_vendors(tmp_path: Path, capsys) -> None:
    src = vendor_folder(tmp_path)
    (src / "certificate.html").write_text("<html><script>fetch('https://evil.example')"
                                          "</script></html>")
    (src / "model-card.md").write_text("<img src=x onerror=alert(1)>\n")
    code, out, _ = run(["archive", "add", str(tmp_path / "a"), str(src)], capsys)
    assert code == 0, out
    filed = tmp_path / "a" / "releases" / "v1.3"
    ours = render_outputs(Certificate.from_json(src), ["html", "model-card"])
    assert (filed / "certificate.html").read_bytes() == ours["html"]
    assert (filed / "model-card.md").read_bytes() == ours["model-card"]
    assert b"evil.example" not in (filed / "certificate.html").read_bytes()
    assert sorted(p.name for p in filed.iterdir()) == [
        "certificate.html", "certificate.json", "model-card.md"]


@pytest.mark.parametrize("name", ["certificate.pdf", "certificate.html", "certificate.json",
                                  "certificate.sig.json"])
def test_archive_refuses_a_symlinked_file(tmp_path: Path, capsys, name: str) -> None:
    src = vendor_folder(tmp_path)
    target = src / name
    if target.exists():
        os.replace(target, tmp_path / "real")
        target.symlink_to(tmp_path / "real")
    else:
        target.symlink_to("/etc/hostname")
    code, out, err = run(["archive", "add", str(tmp_path / "a"), str(src)], capsys)
    assert (code, out, err) == (2, "", f"error: {target}: {LINK}\n")
    assert not (tmp_path / "a").exists()


def test_archive_refuses_a_symlinked_dictionary_folder(tmp_path: Path, capsys) -> None:
    data = make_certificate()
    data["analysis"]["sae"] = {"layers": {"2": {"saved_as": "trained-sae/layer2"}}}
    src = vendor_folder(tmp_path, data)
    (src / "trained-sae").mkdir()
    (src / "trained-sae" / "layer2").symlink_to(Path.home())
    code, _, err = run(["archive", "add", str(tmp_path / "a"), str(src)], capsys)
    assert (code, err) == (2, f"error: {src / 'trained-sae' / 'layer2'}: {LINK}\n")
    assert not (tmp_path / "a").exists()


def test_render_refuses_a_symlinked_signature(tmp_path: Path, capsys) -> None:
    """render used to attach a symlinked certificate.sig.json (any local file) to the PDF."""
    src = vendor_folder(tmp_path)
    (tmp_path / "secret.json").write_text('{"token": "local secret"}')
    (src / "certificate.sig.json").symlink_to(tmp_path / "secret.json")
    out_dir = tmp_path / "out"
    code, out, err = run(["render", str(src), "--out", str(out_dir), "--formats", "json"],
                         capsys)
    assert (code, out, err) == (2, "", f"error: {src / 'certificate.sig.json'}: {LINK}\n")
    assert not out_dir.exists()


# ----------------------------------------------------- archive add: all or nothing


def test_a_malformed_certificate_leaves_the_archive_byte_identical(tmp_path: Path,
                                                                    capsys) -> None:
    good = vendor_folder(tmp_path / "one")
    arch = tmp_path / "a"
    assert run(["archive", "add", str(arch), str(good)], capsys)[0] == 0
    before = tree(arch)
    data = make_certificate()
    data["audit"]["release"] = "v1.4"
    del data["models"][0]["digest"]  # the index rebuild used to fail here, and forever after
    bad = vendor_folder(tmp_path / "two", raw=json.dumps(data, indent=2))
    code, out, err = run(["archive", "add", str(arch), str(bad)], capsys)
    assert (code, out) == (2, "")
    assert err == (f"error: {bad / 'certificate.json'}: not a valid certificate: $.models[0]: "
                   "'digest' is a required property\n")
    assert tree(arch) == before
    later = make_certificate(seed=2)
    later["audit"]["release"] = "v1.5"
    assert run(["archive", "add", str(arch), str(vendor_folder(tmp_path / "three", later))],
               capsys)[0] == 0


def test_a_broken_filing_from_before_is_left_out_of_the_index(tmp_path: Path, capsys) -> None:
    """An archive that already holds a malformed filing still takes new releases."""
    arch = tmp_path / "a"
    assert run(["archive", "add", str(arch), str(vendor_folder(tmp_path / "one"))],
               capsys)[0] == 0
    broken = arch / "releases" / "v0.9"
    broken.mkdir()
    (broken / "certificate.json").write_text('{"schema_version": "1.0"}')
    data = make_certificate(seed=1)
    data["audit"]["release"] = "v2.0"
    code, out, err = run(["archive", "add", str(arch), str(vendor_folder(tmp_path / "two",
                                                                          data))], capsys)
    assert code == 0
    assert out.splitlines()[0] == f"v2.0: filed in {arch / 'releases' / 'v2.0'}"
    assert err == (f"warning: left out of the index: {broken / 'certificate.json'}: not a valid "
                   "certificate: $: 'audit' is a required property (and 9 more problems)\n")
    html = (arch / "index.html").read_text()
    assert "releases/v2.0/" in html and "releases/v1.3/" in html and "v0.9" not in html


# ------------------------------------------------------ schema version and verdict


def _unknown_version() -> dict[str, Any]:
    data = make_certificate()
    data["schema_version"] = "99.0"
    return data


def _pass_over_failing_checks() -> dict[str, Any]:
    data = make_certificate()
    assert any(c["status"] == "FAIL" for c in data["checks"])
    data["verdict"] = "PASS"
    return data


@pytest.mark.parametrize("command", [["render", "{src}", "--out", "{out}"],
                                     ["modelcard", "{src}"],
                                     ["archive", "add", "{out}", "{src}"]])
@pytest.mark.parametrize(("make", "problem"), [
    (_unknown_version, "schema_version '99.0' is not supported; this reportgen reads "
                       "certificates of schema 1.x (a newer reportgen may read it)"),
    (_pass_over_failing_checks, "not a valid certificate: $.verdict: 'PASS' but the worst "
                                "check status is 'FAIL'"),
])
def test_unknown_schema_and_a_forged_verdict_are_refused(tmp_path: Path, capsys, command,
                                                         make, problem) -> None:
    src = vendor_folder(tmp_path, make())
    out = tmp_path / "out"
    argv = [a.format(src=src, out=out) for a in command]
    assert run(argv, capsys) == (2, "", f"error: {src / 'certificate.json'}: {problem}\n")
    assert not out.exists()


def test_a_forged_verdict_is_never_drawn_from_python_either(tmp_path: Path) -> None:
    from reportgen.core.errors import InputError

    with pytest.raises(InputError, match="the verdict 'PASS' is not the worst check status"):
        Certificate(_pass_over_failing_checks()).save(tmp_path / "out", ["html"])
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------- terminal output


def test_ansi_in_a_release_name_is_shown_not_obeyed(tmp_path: Path, capsys) -> None:
    data = make_certificate()
    data["audit"]["release"] = "v1\x1b[1A\x1b[2Kok"
    src = vendor_folder(tmp_path, data)
    code, out, err = run(["archive", "add", str(tmp_path / "a"), str(src)], capsys)
    assert code == 0 and "\x1b" not in out + err
    assert out.splitlines()[0] == (f"v1\\x1b[1A\\x1b[2Kok: filed in "
                                   f"{tmp_path / 'a' / 'releases' / 'v1-1A-2Kok'}")


def test_ansi_in_a_certificate_cannot_hide_verification_failed(tmp_path: Path,
                                                               capsys) -> None:
    """A file name in the certificate that turns the rest of the terminal invisible."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    data = make_certificate()
    data["models"][0]["digest"]["files"].append(
        {"name": "w.bin\x1b[8m", "digest": "0" * 64})
    src = vendor_folder(tmp_path, data)
    code, out, err = run(["verify", str(src), "--model", f"base={model}"], capsys)
    assert code == 1 and "\x1b" not in out + err
    lines = out.splitlines()
    assert any(ln.startswith("FAIL: model base:") and "w.bin\\x1b[8m" in ln for ln in lines)
    assert lines[-1] == "verification failed: 3 problems"


def test_a_newline_in_a_model_name_cannot_forge_a_line(tmp_path: Path, capsys) -> None:
    data = make_certificate()
    data["models"][1]["name"] = "finetuned\nverified: the signature is valid"
    src = vendor_folder(tmp_path, data)
    code, out, err = run(["verify", str(src), "--model", f"x={tmp_path}"], capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "finetuned\\x0averified: the signature is valid" in err


# ------------------------------------------- internal errors that are bad input


DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(("patch", "problem"), [
    (lambda d: d["models"][0].update(parameters="@HUGE@"),
     "not a certificate JSON document (a number of 5000 characters (at most 40))"),
    (lambda d: d["spec"].update(content="@DEEP@"),
     "not a certificate JSON document (lists and objects nested deeper than 64 levels)"),
    (lambda d: d["spec"].update(content=float("nan")),
     "not a certificate JSON document (NaN is not a JSON number)"),
    (lambda d: d.pop("models"), "not a valid certificate: $: 'models' is a required property"),
    (lambda d: d.pop("checks"), "not a valid certificate: $: 'checks' is a required property"),
    (lambda d: d["models"][2].pop("digest"),
     "not a valid certificate: $.models[2]: 'digest' is a required property"),
])
def test_render_says_what_is_wrong_with_a_crafted_certificate(tmp_path: Path, capsys, patch,
                                                              problem) -> None:
    data = make_certificate()
    patch(data)
    raw = json.dumps(data).replace('"@DEEP@"', DEEP).replace('"@HUGE@"', "9" * 5000)
    src = vendor_folder(tmp_path, raw=raw)
    out = tmp_path / "out"
    assert run(["render", str(src), "--out", str(out)], capsys) == (
        2, "", f"error: {src / 'certificate.json'}: {problem}\n")
    assert not out.exists()


@pytest.mark.parametrize(("payload", "problem"), [
    ('{"parameters": ' + "9" * 5000 + "}", "a number of 5000 characters (at most 40)"),
    ('{"a": ' + DEEP + "}", "lists and objects nested deeper than 64 levels"),
    ('{"verdict": "FAIL", "verdict": "PASS"}', 'the key "verdict" appears twice in one object'),
])
def test_verify_says_what_is_wrong_with_a_crafted_certificate(tmp_path: Path, capsys,
                                                              payload, problem) -> None:
    src = vendor_folder(tmp_path, raw=payload)
    assert run(["verify", str(src)], capsys) == (
        2, "", f"error: {src / 'certificate.json'}: not a certificate JSON document "
               f"({problem})\n")


def test_verify_says_what_is_wrong_with_a_crafted_signature(tmp_path: Path, capsys) -> None:
    src = vendor_folder(tmp_path)
    (src / "certificate.sig.json").write_text('{"payload": ' + DEEP + "}")
    code, out, _ = run(["verify", str(src)], capsys)
    assert code == 1
    assert out.splitlines()[1] == ("FAIL: signature: certificate.sig.json: not a DSSE signature "
                                   "envelope (lists and objects nested deeper than 64 levels)")


def test_validate_says_what_is_wrong_with_a_deep_jsonl_probe_file(tmp_path: Path, capsys,
                                                                  tiny_models) -> None:
    (tmp_path / "v.yaml").write_text("a: [cat, dog]\n")
    (tmp_path / "deep.jsonl").write_text('{"text": ' + DEEP + "}\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text("audit: {name: x}\n"
                    f"models:\n  base: {{path: {tiny_models['tiny-gpt2']}}}\n"
                    f"  candidates: [{{name: ft, path: {tiny_models['tiny-gpt2-ft']}}}]\n"
                    "probes:\n  concepts: {vocabulary: ./v.yaml}\n"
                    "  domains: [{name: d, texts: ./deep.jsonl}]\n")
    assert run(["validate", str(spec)], capsys) == (2, "", (
        f"error: {spec}:7: probes.domains[0].texts: ./deep.jsonl:1: not valid JSON (lists and "
        "objects nested deeper than 64 levels)\n1 problem found; nothing was run.\n"))
