"""Capture cache keyed by (checkpoint digest, probe digest, capture plan).

Entries are written to a temporary folder and renamed into place, so an interrupted audit
never leaves a half entry; every array's SHA-256 is checked on load, so a corrupt entry is
detected, dropped and recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .capture import Capture

_ARRAYS = ("last", "mean", "embeddings")


def cache_root() -> Path:
    env = os.environ.get("REPORTGEN_CACHE")
    return Path(env).expanduser() if env else Path("~/.cache/reportgen").expanduser()


def cache_key(model_digest: str, probe_digest: str, plan: dict[str, Any]) -> str:
    blob = json.dumps({"model": model_digest, "probes": probe_digest, "plan": plan},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def load(key: str) -> Capture | None:
    folder = cache_root() / "captures" / key
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        return None
    try:
        meta = json.loads(manifest.read_text())
        for name in _ARRAYS:
            if _sha(folder / f"{name}.npy") != meta["sha256"][name]:
                raise ValueError(f"{name}.npy does not match its checksum")
        arrays = {n: np.load(folder / f"{n}.npy", allow_pickle=False) for n in _ARRAYS}
        return Capture(meta["layer_ids"], arrays["last"], arrays["mean"], arrays["embeddings"],
                       meta["vocab"], meta["parameters"], meta["hidden_size"], meta["n_layers"])
    except (OSError, ValueError, KeyError, json.JSONDecodeError):
        shutil.rmtree(folder, ignore_errors=True)
        return None


def save(key: str, cap: Capture) -> None:
    """Best effort: a cache that cannot be written only costs a recomputation next time."""
    root = cache_root() / "captures"
    tmp: Path | None = None
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
        sums = {}
        for name in _ARRAYS:
            np.save(tmp / f"{name}.npy", getattr(cap, name), allow_pickle=False)
            sums[name] = _sha(tmp / f"{name}.npy")
        meta = {"layer_ids": cap.layer_ids, "vocab": cap.vocab, "parameters": cap.parameters,
                "hidden_size": cap.hidden_size, "n_layers": cap.n_layers, "sha256": sums}
        (tmp / "manifest.json").write_text(json.dumps(meta))
        final = root / key
        if final.exists():
            shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    except OSError:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
