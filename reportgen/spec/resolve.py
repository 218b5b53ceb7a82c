"""Resolve, identify and load checkpoints: local folders or hub ids from the local cache.

Nothing here downloads: offline mode is forced before transformers is imported, weights
must be safetensors (pickle only where the spec sets ``allow_pickle``; safetensors headers are
validated before loading), and remote code runs only where the spec sets ``trust_remote_code``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any

from reportgen.core.errors import ModelError
from reportgen.core.records import Digest
from reportgen.spec.digest import derived_digest, digest_folder
from reportgen.spec.loadfiles import check_references

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

KINDS = ("causal-lm", "masked-lm", "encoder")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class LoadOptions:
    """The per-model load options of the spec (``adapter``, ``dtype``, ``device``, ...)."""

    adapter: str | None = None
    dtype: str = "float32"
    device: str = "cpu"
    allow_pickle: bool = False
    trust_remote_code: bool = False
    max_memory: dict[str, int | str] | None = None  # device: auto only

    @classmethod
    def of(cls, ref: Any) -> LoadOptions:
        """From a spec model entry (BaseModelRef / CandidateRef), or defaults for None."""
        if ref is None:
            return cls()
        return cls(**{k: getattr(ref, k, getattr(cls, k)) for k in cls.__dataclass_fields__})


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
    options: LoadOptions = dataclass_field(default_factory=LoadOptions)  # adapter: as in the spec
    adapter_path: Path | None = None
    adapter_digest: Digest | None = None
    #: The files the loader may read (those the digest hashed): it reads them through
    #: :func:`reportgen.spec.loadfiles.sealed_view`, so it cannot open anything else.
    files: tuple[str, ...] = ()

    @property
    def capture_identity(self) -> str:
        """What a capture of this model depends on: weights, adapter and dtype."""
        parts = [self.digest.root]
        if self.adapter_digest is not None:
            parts.append("adapter:" + self.adapter_digest.root)
        if self.options.dtype != "float32":
            parts.append("dtype:" + self.options.dtype)
        return parts[0] if len(parts) == 1 else hashlib.sha256(
            "\n".join(parts).encode()).hexdigest()


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
    from reportgen.spec.yamlsrc import resolve_path

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


_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")


def check_weights(folder: Path, field: str, source: str, allow_pickle: bool = False,
                  allow_field: str = "allow_pickle") -> None:
    """Safetensors must be present and sound; pickle weights alone are refused unless
    ``allow_pickle`` (then they are loaded, never before)."""
    tensors = sorted(folder.glob("*.safetensors"))
    if tensors:
        for path in tensors:
            check_safetensors(path, field, source)
        return
    if not _allowed_pickles(folder, field, source, allow_pickle, allow_field,
                            "only pickle weights"):
        raise ModelError(f"{field}: {source!r} has a config but no weights (*.safetensors)")


ADAPTER_WEIGHTS = "adapter_model.safetensors"  # the one safetensors file PEFT reads


def check_adapter_weights(folder: Path, field: str, source: str, allow_pickle: bool,
                          allow_field: str) -> None:
    """Like :func:`check_weights`, for the file PEFT actually reads: without
    ``adapter_model.safetensors`` it unpickles ``adapter_model.bin``, whatever other
    ``*.safetensors`` files lie beside it, so only that name counts."""
    if (folder / ADAPTER_WEIGHTS).is_file():
        check_safetensors(folder / ADAPTER_WEIGHTS, field, source)
        return
    if not _allowed_pickles(folder, field, source, allow_pickle, allow_field,
                            f"no {ADAPTER_WEIGHTS}, only pickle weights"):
        raise ModelError(f"{field}: {source!r} has an adapter_config.json but no adapter "
                         f"weights ({ADAPTER_WEIGHTS})")


def _allowed_pickles(folder: Path, field: str, source: str, allow_pickle: bool,
                     allow_field: str, has: str) -> bool:
    """True when pickle weights are there and allowed; raises when they are there and not
    allowed; False when there are none (the caller says what is missing)."""
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix in _PICKLE_SUFFIXES)
    if pickles and not allow_pickle:
        raise ModelError(
            f"{field}: {source!r} has {has} ({', '.join(pickles)}); "
            f"convert them to safetensors, or set {allow_field}: true if you trust them "
            "(unpickling can run code)"
        )
    return bool(pickles)


def check_safetensors(path: Path, field: str, source: str) -> None:
    """Validate the header and that the file holds exactly the bytes it describes (no load)."""
    from safetensors import safe_open

    shown = f"{source.rstrip('/')}/{path.name}"
    try:
        with safe_open(str(path), framework="numpy") as f:
            f.keys()
    except Exception as e:  # safetensors raises its own SafetensorError, or OSError
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ModelError(f"{field}: {shown} is truncated or corrupt ({first})") from None


def check_remote_code(config: dict[str, Any], name: str, prefix: str, source: str,
                      allowed: bool) -> None:
    """A config whose classes live in the checkpoint's own Python files needs consent."""
    if allowed or not config.get("auto_map"):
        return
    raise ModelError(
        f"{prefix}.trust_remote_code: {name!r} ({source!r}) needs its own Python code "
        "(config.json auto_map); set trust_remote_code: true for this model only if you "
        "trust it"
    )


def check_device(device: str, name: str, prefix: str) -> None:
    """``cuda`` needs a GPU and ``auto`` needs accelerate; say so before anything loads."""
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ModelError(f"{prefix}.device: 'cuda' was asked for {name!r} but no CUDA GPU "
                             "is available; use device: cpu or auto")
    if device == "auto":
        import importlib.util

        if importlib.util.find_spec("accelerate") is None:
            raise ModelError(f"{prefix}.device: 'auto' for {name!r} needs the accelerate "
                             "package (pip install accelerate)")


def resolve_adapter(text: str, base_dir: Path, field: str, allow_pickle: bool,
                    allow_field: str = "allow_pickle") -> tuple[Path, Digest]:
    """A PEFT adapter folder: adapter_config.json and weights, hashed like a checkpoint."""
    folder = check_adapter(text, base_dir, field, allow_pickle, allow_field)
    digest = digest_folder(folder)
    check_references(folder, (f.name for f in digest.files), field, text)
    return folder, digest


def check_adapter(text: str, base_dir: Path, field: str, allow_pickle: bool,
                  allow_field: str = "allow_pickle") -> Path:
    """The adapter folder, once its config and weights are there (nothing hashed or loaded)."""
    from reportgen.spec.yamlsrc import resolve_path

    folder = resolve_path(text, base_dir)
    if not folder.is_dir():
        what = "is a file" if folder.exists() else "does not exist"
        raise ModelError(f"{field}: adapter folder {text!r} {what}; expected a PEFT "
                         "adapter folder")
    if not (folder / "adapter_config.json").is_file():
        raise ModelError(f"{field}: {text!r} has no adapter_config.json; expected a PEFT "
                         "adapter folder (save_pretrained)")
    check_adapter_weights(folder, field, text, allow_pickle, allow_field)
    return folder


def _prefix(field: str) -> str:
    """``models.candidates[0]`` from ``models.candidates[0].path``."""
    return field[: -len(".path")] if field.endswith(".path") else field


def auto_class(kind: str) -> Any:
    """The transformers Auto class that loads a model of ``kind`` (with its head)."""
    import transformers as tf

    return {"causal-lm": tf.AutoModelForCausalLM, "masked-lm": tf.AutoModelForMaskedLM,
            "encoder": tf.AutoModel}[kind]


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


def resolve(name: str, role: str, source: str, base_dir: Path, field: str,
            options: Any = None) -> ResolvedModel:
    """Identify a model from the spec: locate, read its config, check weights, hash it.

    ``options``: the spec's model entry (or a :class:`LoadOptions`) with ``adapter``,
    ``dtype``, ``device``, ``allow_pickle`` and ``trust_remote_code``; None: the defaults.
    """
    opts = options if isinstance(options, LoadOptions) else LoadOptions.of(options)
    prefix = _prefix(field)
    folder = locate(source, base_dir, field)
    config = read_config(folder, field, source)
    check_remote_code(config, name, prefix, source, opts.trust_remote_code)
    check_weights(folder, field, source, opts.allow_pickle, f"{prefix}.allow_pickle")
    check_device(opts.device, name, prefix)
    adapter_path, adapter_digest = (None, None)
    if opts.adapter is not None:
        adapter_path, adapter_digest = resolve_adapter(
            opts.adapter, base_dir, f"{prefix}.adapter", opts.allow_pickle,
            f"{prefix}.allow_pickle")
    kind, arch = detect_kind(config)
    digest = digest_folder(folder)
    files = tuple(f.name for f in digest.files)
    check_references(folder, files, field, source)
    return ResolvedModel(
        name, role, source, field, folder, config, kind, arch, digest,
        options=opts, adapter_path=adapter_path, adapter_digest=adapter_digest, files=files,
    )


def derive(name: str, role: str, src: ResolvedModel, quantize: str, field: str) -> ResolvedModel:
    bits = 4 if quantize == "int4" else 8
    recipe = f"int{bits} per-output-channel absmax weight round-trip of every weight matrix"
    return ResolvedModel(
        name, role, f"derive: {quantize} of {src.name}", field, src.path, src.config, src.kind,
        src.architecture, derived_digest(src.digest, recipe, src.adapter_digest),
        src.name, recipe, bits,
        options=src.options, adapter_path=src.adapter_path, adapter_digest=src.adapter_digest,
        files=src.files,
    )


_LAYER_KEYS = ("num_hidden_layers", "n_layer", "n_layers", "num_layers")
_WIDTH_KEYS = ("hidden_size", "n_embd", "dim", "d_model")
_SHAPE_KEYS = ("model_type", *_LAYER_KEYS, *_WIDTH_KEYS)


def model_shape(config: dict[str, Any]) -> tuple[int, int]:
    """(hidden width, number of blocks) from a config.json, whatever the family calls them
    (GPT-2 n_embd / n_layer, DistilBERT dim / n_layers, …); 0 where it does not say."""
    width = next((config[k] for k in _WIDTH_KEYS if isinstance(config.get(k), int)), 0)
    layers = next((config[k] for k in _LAYER_KEYS if isinstance(config.get(k), int)), 0)
    return int(width), int(layers)


def incompatibilities(base_arch: str, base: dict[str, Any], cand_arch: str,
                      cand: dict[str, Any]) -> list[str]:
    """What differs between two configs that base and candidate must share (empty: none)."""
    diffs = []
    if base_arch != cand_arch:
        diffs.append(f"architecture {base_arch} vs {cand_arch}")
    same_type = base.get("model_type") == cand.get("model_type")
    for k in _SHAPE_KEYS if same_type else _SHAPE_KEYS[:1]:
        if k in base and base.get(k) != cand.get(k):
            diffs.append(f"{k} {base.get(k)} vs {cand.get(k)}")
    return diffs


def check_compatible(base: ResolvedModel, cand: ResolvedModel) -> None:
    """Base and candidate must share architecture and shape; say exactly what differs."""
    diffs = incompatibilities(base.architecture, base.config, cand.architecture, cand.config)
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
