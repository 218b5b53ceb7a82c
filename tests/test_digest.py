"""Checkpoint digests against an independent computation of the model-signing v1.0 rule."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from reportgen.core.errors import ModelError
from reportgen.spec.digest import digest_folder


def _independent_root(folder: Path) -> tuple[str, dict[str, str]]:
    """SHA-256 per file; root = SHA-256 over raw digests in sorted relative-path order;
    model signing's top-level ignored names (and its CLI's model.sig) left out."""
    per_file = {}
    top = {".git", ".github", ".gitattributes", ".gitignore", "model.sig"}
    for dirpath, dirnames, filenames in os.walk(folder):
        if Path(dirpath) == folder:
            dirnames[:] = [d for d in dirnames if d not in top]
            filenames = [f for f in filenames if f not in top]
        for fn in filenames:
            full = Path(dirpath) / fn
            rel = full.relative_to(folder).as_posix()
            per_file[rel] = hashlib.sha256(full.read_bytes()).hexdigest()
    order = sorted(per_file, key=lambda k: k.split("/"))  # by path component
    concat = b"".join(bytes.fromhex(per_file[k]) for k in order)
    return hashlib.sha256(concat).hexdigest(), per_file


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    (tmp_path / "config.json").write_text('{"model_type": "gpt2"}')
    (tmp_path / "model.safetensors").write_bytes(os.urandom(5000))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.txt").write_text("nested")
    (tmp_path / "Z-upper.txt").write_text("sorted by bytes, not case")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref: refs/heads/main")
    (tmp_path / ".gitattributes").write_text("*.safetensors filter=lfs")
    (tmp_path / "sub" / ".gitignore").write_text("hashed: model signing ignores only the top")
    (tmp_path / "model.sig").write_text("{}")
    return tmp_path


def test_digest_matches_independent_computation(checkpoint: Path) -> None:
    d = digest_folder(checkpoint)
    root, per_file = _independent_root(checkpoint)
    assert d.algorithm == "sha256"
    assert d.root == root
    assert {f.name: f.digest for f in d.files} == per_file
    assert [f.name for f in d.files] == sorted(per_file, key=lambda k: k.split("/"))
    assert ".git/HEAD" not in per_file and ".gitattributes" not in per_file
    assert "sub/.gitignore" in per_file and "model.sig" not in per_file


def test_one_byte_changes_root(checkpoint: Path) -> None:
    before = digest_folder(checkpoint).root
    blob = bytearray((checkpoint / "model.safetensors").read_bytes())
    blob[100] ^= 1
    (checkpoint / "model.safetensors").write_bytes(bytes(blob))
    assert digest_folder(checkpoint).root != before


def test_ignored_files_do_not_change_root(checkpoint: Path) -> None:
    before = digest_folder(checkpoint).root
    (checkpoint / ".gitignore").write_text("*.tmp")
    (checkpoint / ".git" / "index").write_bytes(b"x")
    assert digest_folder(checkpoint).root == before


def test_empty_and_missing_folders(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="the folder is empty"):
        digest_folder(tmp_path)
    with pytest.raises(ModelError, match="not a folder"):
        digest_folder(tmp_path / "nope")
