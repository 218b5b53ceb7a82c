"""The user cache folder and its one-blob entries, for every stage that caches bytes.

An entry is written to a temporary folder and renamed into place, so an interrupted run never
leaves half an entry; its SHA-256 is checked on load, so a corrupt entry is dropped and
recomputed. The capture cache (tensors), the analysis cache (metrics) and the render cache
(views) all keep their entries under :func:`cache_root`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path


def cache_root() -> Path:
    """``$REPORTGEN_CACHE``, else ``~/.cache/reportgen``."""
    env = os.environ.get("REPORTGEN_CACHE")
    return Path(env).expanduser() if env else Path("~/.cache/reportgen").expanduser()


def sha_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def save_blob(kind: str, key: str, payload: bytes) -> None:
    """Store ``payload`` as entry ``kind/key``, atomically (temp folder, then rename).

    Best effort: a cache that cannot be written only costs a recomputation next time."""
    root = cache_root() / kind
    tmp: Path | None = None
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
        (tmp / "payload").write_bytes(payload)
        (tmp / "manifest.json").write_text(json.dumps({"sha256": sha_file(tmp / "payload")}))
        final = root / key
        if final.exists():
            shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    except OSError:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def has_blob(kind: str, key: str) -> bool:
    """Whether entry ``kind/key`` is stored (its checksum is checked when it is loaded)."""
    return (cache_root() / kind / key / "manifest.json").is_file()


def load_blob(kind: str, key: str) -> bytes | None:
    """Entry ``kind/key``'s payload, or None; an entry failing its checksum is dropped."""
    folder = cache_root() / kind / key
    if not has_blob(kind, key):
        return None
    try:
        meta = json.loads((folder / "manifest.json").read_text())
        payload = (folder / "payload").read_bytes()
        if hashlib.sha256(payload).hexdigest() != meta["sha256"]:
            raise ValueError("payload does not match its checksum")
        return payload
    except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError):
        drop_blob(kind, key)
        return None


def drop_blob(kind: str, key: str) -> None:
    """Remove entry ``kind/key`` (e.g. one whose payload no longer decodes)."""
    shutil.rmtree(cache_root() / kind / key, ignore_errors=True)
