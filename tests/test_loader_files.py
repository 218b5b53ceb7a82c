"""Every byte the loader reads is in the digest: each attack as a vendor would try it.

A vendor hands over a model folder and a signed certificate naming its digest. The attacks:
weights kept under ``.git/`` (which the digest leaves out, as model signing does) and named by
the weight index, then swapped after the audit; weights reached through a directory link or a
file link; configs naming files outside the folder. Each is refused, by ``audit`` and by
``verify --model``, with exit code 2 and a line naming the file.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from certfactory import make_certificate
from safetensors import safe_open
from safetensors.numpy import save_file

from reportgen.api import Certificate
from reportgen.capture.loading import load
from reportgen.cli import commands as cli
from reportgen.core.errors import ModelError
from reportgen.core.records import Digest, FileDigest
from reportgen.release.signing import generate_keypair, sign_certificate
from reportgen.spec.digest import digest_folder, file_sha256, list_files, root_digest
from reportgen.spec.resolve import LoadOptions, resolve

FIELD = "models.candidates[0].path"


def _tensor_names(path: Path) -> list[str]:
    with safe_open(str(path), framework="numpy") as f:
        return list(f.keys())


def _index(folder: Path, shard: str, weights: Path) -> None:
    """A weight index mapping every tensor of ``weights`` to ``shard`` (as transformers writes
    one), plus a small unrelated top-level safetensors file so the folder looks normal."""
    index = {"metadata": {}, "weight_map": {n: shard for n in _tensor_names(weights)}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    save_file({"unused": np.zeros(2, dtype=np.float32)}, str(folder / "decoy.safetensors"))


@pytest.fixture
def git_weights(tiny_models, tmp_path: Path) -> Path:
    """The attacker's folder: the real weights in .git/w.safetensors, named by the index."""
    folder = tmp_path / "ft"
    shutil.copytree(tiny_models["tiny-gpt2-ft"], folder)
    (folder / ".git").mkdir()
    os.replace(folder / "model.safetensors", folder / ".git" / "w.safetensors")
    _index(folder, ".git/w.safetensors", folder / ".git" / "w.safetensors")
    return folder


def _resolve_error(folder: Path, **options: Any) -> str:
    with pytest.raises(ModelError) as e:
        resolve("ft", "candidate", str(folder), folder.parent, FIELD, LoadOptions(**options))
    return str(e.value)


def _signed_cert(tmp_path: Path, folder: Path, digest: Digest) -> dict[str, Path]:
    """A signed certificate whose model ``finetuned`` is ``folder`` with ``digest``, as the
    vendor would hand it over (the digest an older reportgen computed)."""
    data = make_certificate()
    data["models"][1]["digest"] = asdict(digest)
    keys = generate_keypair(tmp_path / "keys")
    out = tmp_path / "out"
    out.mkdir()
    cert = Certificate(data)
    (out / "certificate.json").write_text(cert.to_json())
    (out / "certificate.sig.json").write_bytes(sign_certificate(cert, keys.private))
    return {"out": out, "public": keys.public}


def _verify_model(signed: dict[str, Path], folder: Path, capsys) -> tuple[int, str]:
    code = cli.main(["verify", str(signed["out"]), "--public-key", str(signed["public"]),
                     "--model", f"finetuned={folder}"])
    return code, capsys.readouterr().err


def _old_digest(folder: Path, skip: str) -> Digest:
    """The digest as reportgen computed it before: links and ignored paths left out."""
    files = [FileDigest(n, file_sha256(folder / n)) for n in sorted(
        p.relative_to(folder).as_posix() for p in folder.rglob("*")
        if p.is_file() and not p.is_symlink() and not p.relative_to(folder).as_posix()
        .startswith((".git/", skip)))]
    return Digest("sha256", root_digest(files), files)


# ---------------------------------------------------------------------- weights in .git/


def test_audit_refuses_weights_the_digest_leaves_out(git_weights: Path) -> None:
    assert _resolve_error(git_weights) == (
        f"{FIELD}: {git_weights}/model.safetensors.index.json names '.git/w.safetensors' "
        "(weight_map); the loader would read it but the checkpoint digest does not cover it "
        "('.git' is left out of the digest, as model signing leaves it out)")


def test_audit_cli_exits_2_naming_the_file(git_weights: Path, tiny_models, tmp_path: Path,
                                           capsys) -> None:
    (tmp_path / "v.yaml").write_text("a: [cat, dog]\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text("audit: {name: attack}\n"
                    f"models:\n  base: {{path: {tiny_models['tiny-gpt2']}}}\n"
                    f"  candidates: [{{name: ft, path: {git_weights}}}]\n"
                    "probes:\n  concepts: {vocabulary: v.yaml}\n")
    assert cli.main(["audit", str(spec), "--out", str(tmp_path / "out"), "-q"]) == 2
    assert capsys.readouterr().err == (
        f"error: {FIELD}: {git_weights}/model.safetensors.index.json names '.git/w.safetensors' "
        "(weight_map); the loader would read it but the checkpoint digest does not cover it "
        "('.git' is left out of the digest, as model signing leaves it out)\n")


def test_verify_refuses_swapped_git_weights(git_weights: Path, tmp_path: Path, capsys) -> None:
    signed = _signed_cert(tmp_path, git_weights, digest_folder(git_weights))
    blob = bytearray((git_weights / ".git" / "w.safetensors").read_bytes())
    blob[-1] ^= 1  # the swap: the digest never saw these bytes
    (git_weights / ".git" / "w.safetensors").write_bytes(bytes(blob))
    code, err = _verify_model(signed, git_weights, capsys)
    assert code == 2
    assert err == (f"error: --model finetuned={git_weights}: {git_weights}/model.safetensors."
                   "index.json names '.git/w.safetensors' (weight_map); the loader would read "
                   "it but the checkpoint digest does not cover it ('.git' is left out of the "
                   "digest, as model signing leaves it out)\n")


def test_the_loader_sees_only_hashed_files(git_weights: Path, monkeypatch) -> None:
    """The second guard: were a config key unknown to the check, the load would find nothing
    there rather than read unhashed bytes (it reads a folder of links to the hashed files)."""
    import reportgen.spec.resolve as models

    monkeypatch.setattr(models, "check_references", lambda *a: None)
    rm = resolve("ft", "candidate", str(git_weights), git_weights.parent, FIELD)
    with pytest.raises(ModelError) as e:
        load(rm)
    assert str(e.value).startswith(f"{FIELD}: cannot load '{git_weights}': ")
    assert str(e.value).endswith(f"{git_weights}/.git/w.safetensors")


# ------------------------------------------------------------------------------ links


def test_a_directory_link_is_refused(tiny_models, tmp_path: Path, capsys) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    folder = tmp_path / "ft"
    shutil.copytree(tiny_models["tiny-gpt2-ft"], folder)
    os.replace(folder / "model.safetensors", elsewhere / "w.safetensors")
    _index(folder, "shards/w.safetensors", elsewhere / "w.safetensors")
    signed = _signed_cert(tmp_path, folder, _old_digest(folder, "shards/"))
    (folder / "shards").symlink_to(elsewhere, target_is_directory=True)
    message = (f"{folder}/shards: is a symbolic link; reportgen refuses links in a model "
               "folder, as model signing does, so that the digest covers every byte the "
               "loader reads (replace the link with what it points to)")
    assert _resolve_error(folder) == message
    (elsewhere / "w.safetensors").write_bytes(b"swapped")
    assert _verify_model(signed, folder, capsys) == (2, f"error: {message}\n")


def test_a_file_link_is_refused(tiny_models, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "ft"
    shutil.copytree(tiny_models["tiny-gpt2-ft"], folder)
    signed = _signed_cert(tmp_path, folder, digest_folder(folder))
    target = tmp_path / "w.safetensors"
    os.replace(folder / "model.safetensors", target)
    (folder / "model.safetensors").symlink_to(target)
    message = (f"{folder}/model.safetensors: is a symbolic link; reportgen refuses links in a "
               "model folder, as model signing does, so that the digest covers every byte the "
               "loader reads (replace the link with what it points to)")
    assert _resolve_error(folder) == message
    assert _verify_model(signed, folder, capsys) == (2, f"error: {message}\n")


def _hub_snapshot(src: Path, hub: Path) -> Path:
    """``src`` laid out as the Hugging Face cache stores it: files in blobs/, linked from a
    snapshot folder."""
    repo = hub / "models--acme--tiny"
    snap = repo / "snapshots" / "abc123"
    (repo / "blobs").mkdir(parents=True)
    snap.mkdir(parents=True)
    for f in sorted(src.iterdir()):
        blob = repo / "blobs" / file_sha256(f)
        shutil.copyfile(f, blob)
        (snap / f.name).symlink_to(os.path.relpath(blob, snap))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    return snap


def test_hub_cache_links_into_blobs_are_hashed_as_model_signing_does(
        tiny_models, tmp_path: Path, monkeypatch) -> None:
    ms = pytest.importorskip("model_signing")
    from model_signing._signing.signing import Payload

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    snap = _hub_snapshot(tiny_models["tiny-gpt2"], tmp_path / "hub")
    rm = resolve("base", "base", "acme/tiny", tmp_path, "models.base.path")
    assert rm.digest == digest_folder(tiny_models["tiny-gpt2"])
    manifest = ms.hashing.Config().set_allow_symlinks(True).hash(snap)
    assert rm.digest.root == Payload(manifest).statement.pb.subject[0].digest["sha256"]
    model, _ = load(rm)  # through the sealed view of links to the blobs
    assert model.config.n_layer > 0
    # a link leaving the blobs is refused, as anywhere else
    os.unlink(snap / "config.json")
    (snap / "config.json").symlink_to(tiny_models["tiny-gpt2"] / "config.json")
    with pytest.raises(ModelError, match=r"config\.json: is a symbolic link; "):
        list_files(snap)


# -------------------------------------------------------- configs naming other files


@pytest.mark.parametrize(("config", "content", "key", "named", "reason"), [
    ("tokenizer_config.json", {"tokenizer_file": "/etc/hostname"}, "tokenizer_file",
     "/etc/hostname", "an absolute path, outside the model folder"),
    ("tokenizer_config.json", {"fast_tokenizer_files": ["sub/../.git/tokenizer.json"]},
     "fast_tokenizer_files", "sub/../.git/tokenizer.json",
     "'.git' is left out of the digest, as model signing leaves it out"),
    ("model.safetensors.index.json", {"weight_map": {"wte.weight": "../base/w.safetensors"}},
     "weight_map", "../base/w.safetensors", "a path outside the model folder"),
    ("model.safetensors.index.json", {"weight_map": {"wte.weight": "model.sig"}},
     "weight_map", "model.sig", "'model.sig' is left out of the digest, as model signing "
                                "leaves it out"),
    ("config.json", {"auto_map": {"AutoModelForCausalLM": "acme/evil--modeling.Model"}},
     "auto_map.AutoModelForCausalLM", "acme/evil--modeling.Model",
     "code from another repository"),
    ("config.json", {"auto_map": {"AutoModelForCausalLM": "modeling_gone.Model"}},
     "auto_map.AutoModelForCausalLM", "modeling_gone.py", "not a file in the model folder"),
])
def test_configs_naming_files_the_digest_misses_are_refused(
        tiny_models, tmp_path: Path, config: str, content: dict, key: str, named: str,
        reason: str) -> None:
    folder = tmp_path / "ft"
    shutil.copytree(tiny_models["tiny-gpt2-ft"], folder)
    path = folder / config
    data = json.loads(path.read_text()) if path.is_file() else {}
    path.write_text(json.dumps({**data, **content}))
    assert _resolve_error(folder, trust_remote_code=True) == (
        f"{FIELD}: {folder}/{config} names {named!r} ({key}); the loader would read it but "
        f"the checkpoint digest does not cover it ({reason})")


def test_custom_code_in_the_folder_is_accepted(tiny_models, tmp_path: Path) -> None:
    folder = tmp_path / "ft"
    shutil.copytree(tiny_models["tiny-gpt2-ft"], folder)
    (folder / "modeling_x.py").write_text("# custom code, hashed with the folder\n")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["auto_map"] = {"AutoModelForCausalLM": "modeling_x.Model"}
    (folder / "config.json").write_text(json.dumps(cfg))
    rm = resolve("ft", "candidate", str(folder), tmp_path, FIELD,
                 LoadOptions(trust_remote_code=True))
    assert "modeling_x.py" in rm.files
