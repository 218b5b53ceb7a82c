"""What the loader reads from a model folder, held to exactly what the digest covers.

Why: a certificate names a model by its digest, so every byte transformers or PEFT reads
must be in that digest. The digest leaves out a few top-level names (``.git``, ``.github``,
``.gitattributes``, ``.gitignore`` and ``model.sig``, as model signing does) and refuses
symbolic links (:mod:`reportgen.spec.digest`). What remains are the files a folder's own configs
name, which can point anywhere: a weight index whose ``weight_map`` names
``.git/w.safetensors`` or ``../other/w.safetensors``, a tokenizer config's file arguments,
the module files of ``auto_map`` (custom code), possibly in another repository.

Two guards, one for each way of missing a file:

- :func:`check_references` reads those configs and refuses (exit 2) a folder that names a file
  the digest does not cover, naming the config, the key and the file. ``audit`` runs it before
  hashing is trusted, and ``verify --model`` runs it on the folder it re-hashes.
- :func:`sealed_view` is where the loader reads from: a private folder of links to exactly the
  hashed files. A name the check above does not know about (a config key of some future
  transformers) then finds nothing: the load fails instead of reading unhashed bytes.

Custom code (``trust_remote_code``) is the exception neither guard can close: once it runs,
it can read anything. Its module files are hashed and named here; running it is the consent.
"""

from __future__ import annotations

import atexit
import json
import os
import posixpath
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from reportgen.core.errors import ModelError
from reportgen.spec.digest import is_ignored

#: Config files whose values name other files the loader opens.
TOKENIZER_CONFIG = "tokenizer_config.json"
CODE_CONFIGS = ("config.json", TOKENIZER_CONFIG)


def check_references(folder: Path, covered: Iterable[str], field: str, source: str) -> None:
    """Raise :class:`ModelError` when a config in ``folder`` names a file outside ``covered``
    (the relative paths the digest hashed), so the loader would read unhashed bytes."""
    hashed = set(covered)
    for config, key, name in references(folder):
        reason = _uncovered(name, hashed, key)
        if reason:
            raise ModelError(
                f"{field}: {source.rstrip('/')}/{config} names {name!r} ({key}); the loader "
                f"would read it but the checkpoint digest does not cover it ({reason})")


def references(folder: Path) -> Iterator[tuple[str, str, str]]:
    """(config file, key, named path) for every file a config of ``folder`` points the
    loader at: weight-index shards, tokenizer file arguments, custom-code modules."""
    for index in sorted(folder.glob("*.index.json")):
        weight_map = _mapping(_read_json(index).get("weight_map"))
        for shard in dict.fromkeys(v for v in weight_map.values() if isinstance(v, str)):
            yield index.name, "weight_map", shard
    tok = _read_json(folder / TOKENIZER_CONFIG)
    for key, value in tok.items():
        if key.endswith("_file") and isinstance(value, str):
            yield TOKENIZER_CONFIG, key, value
    files = tok.get("fast_tokenizer_files")
    for value in files if isinstance(files, list) else []:
        if isinstance(value, str):
            yield TOKENIZER_CONFIG, "fast_tokenizer_files", value
    for config in CODE_CONFIGS:
        for cls, ref in _auto_map(_read_json(folder / config).get("auto_map")):
            yield config, f"auto_map.{cls}", ref


def _auto_map(value: Any) -> Iterator[tuple[str, str]]:
    """(class, module file) per ``auto_map`` entry; ``repo--module.Class`` kept whole."""
    for cls, refs in _mapping(value).items():
        for ref in refs if isinstance(refs, list) else [refs]:
            if isinstance(ref, str):
                yield str(cls), ref if "--" in ref else ref.rsplit(".", 1)[0] + ".py"


def _uncovered(name: str, hashed: set[str], key: str) -> str | None:
    """Why the loader reading ``name`` would escape the digest, or None when it would not."""
    if key.startswith("auto_map") and "--" in name:
        return "code from another repository"
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "an absolute path, outside the model folder"
    norm = posixpath.normpath(name)
    if norm == ".." or norm.startswith("../"):
        return "a path outside the model folder"
    if is_ignored(norm):
        top = norm.split("/", 1)[0]
        return f"'{top}' is left out of the digest, as model signing leaves it out"
    if norm not in hashed:
        return "not a file in the model folder"
    return None


def _read_json(path: Path) -> dict[str, Any]:
    """A config as a dict; {} when absent or unreadable (the loader then fails on it itself)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def sealed_view(folder: Path, names: Iterable[str]) -> Path:
    """A private folder holding links to exactly ``names`` (the hashed files) in ``folder``.

    It keeps ``folder``'s own name (transformers names custom-code modules after it) and lives
    until the process exits: accelerate's disk offload reads weights back by path later.
    """
    root = Path(tempfile.mkdtemp(prefix="reportgen-view-"))
    atexit.register(shutil.rmtree, root, True)
    view = root / (Path(os.path.realpath(folder)).name or "model")
    view.mkdir()
    for name in names:
        link = view / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.realpath(folder / name))
    return view
