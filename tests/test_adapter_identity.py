"""An adapter candidate is named by its base's digest and its adapter's, wherever a model's
identity shows (HTML, PDF, model card, signed statement), and ``verify`` re-hashes both.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from certfactory import make_certificate

from reportgen.api import Certificate
from reportgen.cli import commands as cli
from reportgen.release.signing import generate_keypair, open_envelope, sign_certificate
from reportgen.spec.digest import digest_folder


def _folder(path: Path, files: dict[str, str]) -> Path:
    path.mkdir(parents=True)
    for name, text in files.items():
        (path / name).write_text(text)
    return path


@pytest.fixture
def signed(tmp_path: Path) -> dict[str, Any]:
    """A signed certificate whose ``lora`` is the base folder with an adapter folder."""
    base = _folder(tmp_path / "base", {"config.json": '{"model_type": "gpt2"}',
                                       "model.safetensors": "weights"})
    adapter = _folder(tmp_path / "adapter", {"adapter_config.json": '{"r": 4}',
                                             "adapter_model.safetensors": "lora weights"})
    data = make_certificate()
    models = {m["name"]: m for m in data["models"]}
    models["base"]["digest"] = asdict(digest_folder(base))
    models["lora"]["digest"] = asdict(digest_folder(base))
    models["lora"]["adapter"] = asdict(digest_folder(adapter))
    cert = Certificate(data)
    keys = generate_keypair(tmp_path / "keys")
    out = tmp_path / "out"
    out.mkdir()
    (out / "certificate.json").write_text(cert.to_json(), encoding="utf-8")
    (out / "certificate.sig.json").write_bytes(sign_certificate(cert, keys.private))
    return {"out": out, "public": keys.public, "base": base, "adapter": adapter, "cert": cert,
            "base_root": digest_folder(base).root, "adapter_root": digest_folder(adapter).root}


def _verify(signed: dict[str, Any], *args: str) -> list[str]:
    return ["verify", str(signed["out"]), "--public-key", str(signed["public"]), *args]


# ------------------------------------------------------------------------------- views


def test_html_names_the_adapter_beside_the_base(signed) -> None:
    from reportgen.views.html import render_html

    html = render_html(signed["cert"])
    a, b = signed["adapter_root"], signed["base_root"]
    assert (f'<td><code title="sha256:{b}">{b[:12]}…</code><span class="sub">+ adapter '
            f'<code title="sha256:{a}">{a[:12]}…</code></span></td>') in html
    assert (f'<tr><td>lora adapter</td><td>sha256</td><td class="k-digest">{a}</td>'
            '<td class="k-int">2</td></tr>') in html
    assert "<summary>lora adapter: 2 files</summary>" in html


def test_pdf_names_the_adapter_beside_the_base(signed, tmp_path: Path) -> None:
    from reportgen.views.pdf import render_pdf

    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    (tmp_path / "c.pdf").write_bytes(render_pdf(signed["cert"]))
    text = subprocess.run(["pdftotext", "-raw", str(tmp_path / "c.pdf"), "-"], check=True,
                          capture_output=True, text=True).stdout
    flat = "".join(text.split())  # a 64-digit root may wrap inside its table cell
    b, a = signed["base_root"], signed["adapter_root"]
    # the models table: lora is named by its base's root, its adapter's row follows
    assert f"{b}2loraadapteritsadapter,mergedintothecheckpointabove{a}2" in flat
    # each distinct file once, with the checkpoints holding it (lora's base is the base's)
    files = {f["name"]: f["digest"] for f in asdict(digest_folder(signed["adapter"]))["files"]}
    files |= {f["name"]: f["digest"] for f in asdict(digest_folder(signed["base"]))["files"]}
    assert f"adapter_config.jsonsha256:{files['adapter_config.json']}loraadapter" in flat
    assert f"config.jsonsha256:{files['config.json']}base,lora" in flat


def test_model_card_names_the_adapter_beside_the_base(signed) -> None:
    from reportgen.views.modelcard import render_model_card

    lines = render_model_card(signed["cert"], "certificate.html").splitlines()
    b, a = signed["base_root"], signed["adapter_root"]
    assert "| model | role | digest (OpenSSF model signing v1.0 root) | adapter digest (merged " \
           "over that checkpoint) |" in lines
    assert f"| lora | candidate | `sha256:{b}` | `sha256:{a}` |" in lines
    assert f"| base | base | `sha256:{b}` | — |" in lines


def test_signed_statement_names_the_adapter(signed) -> None:
    envelope = (signed["out"] / "certificate.sig.json").read_bytes()
    subjects = open_envelope(envelope, None).statement["subject"]
    assert {"name": "lora/adapter", "digest": {"sha256": signed["adapter_root"]}} in subjects
    assert {"name": "lora", "digest": {"sha256": signed["base_root"]}} in subjects


# ------------------------------------------------------------------------------ verify


def test_verify_rehashes_base_and_adapter(signed, capsys) -> None:
    code = cli.main(_verify(signed, "--model", f"lora={signed['base']}",
                            "--adapter", f"lora={signed['adapter']}"))
    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert lines[-3:] == [
        f"ok: model lora: 2 files match, root {signed['base_root']}",
        f"ok: adapter lora: 2 files match, root {signed['adapter_root']}",
        "verified: the signature is valid and the certificate is unchanged, and 1 checkpoint "
        "folder and 1 adapter folder match it"]


def test_verify_names_the_adapter_when_it_differs(signed, capsys) -> None:
    (signed["adapter"] / "adapter_model.safetensors").write_text("other lora weights")
    code = cli.main(_verify(signed, "--model", f"lora={signed['base']}",
                            "--adapter", f"lora={signed['adapter']}"))
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert lines[-3:] == [f"ok: model lora: 2 files match, root {signed['base_root']}",
                          "FAIL: adapter lora: 1 changed file (adapter_model.safetensors)",
                          "verification failed: 1 problem"]


def test_verify_names_the_base_when_it_differs(signed, capsys) -> None:
    (signed["base"] / "model.safetensors").write_text("other weights")
    code = cli.main(_verify(signed, "--model", f"lora={signed['base']}",
                            "--adapter", f"lora={signed['adapter']}"))
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert lines[-3:] == ["FAIL: model lora: 1 changed file (model.safetensors)",
                          f"ok: adapter lora: 2 files match, root {signed['adapter_root']}",
                          "verification failed: 1 problem"]


def test_verify_without_the_adapter_is_not_a_success(signed, capsys) -> None:
    code = cli.main(_verify(signed, "--model", f"lora={signed['base']}"))
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert lines[-3:] == [
        f"ok: model lora: 2 files match, root {signed['base_root']}",
        f"FAIL: adapter lora: not checked: lora is its base folder with the adapter "
        f"sha256:{signed['adapter_root']}; give --adapter lora=DIR to re-hash the adapter too",
        "verification failed: 1 problem"]


def test_verify_adapter_alone_says_the_base_was_not_checked(signed, capsys) -> None:
    code = cli.main(_verify(signed, "--adapter", f"lora={signed['adapter']}"))
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert lines[-3:] == [
        f"ok: adapter lora: 2 files match, root {signed['adapter_root']}",
        "FAIL: model lora: not checked: give --model lora=DIR for the folder its adapter "
        "applies to",
        "verification failed: 1 problem"]


def test_verify_adapter_of_a_model_without_one_is_bad_input(signed, capsys) -> None:
    code = cli.main(_verify(signed, "--model", f"base={signed['base']}",
                            "--adapter", f"base={signed['adapter']}"))
    assert code == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: --adapter base={signed['adapter']}: the certificate records no adapter for "
        "'base'"]


def test_verify_adapter_of_an_unknown_model_is_bad_input(signed, capsys) -> None:
    assert cli.main(_verify(signed, "--adapter", f"lorra={signed['adapter']}")) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: --adapter lorra={signed['adapter']}: the certificate has no model 'lorra' "
        "(it has: base, finetuned, lora, base-int8). Did you mean 'lora'?"]


def test_the_certificate_json_keeps_the_adapter(signed) -> None:
    data = json.loads((signed["out"] / "certificate.json").read_text())
    lora = next(m for m in data["models"] if m["name"] == "lora")
    assert lora["adapter"]["root"] == signed["adapter_root"]
