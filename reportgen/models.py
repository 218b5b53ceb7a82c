"""Resolve, identify and load checkpoints: local folders or hub ids from the local cache.

Nothing here downloads: offline mode is forced before transformers is imported, weights
must be safetensors (pickle is never unpickled), and remote code is never trusted.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .certificate import Digest
from .digest import derived_digest, digest_folder
from .errors import ModelError

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

KINDS = ("causal-lm", "masked-lm", "encoder")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass
class ResolvedModel:
    """A model identified (path, config, digest) but not loaded."""

    name: str
    role: str
    source: str
    field: str
    path: Path | None
    config: dict[str, Any]
    kind: str
    architecture: str
    digest: Digest
    derived_from: str | None = None
    recipe: str | None = None
    bits: int | None = None


def hub_cache_dir() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = Path(os.environ.get("HF_HOME", "~/.cache/huggingface")).expanduser()
    return home / "hub"


def find_in_hub_cache(hub_id: str) -> Path | None:
    """The snapshot folder of ``org/name`` at ``refs/main`` in the local hub cache, if any."""
    repo = hub_cache_dir() / ("models--" + hub_id.replace("/", "--"))
    ref = repo / "refs" / "main"
    if ref.is_file():
        snap = repo / "snapshots" / ref.read_text().strip()
        if snap.is_dir():
            return snap
    snaps = sorted((repo / "snapshots").glob("*")) if (repo / "snapshots").is_dir() else []
    return snaps[-1] if len(snaps) == 1 else None


def locate(text: str, base_dir: Path, field: str) -> Path:
    """A model folder from a spec path: local folder first, then the local hub cache."""
    from .specload import resolve_path

    path = resolve_path(text, base_dir)
    if path.is_dir():
        return path
    if path.exists():
        raise ModelError(f"{field}: {text!r} is a file; expected a model folder")
    if _HUB_ID.match(text) and not text.startswith((".", "/", "~")):
        snap = find_in_hub_cache(text)
        if snap is not None:
            return snap
        raise ModelError(
            f"{field}: {text!r} is not a local folder and not in the local Hugging Face cache "
            f"({hub_cache_dir()}); reportgen never downloads models"
        )
    raise ModelError(f"{field}: model folder {text!r} does not exist")


def read_config(folder: Path, field: str, source: str) -> dict[str, Any]:
    cfg = folder / "config.json"
    if not cfg.is_file():
        raise ModelError(
            f"{field}: {source!r} has no config.json; expected a transformers model folder")
    try:
        data = json.loads(cfg.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelError(f"{field}: {source}/config.json is not valid JSON ({e})") from None
    if not isinstance(data, dict) or "model_type" not in data:
        raise ModelError(f"{field}: {source}/config.json has no model_type")
    return data


def check_weights(folder: Path, field: str, source: str) -> None:
    """Safetensors must be present; pickle weights alone are refused, never unpickled."""
    if list(folder.glob("*.safetensors")):
        return
    pickles = [p.name for p in folder.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".ckpt")]
    if pickles:
        raise ModelError(
            f"{field}: {source!r} has only pickle weights ({', '.join(sorted(pickles))}); "
            "convert them to safetensors (reportgen does not unpickle untrusted files)"
        )
    raise ModelError(f"{field}: {source!r} has a config but no weights (*.safetensors)")


def detect_kind(config: dict[str, Any]) -> tuple[str, str]:
    """(kind, architecture) from a config: causal LM, masked LM, or a plain encoder."""
    archs = config.get("architectures") or []
    arch = archs[0] if archs else config.get("model_type", "unknown")
    if arch.endswith(("ForCausalLM", "LMHeadModel")):
        return "causal-lm", arch
    if arch.endswith("ForMaskedLM"):
        return "masked-lm", arch
    if not archs and config.get("model_type") in ("gpt2", "llama", "mistral", "gpt_neox", "qwen2"):
        return "causal-lm", arch
    return "encoder", arch


def resolve(name: str, role: str, source: str, base_dir: Path, field: str) -> ResolvedModel:
    """Identify a model from the spec: locate, read its config, check weights, hash it."""
    folder = locate(source, base_dir, field)
    config = read_config(folder, field, source)
    check_weights(folder, field, source)
    kind, arch = detect_kind(config)
    return ResolvedModel(name, role, source, field, folder, config, kind, arch,
                         digest_folder(folder))


def derive(name: str, role: str, src: ResolvedModel, quantize: str, field: str) -> ResolvedModel:
    bits = 4 if quantize == "int4" else 8
    recipe = f"int{bits} per-output-channel absmax weight round-trip of every weight matrix"
    return ResolvedModel(
        name, role, f"derive: {quantize} of {src.name}", field, src.path, src.config, src.kind,
        src.architecture, derived_digest(src.digest, recipe), src.name, recipe, bits,
    )


_SHAPE_KEYS = ("model_type", "num_hidden_layers", "n_layer", "hidden_size", "n_embd")


def check_compatible(base: ResolvedModel, cand: ResolvedModel) -> None:
    """Base and candidate must share architecture and shape; say exactly what differs."""
    diffs = []
    if base.architecture != cand.architecture:
        diffs.append(f"architecture {base.architecture} vs {cand.architecture}")
    for k in _SHAPE_KEYS:
        if k in base.config and base.config.get(k) != cand.config.get(k):
            diffs.append(f"{k} {base.config.get(k)} vs {cand.config.get(k)}")
    if diffs:
        raise ModelError(
            f"{cand.field}: {cand.name!r} cannot be compared with the base: "
            + "; ".join(diffs)
        )


def parameter_count(model: Any) -> int:
    seen, n = set(), 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            n += p.numel()
    return n
