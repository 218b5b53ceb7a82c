"""Checkpoint digests compatible with OpenSSF model signing v1.0 (file serialization).

Each file gets a SHA-256; the root digest is SHA-256 over the raw per-file digests
concatenated in relative-path order, sorted by path component (POSIX separators).
``.git``, ``.github``, ``.gitattributes`` and ``.gitignore`` are ignored, as model signing
ignores them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from .certificate import Digest, FileDigest
from .errors import ModelError

IGNORED = frozenset({".git", ".github", ".gitattributes", ".gitignore"})
_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def list_files(folder: Path) -> list[str]:
    """Relative POSIX paths of every regular file under ``folder``, minus ignored ones."""
    names = []
    for p in folder.rglob("*"):
        rel = p.relative_to(folder)
        if any(part in IGNORED for part in rel.parts):
            continue
        if p.is_file():
            names.append(rel.as_posix())
    return sorted(names, key=path_key)


def path_key(name: str) -> list[str]:
    """Sort key of model signing: by path components, so 'a/b' precedes 'a-b/x' and 'a.b'."""
    return name.split("/")


def root_digest(file_digests: list[FileDigest]) -> str:
    h = hashlib.sha256()
    for fd in sorted(file_digests, key=lambda f: path_key(f.name)):
        h.update(bytes.fromhex(fd.digest))
    return h.hexdigest()


def digest_folder(folder: Path) -> Digest:
    """The model-signing digest of a checkpoint folder."""
    if not folder.is_dir():
        raise ModelError(f"{folder}: not a folder")
    files = [FileDigest(n, file_sha256(folder / n)) for n in list_files(folder)]
    if not files:
        raise ModelError(f"{folder}: the folder is empty")
    return Digest("sha256", root_digest(files), files)


def derived_digest(source: Digest, recipe: str, adapter: Digest | None = None) -> Digest:
    """A derived variant is named by its source's root digest (and its source's adapter's,
    when it has one: an int8 copy of a LoRA model is not one of its base) and the recipe."""
    pinned = source.root if adapter is None else f"{source.root}\nadapter:{adapter.root}"
    h = hashlib.sha256(f"{pinned}\n{recipe}".encode())
    return Digest("sha256-derived", h.hexdigest(), [])
