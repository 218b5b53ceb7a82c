"""Checkpoint digests compatible with OpenSSF model signing v1.0 (file serialization).

Each file gets a SHA-256; the root digest is SHA-256 over the raw per-file digests
concatenated in relative-path order, sorted by path component (POSIX separators).

What is left out, exactly as model signing leaves it out: ``.git``, ``.github``,
``.gitattributes`` and ``.gitignore`` at the top of the folder (model signing's default
ignored paths; a nested ``sub/.gitignore`` is hashed, as model signing hashes it) and a
top-level ``model.sig``, the signature its CLI writes into the folder and ignores.

Symbolic links: refused, as model signing refuses them by default, because a link lets the
loader read bytes the digest never saw (a directory link is not descended, a link can be
re-pointed later). One exception, the Hugging Face cache's own layout: in a
``models--org--name/snapshots/<rev>/`` folder every file is a link into that repository's
``blobs/``; such a link is hashed as the file it points to (model signing's
``allow_symlinks``), and nothing else in the cache is accepted.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from reportgen.core.errors import ModelError
from reportgen.core.records import Digest, FileDigest

#: Top-level names the digest leaves out (model signing's default, plus its CLI's model.sig).
IGNORED = frozenset({".git", ".github", ".gitattributes", ".gitignore", "model.sig"})
_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def is_ignored(name: str) -> bool:
    """Whether a relative POSIX path is left out of the digest (its first part is ignored)."""
    return name.split("/", 1)[0] in IGNORED


def list_files(folder: Path) -> list[str]:
    """Relative POSIX paths of every file under ``folder`` the digest covers.

    Raises :class:`ModelError` naming the first symbolic link (other than a Hugging Face
    cache link into its blobs) or special file found.
    """
    names = []
    blobs = _hub_blobs(folder)
    for dirpath, dirnames, filenames in os.walk(folder):
        here = Path(dirpath)
        rel_dir = here.relative_to(folder)
        top = rel_dir == Path(".")
        dirnames[:] = sorted(d for d in dirnames if not (top and d in IGNORED))
        for d in dirnames:
            if (here / d).is_symlink():
                raise ModelError(_link_message(here / d))
        for f in sorted(filenames):
            if top and f in IGNORED:
                continue
            path = here / f
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode) and not _is_hub_blob(path, blobs):
                raise ModelError(_link_message(path))
            if not stat.S_ISLNK(mode) and not stat.S_ISREG(mode):
                raise ModelError(f"{path}: not a regular file (a pipe, socket or device); a "
                                 "model folder may hold only files and folders")
            names.append((rel_dir / f).as_posix())
    return sorted(names, key=path_key)


def _link_message(path: Path) -> str:
    return (f"{path}: is a symbolic link; reportgen refuses links in a model folder, as model "
            "signing does, so that the digest covers every byte the loader reads (replace the "
            "link with what it points to)")


def _hub_blobs(folder: Path) -> Path | None:
    """``…/models--org--name/blobs`` when ``folder`` is a snapshot of the Hugging Face cache."""
    snapshots = folder.parent
    repo = snapshots.parent
    if snapshots.name == "snapshots" and repo.name.startswith("models--"):
        blobs = repo / "blobs"
        return blobs.resolve() if blobs.is_dir() else None
    return None


def _is_hub_blob(path: Path, blobs: Path | None) -> bool:
    """A cache snapshot's link to a regular file in its own repository's blobs."""
    if blobs is None:
        return False
    target = Path(os.path.realpath(path))
    return target.parent == blobs and target.is_file()


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
