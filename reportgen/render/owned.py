"""Folders beside the views that the certificate fills (``trained-sae/``), and the manifest
that says which files in them reportgen wrote.

Why a manifest: an output folder is often an existing one, and a user may keep files of their
own inside ``trained-sae/`` (``trained-sae/mywork/notes.txt``). A save replaces or removes
only the files the previous save wrote, as listed in ``<folder>/.reportgen-manifest.json``;
anything else is never touched. A manifest that cannot be read (or names a path outside its
folder) lists nothing, so at worst a stale file of ours is left behind, never a user's lost.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path, PurePosixPath

from ..errors import InputError, OutputError

MANIFEST = ".reportgen-manifest.json"
MAX_MANIFEST = 4 * 2**20


def written_before(out_dir: Path, folder: str) -> list[str]:
    """Paths (``folder/...``) the last save listed as its own in ``folder``'s manifest."""
    from ..untrusted import BadJSON, parse_json, read_regular

    try:
        data = parse_json(read_regular(out_dir / folder / MANIFEST, MAX_MANIFEST))
    except (FileNotFoundError, NotADirectoryError, InputError, BadJSON):
        return []
    files = data.get("files") if isinstance(data, dict) else None
    return [f"{folder}/{rel}" for rel in files or [] if _is_inside(rel)]


def manifest(folder: str, names: list[str]) -> bytes:
    """The manifest of ``folder`` listing ``names`` (paths starting ``folder/``)."""
    files = sorted(n[len(folder) + 1:] for n in names)
    doc = {"written_by": "reportgen", "files": files}
    return (json.dumps(doc, indent=2) + "\n").encode("utf-8")


def _is_inside(rel: object) -> bool:
    if not isinstance(rel, str) or not rel or "\\" in rel:
        return False
    p = PurePosixPath(rel)
    return not p.is_absolute() and ".." not in p.parts and "." not in p.parts and \
        rel != MANIFEST


def make_parents(out_dir: Path, rel: str) -> list[Path]:
    """Create the folders on the way to ``out_dir/rel``; each must be a real folder (a link
    could lead outside the output folder). Returns the folders created, outermost first."""
    made = []
    here = out_dir
    for part in PurePosixPath(rel).parts[:-1]:
        here = here / part
        if here.is_symlink() or (here.exists() and not here.is_dir()):
            raise OutputError(f"{here}: expected a folder (not a link or a file) inside the "
                              "output folder")
        if not here.exists():
            here.mkdir()
            made.append(here)
    return made


def prune(out_dir: Path, removed: list[str]) -> None:
    """Remove the folders that ``removed`` files left empty, up to their top-level folder."""
    for rel in removed:
        parts = PurePosixPath(rel).parts
        for depth in range(len(parts) - 1, 0, -1):
            with contextlib.suppress(OSError):  # not empty: a user's file is there
                os.rmdir(out_dir.joinpath(*parts[:depth]))
