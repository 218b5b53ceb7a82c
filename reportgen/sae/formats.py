"""Read SAE folders written by SAELens or EleutherAI sparsify; write SAELens folders.

SAELens: ``cfg.json`` + ``sae_weights.safetensors``. Configs from SAELens 6 and later carry
``architecture`` and a nested ``metadata``; older (flat) configs are converted the way
SAELens' ``handle_pre_6_0_config`` does (``activation_fn_str: topk`` with
``activation_fn_kwargs.k`` means a TopK SAE, a boolean ``normalize_activations`` means
``expected_average_only_in`` or ``none``, ``hook_point`` is ``hook_name``).
sparsify: ``cfg.json`` + ``sae.safetensors`` with ``encoder.weight (d_sae, d_in)``,
``encoder.bias``, ``W_dec (d_sae, d_in)``, ``b_dec`` and, with ``skip_connection``, ``W_skip``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from reportgen.core.errors import InputError
from reportgen.sae.files import CFG, SAELENS_WEIGHTS
from reportgen.sae.model import (
    ACTIVATIONS,
    ARCHITECTURES,
    FOLDED_NORMALIZATIONS,
    NORMALIZATIONS,
    SAE,
    HookInfo,
)

# a SAELens folder's two files; the certificate names them too (without importing torch)
SPARSIFY_WEIGHTS = "sae.safetensors"
# The config layout save_saelens writes: SAELens reads configs without a version as pre-6.0.
SAELENS_FORMAT_VERSION = "6.0.0"

_TENSORS = {
    "standard": ("W_enc", "b_enc", "W_dec", "b_dec"),
    "topk": ("W_enc", "b_enc", "W_dec", "b_dec"),
    "jumprelu": ("W_enc", "b_enc", "W_dec", "b_dec", "threshold"),
    "gated": ("W_enc", "W_dec", "b_dec", "b_gate", "r_mag", "b_mag"),
}


def load_sae(path: str | os.PathLike[str]) -> SAE:
    """Load a SAELens or sparsify folder; every problem is one InputError naming the folder."""
    folder = Path(path)
    if not folder.exists():
        raise InputError(f"{folder}: SAE folder not found")
    if not folder.is_dir():
        raise InputError(f"{folder}: expected an SAE folder, found a file")
    has_cfg = (folder / CFG).is_file()
    if has_cfg and (folder / SAELENS_WEIGHTS).is_file():
        return _load_saelens(folder)
    if has_cfg and (folder / SPARSIFY_WEIGHTS).is_file():
        return _load_sparsify(folder)
    raise InputError(
        f"{folder}: unknown SAE format: expected {CFG} with {SAELENS_WEIGHTS} (SAELens) "
        f"or {SPARSIFY_WEIGHTS} (EleutherAI sparsify)"
    )


# ----------------------------------------------------------------------------- SAELens


def _load_saelens(folder: Path) -> SAE:
    cfg = _saelens_cfg(_read_cfg(folder), folder / CFG)
    arch = cfg["architecture"]
    tensors = _read_tensors(folder / SAELENS_WEIGHTS)
    if arch == "jumprelu" and "threshold" not in tensors and "log_threshold" in tensors:
        # Training checkpoints of some SAELens versions store log(threshold).
        tensors["threshold"] = tensors.pop("log_threshold").exp()
    check = _checker(folder / SAELENS_WEIGHTS, tensors, cfg["d_in"], cfg["d_sae"], arch)
    shapes = {"W_enc": ("d_in", "d_sae"), "W_dec": ("d_sae", "d_in"), "b_dec": ("d_in",)}
    got = {name: check(name, shapes.get(name, ("d_sae",))) for name in _TENSORS[arch]}
    sae = SAE(
        architecture=arch,
        apply_b_dec_to_input=bool(cfg["apply_b_dec_to_input"]),
        normalize_activations=cfg["normalize_activations"],
        activation_fn=cfg["activation_fn"],
        k=cfg["k"],
        rescale_acts_by_decoder_norm=bool(cfg["rescale_acts_by_decoder_norm"]),
        finetuning_scaling_factor=_scaling_factor(tensors, check, cfg, folder / SAELENS_WEIGHTS),
        hook=cfg["hook"],
        source="saelens",
        **got,
    )
    if sae.normalize_activations in FOLDED_NORMALIZATIONS:
        sae.notes.append(
            f"normalize_activations {sae.normalize_activations!r} is folded into the weights "
            "when SAELens training ends; as in SAELens, nothing is applied when encoding"
        )
    return sae


def _saelens_cfg(raw: dict[str, Any], where: Path) -> dict[str, Any]:
    """The fields encoding depends on, from a flat (pre-6.0) or nested (6.0+) config."""
    meta = raw.get("metadata") if isinstance(raw.get("metadata"), dict) else {}
    version = raw.get("sae_lens_version") or meta.get("sae_lens_version")
    pre6 = not version or _major(str(version)) < 6
    arch = raw.get("architecture", "standard")
    activation = "relu"
    k = raw.get("k")
    if pre6:
        activation = raw.get("activation_fn_str", raw.get("activation_fn", "relu")) or "relu"
        kwargs = raw.get("activation_fn_kwargs") or {}
        if activation == "topk":
            k = kwargs.get("k") if isinstance(kwargs, dict) else None
            if k is None:
                raise InputError(f"{where}: activation_fn 'topk' needs activation_fn_kwargs.k")
            arch, activation = "topk", "relu"
        elif activation not in ACTIVATIONS:
            known = ", ".join((*ACTIVATIONS, "topk"))
            raise InputError(f"{where}: unknown activation_fn {activation!r}: known are {known}")
    if arch not in ARCHITECTURES:
        raise InputError(
            f"{where}: unknown SAE architecture {arch!r}: known architectures are "
            + ", ".join(ARCHITECTURES)
        )
    d_in, d_sae = _positive_int(raw, "d_in", where), _positive_int(raw, "d_sae", where)
    return {
        "architecture": arch,
        "d_in": d_in,
        "d_sae": d_sae,
        "k": _topk_k(arch, k, d_sae, where),
        "activation_fn": activation,
        "apply_b_dec_to_input": raw.get("apply_b_dec_to_input", True),
        "normalize_activations": _normalization(raw.get("normalize_activations"), where),
        "rescale_acts_by_decoder_norm": arch == "topk" and raw.get("rescale_acts_by_decoder_norm"),
        "finetuning_scaling_factor": bool(raw.get("finetuning_scaling_factor")),
        "hook": _saelens_hook(raw, meta),
    }


def _major(version: str) -> int:
    match = re.match(r"\s*v?(\d+)", version)
    return int(match.group(1)) if match else 0


def _topk_k(arch: str, k: Any, d_sae: int, where: Path) -> int | None:
    if arch != "topk":
        return None
    if k is None:
        raise InputError(f"{where}: architecture 'topk' needs 'k'")
    k = _positive_int({"k": k}, "k", where)
    if k > d_sae:
        raise InputError(f"{where}: k {k} is larger than d_sae {d_sae}")
    return k


def _normalization(value: Any, where: Path) -> str:
    if value is None or value is False:
        return "none"
    if value is True:  # SAELens < 3 wrote a boolean
        return "expected_average_only_in"
    if value not in NORMALIZATIONS:
        raise InputError(
            f"{where}: unknown normalize_activations {value!r}: known modes are "
            + ", ".join(NORMALIZATIONS)
        )
    return str(value)


def _saelens_hook(raw: dict[str, Any], meta: dict[str, Any]) -> HookInfo:
    name = meta.get("hook_name") or raw.get("hook_name") or raw.get("hook_point")
    layer = meta.get("hook_layer", raw.get("hook_layer", raw.get("hook_point_layer")))
    model = meta.get("model_name") or raw.get("model_name")
    return HookInfo(name=name, layer=_layer(name, layer), model_name=model)


def _layer(name: str | None, layer: Any) -> int | None:
    if isinstance(layer, int) and not isinstance(layer, bool):
        return layer
    match = re.search(r"(?:blocks|layers|layer|h)\.(\d+)", name or "")
    return int(match.group(1)) if match else None


def _scaling_factor(
    tensors: dict[str, torch.Tensor], check: Callable, cfg: dict[str, Any], where: Path
) -> torch.Tensor | None:
    """SAELens before 6.0 could fine-tune a per-feature scale applied before decoding;
    all-ones scales are dropped, as SAELens' ``read_sae_components_from_disk`` does."""
    name = next((n for n in ("finetuning_scaling_factor", "scaling_factor") if n in tensors), None)
    if name is None:
        return None
    scale = check(name, ("d_sae",))
    if torch.allclose(scale, torch.ones_like(scale)):
        return None
    if not cfg["finetuning_scaling_factor"]:
        raise InputError(
            f"{where}: tensor '{name}' is not all ones but {CFG} has no finetuning_scaling_factor"
        )
    return scale


# ----------------------------------------------------------------------------- sparsify


def _load_sparsify(folder: Path) -> SAE:
    where = folder / CFG
    raw = _read_cfg(folder)
    if raw.get("transcode"):
        raise InputError(
            f"{where}: sparsify transcoders (transcode: true) are not supported: "
            "expected a sparse autoencoder"
        )
    if raw.get("signed"):  # an early EleutherAI/sae option: no ReLU, top-k by magnitude
        raise InputError(f"{where}: sparsify signed SAEs (signed: true) are not supported")
    if raw.get("activation", "topk") != "topk":
        raise InputError(
            f"{where}: sparsify activation {raw['activation']!r} is not supported: expected 'topk'"
        )
    # Defaults as in sparsify's SparseCoderConfig: num_latents 0 means d_in * expansion_factor.
    d_in = _positive_int(raw, "d_in", where)
    raw = {"k": 32, "expansion_factor": 32, **raw}
    if raw.get("num_latents"):
        d_sae = _positive_int(raw, "num_latents", where)
    else:
        d_sae = d_in * _positive_int(raw, "expansion_factor", where)
    k = _topk_k("topk", raw["k"], d_sae, where)
    weights = folder / SPARSIFY_WEIGHTS
    tensors = _read_tensors(weights)
    check = _checker(weights, tensors, d_in, d_sae, "sparsify")
    skip = check("W_skip", ("d_in", "d_in")) if raw.get("skip_connection") else None
    name = folder.name
    return SAE(
        architecture="topk",
        W_enc=check("encoder.weight", ("d_sae", "d_in")).T.contiguous(),
        b_enc=check("encoder.bias", ("d_sae",)),
        W_dec=check("W_dec", ("d_sae", "d_in")),
        b_dec=check("b_dec", ("d_in",)),
        k=k,
        W_skip=skip,
        hook=HookInfo(name=name, layer=_layer(name, None)),
        source="sparsify",
    )


# ----------------------------------------------------------------------------- shared


def _read_cfg(folder: Path) -> dict[str, Any]:
    path = folder / CFG
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read: {err}") from err
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: invalid JSON: {err}") from err
    if not isinstance(raw, dict):
        raise InputError(f"{path}: expected a JSON object")
    return raw


def _positive_int(raw: dict[str, Any], key: str, where: Path) -> int:
    if key not in raw:
        raise InputError(f"{where}: missing '{key}'")
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InputError(f"{where}: '{key}' must be a positive integer, got {value!r}")
    return value


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            return {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118
    except Exception as err:  # safetensors raises its own error types, and OSError
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(f"{path}: cannot read safetensors: {first}") from err


def _checker(
    path: Path, tensors: dict[str, torch.Tensor], d_in: int, d_sae: int, kind: str
) -> Callable[[str, tuple[str, ...]], torch.Tensor]:
    """A function returning a named tensor as float32 after checking it against the cfg."""
    dims = {"d_in": d_in, "d_sae": d_sae}
    needed = _TENSORS.get(kind, ("encoder.weight", "encoder.bias", "W_dec", "b_dec"))

    def check(name: str, shape: tuple[str, ...]) -> torch.Tensor:
        if name not in tensors:
            raise InputError(
                f"{path}: missing tensor '{name}' ({kind} SAEs need {', '.join(needed)})"
            )
        want = tuple(dims[d] for d in shape)
        got = tuple(tensors[name].shape)
        if got != want:
            implied = ", ".join(f"{d} {dims[d]}" for d in dict.fromkeys(shape))
            raise InputError(
                f"{path}: tensor '{name}' has shape {got} but {CFG} ({implied}) implies {want}"
            )
        return tensors[name].to(torch.float32).contiguous()

    return check


# ----------------------------------------------------------------------------- writing


def save_saelens(
    sae: SAE,
    folder: str | os.PathLike[str],
    hook_name: str,
    hook_layer: int | None = None,
    extra_cfg: dict[str, Any] | None = None,
) -> Path:
    """Write ``sae`` as a SAELens (6.x layout) folder, atomically: a temporary folder is
    filled next to the target and renamed into place, so readers never see half a folder.

    ``extra_cfg`` goes into ``metadata`` (SAELens keeps unknown metadata keys).
    """
    folder = Path(folder)
    cfg, tensors = _saelens_payload(sae, hook_name, hook_layer, extra_cfg or {})
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; the SAE is an ordinary output folder
    try:
        save_file(tensors, str(tmp / SAELENS_WEIGHTS))
        (tmp / CFG).write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
        _replace_dir(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _saelens_payload(
    sae: SAE, hook_name: str, hook_layer: int | None, extra: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    if sae.W_skip is not None or sae.finetuning_scaling_factor is not None:
        raise ValueError("SAELens has no skip connection or fine-tuning scale to save this SAE")
    if sae.activation_fn != "relu":
        raise ValueError(f"SAELens 6 has no activation {sae.activation_fn!r}")
    from reportgen.core.version import __version__

    metadata = {
        **extra,
        "hook_name": hook_name,
        "hook_layer": hook_layer,
        "sae_lens_version": SAELENS_FORMAT_VERSION,
        "sae_lens_training_version": SAELENS_FORMAT_VERSION,
        "written_by": f"reportgen {__version__}",
    }
    cfg: dict[str, Any] = {
        "architecture": sae.architecture,
        "d_in": sae.d_in,
        "d_sae": sae.d_sae,
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": sae.apply_b_dec_to_input,
        "normalize_activations": sae.normalize_activations,
        "reshape_activations": "none",
        "metadata": metadata,
    }
    if sae.architecture == "topk":
        cfg["k"] = sae.k
        cfg["rescale_acts_by_decoder_norm"] = sae.rescale_acts_by_decoder_norm
    tensors = {n: getattr(sae, n).contiguous() for n in _TENSORS[sae.architecture]}
    return cfg, tensors


def _replace_dir(new: Path, final: Path) -> None:
    """Swap ``new`` into ``final``; an existing folder is moved aside first, then removed."""
    old = None
    if final.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}-old-", dir=final.parent))
        os.replace(final, old / final.name)
    os.replace(new, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
