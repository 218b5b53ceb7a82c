"""Capture cache keyed by (checkpoint digest, probe digest, capture plan).

Entries are written to a temporary folder and renamed into place, so an interrupted audit
never leaves a half entry; every array's and file's SHA-256 is checked on load, so a corrupt
entry is detected, dropped and recomputed. Collectors' extras (see
:class:`reportgen.capture.forward.Extra`) are stored beside the pooled states: arrays as
``.npy``, facts in the manifest, big files (the probabilities family's hidden-state stores)
moved in as they are.
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

from reportgen.capture.forward import Capture, Extra
from reportgen.core.blobs import cache_root, drop_blob, load_blob, save_blob
from reportgen.core.blobs import sha_file as _sha

__all__ = ["cache_key", "cache_root", "drop_blob", "load", "load_blob", "save", "save_blob",
           "work_folder"]

_ARRAYS = ("last", "mean", "embeddings")


def cache_key(model_digest: str, probe_digest: str, plan: dict[str, Any]) -> str:
    blob = json.dumps({"model": model_digest, "probes": probe_digest, "plan": plan},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def work_folder(key: str) -> Path:
    """A scratch folder for one capture's streamed files, on the cache's filesystem when it
    can be (so saving renames instead of copying), else in the system's temp folder."""
    try:
        root = cache_root() / "captures"
        root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".work-{key}-", dir=root))
    except OSError:
        return Path(tempfile.mkdtemp(prefix=f"reportgen-{key}-"))


def _extra_names(meta: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(stored file name, sha, kind) of every array and file of every extra."""
    out = []
    for ename, e in meta.get("extras", {}).items():
        out += [(f"x.{ename}.a.{a}.npy", e["sha256"][a], "array") for a in e["arrays"]]
        out += [(f"x.{ename}.f.{f}", e["sha256"][f], "file") for f in e["files"]]
    return out


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
        for fname, sha, _ in _extra_names(meta):
            if _sha(folder / fname) != sha:
                raise ValueError(f"{fname} does not match its checksum")
        arrays = {n: np.load(folder / f"{n}.npy", allow_pickle=False) for n in _ARRAYS}
        extras = {
            ename: Extra(
                arrays={a: np.load(folder / f"x.{ename}.a.{a}.npy", allow_pickle=False)
                        for a in e["arrays"]},
                meta=e["meta"],
                files={f: folder / f"x.{ename}.f.{f}" for f in e["files"]})
            for ename, e in meta.get("extras", {}).items()}
        return Capture(meta["layer_ids"], arrays["last"], arrays["mean"], arrays["embeddings"],
                       meta["vocab"], meta["parameters"], meta["hidden_size"], meta["n_layers"],
                       extras)
    except (OSError, ValueError, KeyError, json.JSONDecodeError):
        shutil.rmtree(folder, ignore_errors=True)
        return None


def save(key: str, cap: Capture) -> None:
    """Best effort: a cache that cannot be written only costs a recomputation next time.

    Extras' files are moved into the entry and ``cap`` is updated to point at them there."""
    root = cache_root() / "captures"
    tmp: Path | None = None
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
        sums = {}
        for name in _ARRAYS:
            np.save(tmp / f"{name}.npy", getattr(cap, name), allow_pickle=False)
            sums[name] = _sha(tmp / f"{name}.npy")
        extras, moved = _save_extras(tmp, cap)
        meta = {"layer_ids": cap.layer_ids, "vocab": cap.vocab, "parameters": cap.parameters,
                "hidden_size": cap.hidden_size, "n_layers": cap.n_layers, "sha256": sums,
                "extras": extras}
        (tmp / "manifest.json").write_text(json.dumps(meta))
        final = root / key
        if final.exists():
            shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        for ename, fname, stored in moved:
            cap.extras[ename].files[fname] = final / stored
    except OSError:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _save_extras(tmp: Path, cap: Capture) -> tuple[dict[str, Any], list[tuple[str, str, str]]]:
    out: dict[str, Any] = {}
    moved = []
    for ename, e in cap.extras.items():
        sums = {}
        for a, arr in e.arrays.items():
            np.save(tmp / f"x.{ename}.a.{a}.npy", arr, allow_pickle=False)
            sums[a] = _sha(tmp / f"x.{ename}.a.{a}.npy")
        for f, path in e.files.items():
            stored = f"x.{ename}.f.{f}"
            shutil.copyfile(path, tmp / stored) if _other_fs(path, tmp) else os.link(
                path, tmp / stored)
            sums[f] = _sha(tmp / stored)
            moved.append((ename, f, stored))
        out[ename] = {"arrays": sorted(e.arrays), "files": sorted(e.files), "meta": e.meta,
                      "sha256": sums}
    return out, moved


def _other_fs(a: Path, b: Path) -> bool:
    return os.stat(a).st_dev != os.stat(b).st_dev
