"""The effective weights of a PEFT LoRA candidate, read from the files (no model load).

A candidate ``{path: BASE, adapter: DIR}`` is captured as PEFT's ``merge_and_unload`` leaves
it, so its weight drift must be that of the same weights: every module the adapter targets
becomes W + ΔW, with ΔW = B·A · scaling (``lora_alpha / r``, or ``lora_alpha / √r`` with
``use_rslora``; ``rank_pattern`` / ``alpha_pattern`` per module), transposed for GPT-2's
``Conv1D`` (PEFT sets ``fan_in_fan_out`` from the layer type, whatever the config says) and
(B·A)ᵀ for an embedding; ``lora_bias`` adds B's bias · scaling; ``modules_to_save`` tensors
replace the checkpoint's. A head tied to the input embedding follows PEFT too: LoRA on
either moves the one shared tensor; a ``modules_to_save`` copy of either unties them.

Which module is a ``Conv1D``, a ``Linear`` or an embedding, and whether the head is tied,
comes from the model built on the meta device (structure only, no weights). Anything else
(DoRA, other PEFT types, trained base biases, trainable tokens, ...) raises
:class:`NotReproduced` with the reason, so the weights family reports "not available"
rather than a number for weights it did not see.
"""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reportgen.families.weights.metrics import Checkpoint, TensorSource

if TYPE_CHECKING:
    import torch

PREFIX = "base_model.model."
ADAPTER_FILE = "adapter_model.safetensors"
#: adapter_config.json keys that do not change the merged weights once the tensors are saved
#: (which modules are targeted is read from the saved tensors themselves)
_INERT = frozenset({
    "alpha_pattern", "auto_mapping", "base_model_name_or_path", "exclude_modules",
    "fan_in_fan_out", "inference_mode", "layers_pattern", "layers_to_transform", "lora_alpha",
    "lora_bias", "lora_dropout", "megatron_config", "megatron_core", "modules_to_save",
    "peft_type", "peft_version", "qalora_group_size", "r", "rank_pattern", "revision",
    "target_modules", "task_type", "use_rslora"})
_ALLOWED = {"bias": ("none",), "init_lora_weights": (True, False, "gaussian", "orthogonal")}
_LORA = re.compile(r"^(.+)\.(lora_A|lora_B)\.(weight|bias)$")
_LORA_EMB = re.compile(r"^(.+)\.(lora_embedding_A|lora_embedding_B)$")
_BASE_LAYER = re.compile(r"^(.+)\.base_layer\.(\w+)$")
_KINDS = {"Linear": "linear", "Conv1D": "conv1d", "Embedding": "embedding"}


class NotReproduced(Exception):
    """An adapter whose merged weights this module cannot compute exactly; says why."""


@dataclass(frozen=True)
class Layout:
    """What the merge needs of a model's structure: module types and the tied head."""

    modules: dict[str, str]  # module path -> class name ('Conv1D', 'Linear', 'Embedding')
    embedding: str | None  # input-embedding module path
    head: str | None  # output-embedding module path
    tied: bool


def model_layout(path: str, kind: str, trust_remote_code: bool = False) -> Layout:
    """The model at ``path`` built on the meta device: its modules, not its weights."""
    stamp = (Path(path) / "config.json").stat().st_mtime_ns
    return _layout(path, stamp, kind, trust_remote_code)


@functools.lru_cache(maxsize=8)
def _layout(path: str, stamp: int, kind: str, trust_remote_code: bool) -> Layout:
    """:func:`model_layout`, memoised while config.json is unchanged (``stamp``)."""
    import torch
    import transformers as tf

    from reportgen.spec.resolve import auto_class

    try:
        cfg = tf.AutoConfig.from_pretrained(path, local_files_only=True,
                                            trust_remote_code=trust_remote_code)
        with torch.device("meta"):
            model = auto_class(kind).from_config(cfg, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, ImportError) as e:
        raise NotReproduced(f"the model's structure could not be built ({e})") from None
    names = {id(m): n for n, m in model.named_modules()}
    emb = model.get_input_embeddings()
    head = model.get_output_embeddings()
    tied = emb is not None and head is not None and head.weight is emb.weight
    return Layout({n: type(m).__name__ for n, m in model.named_modules()},
                  names.get(id(emb)), names.get(id(head)), tied)


def pattern_value(patterns: dict[str, Any], module: str, default: Any) -> Any:
    """PEFT's per-module rank or alpha: the first pattern ``p`` such that the module name
    matches ``(.*\\.)?(p)$`` (peft.utils.other.get_pattern_key), else ``default``."""
    for p in patterns:
        if re.match(rf"(.*\.)?({p})$", module):
            return patterns[p]
    return patterns.get(module, default)


def check_config(cfg: dict[str, Any]) -> None:
    """Refuse every option that changes the merged weights in a way not reproduced here."""
    if cfg.get("peft_type") != "LORA":
        raise NotReproduced(f"{cfg.get('peft_type')} adapters are not reproduced (only LoRA)")
    for key, value in sorted(cfg.items()):
        if key in _INERT:
            continue
        if key in _ALLOWED:
            if value not in _ALLOWED[key]:
                raise NotReproduced(f"{key}={value!r} is not reproduced")
        elif value:  # any other option (use_dora, trainable_token_indices, ...) left unset
            raise NotReproduced(f"{key}={value!r} is not reproduced")


@dataclass(frozen=True)
class Delta:
    """One LoRA update of a tensor: B·A · scaling, shaped as the layer stores its weight."""

    a: str  # adapter key of A ("" for a bias update)
    b: str
    scaling: float
    layer: str  # 'linear' | 'conv1d' | 'embedding' | 'bias'


@dataclass
class Plan:
    """How each tensor of the merged model is made from the checkpoint and the adapter."""

    replace: dict[str, str] = field(default_factory=dict)  # checkpoint name -> adapter key
    deltas: dict[str, list[Delta]] = field(default_factory=dict)  # checkpoint name -> updates
    #: tensors the merge adds (an untied head): name -> ('adapter' | 'checkpoint', key)
    extra: dict[str, tuple[str, str]] = field(default_factory=dict)


class AdapterSource:
    """A checkpoint's tensors as the merged model holds them (see :class:`Plan`)."""

    def __init__(self, checkpoint: TensorSource, folder: Path, plan: Plan) -> None:
        self.checkpoint, self.file, self.plan = checkpoint, folder / ADAPTER_FILE, plan

    def shapes(self) -> dict[str, tuple[int, ...]]:
        shapes = dict(self.checkpoint.shapes())
        own = _adapter_shapes(self.file)
        shapes.update({n: own[k] for n, k in self.plan.replace.items()})
        for name, (where, key) in self.plan.extra.items():
            shapes[name] = own[key] if where == "adapter" else shapes[key]
        return shapes

    def read(self, name: str) -> torch.Tensor:
        import torch

        if name in self.plan.extra:
            where, key = self.plan.extra[name]
            return self._adapter(key) if where == "adapter" else self.checkpoint.read(key)
        key = self.plan.replace.get(name)
        t = self._adapter(key) if key else self.checkpoint.read(name)
        deltas = self.plan.deltas.get(name, [])
        if deltas:
            t = t.to(torch.float32) + sum((self._delta(d) for d in deltas),
                                          torch.zeros((), dtype=torch.float32))
        return t

    def _adapter(self, key: str) -> torch.Tensor:
        from safetensors import safe_open

        with safe_open(self.file, framework="pt") as h:
            return h.get_tensor(key)

    def _delta(self, d: Delta) -> torch.Tensor:
        import torch

        b = self._adapter(d.b).to(torch.float32)
        if d.layer == "bias":
            return b * d.scaling
        ba = b @ self._adapter(d.a).to(torch.float32)
        return (ba.T if d.layer in ("conv1d", "embedding") else ba) * d.scaling


def _adapter_shapes(file: Path) -> dict[str, tuple[int, ...]]:
    from safetensors import safe_open

    with safe_open(file, framework="pt") as h:
        return {k: tuple(h.get_slice(k).get_shape()) for k in h.keys()}  # noqa: SIM118


def model_source(path: Path, adapter: Path | None, kind: str,
                 trust_remote_code: bool = False) -> TensorSource:
    """A model's weights as loaded: its checkpoint, with its adapter merged when it has one."""
    checkpoint = Checkpoint(path)
    if adapter is None:
        return checkpoint
    layout = model_layout(str(path), kind, trust_remote_code)
    return adapter_source(checkpoint, adapter, layout)


def adapter_source(checkpoint: TensorSource, folder: Path, layout: Layout) -> AdapterSource:
    """The merged tensors of ``folder``'s adapter over ``checkpoint``; NotReproduced if the
    adapter uses anything :func:`plan` does not reproduce exactly."""
    try:
        cfg = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise NotReproduced(f"adapter_config.json is unreadable ({e})") from None
    if not isinstance(cfg, dict):
        raise NotReproduced("adapter_config.json is not a mapping")
    if not (folder / ADAPTER_FILE).is_file():
        raise NotReproduced(f"the adapter has no {ADAPTER_FILE} (pickle weights are not read)")
    check_config(cfg)
    shapes = _adapter_shapes(folder / ADAPTER_FILE)
    return AdapterSource(checkpoint, folder, plan(cfg, shapes, checkpoint.shapes(), layout))


# ------------------------------------------------------------------------------ the plan


def plan(cfg: dict[str, Any], shapes: dict[str, tuple[int, ...]],
         names: dict[str, tuple[int, ...]],
         layout: Layout) -> Plan:
    """Sort the adapter's tensors into replacements and LoRA updates of checkpoint tensors."""
    loras, base_layer, saved = _classify(shapes, cfg.get("modules_to_save") or [])
    where = _Names(layout, names)
    untie = any(where.tied_member(n) for n in saved)
    if untie and any(where.tied_member(n) for n in [*loras, *base_layer]):
        raise NotReproduced("LoRA and modules_to_save on the tied input embedding and head "
                            "together are not reproduced")
    out = Plan()
    for name, key in sorted({**base_layer, **saved}.items()):
        if untie and name == where.head_weight:
            out.extra[name] = ("adapter", key)
            continue
        target = where.target(name)
        if target in out.replace:
            raise NotReproduced(f"two adapter tensors replace {target!r}")
        out.replace[target] = key
    if untie and where.head_weight not in saved:
        out.extra[where.head_weight] = ("checkpoint", where.target(where.embedding_weight))
    for module, parts in sorted(loras.items()):
        for suffix, d, shape in _deltas(module, parts, cfg, shapes, layout):
            target = where.target(f"{module}.{suffix}")
            have = shapes[out.replace[target]] if target in out.replace else names[target]
            if tuple(have) != shape:
                raise NotReproduced(f"LoRA on {module} gives shape {list(shape)} but "
                                    f"{target!r} has shape {list(have)}")
            out.deltas.setdefault(target, []).append(d)
    return out


def _classify(shapes: dict[str, tuple[int, ...]], saved_modules: list[str]
              ) -> tuple[dict[str, dict[str, str]], dict[str, str], dict[str, str]]:
    """(LoRA parts by module, ``base_layer`` tensors, modules_to_save tensors), the latter
    two by the model-namespace tensor they replace."""
    loras: dict[str, dict[str, str]] = {}
    base_layer: dict[str, str] = {}
    saved: dict[str, str] = {}
    for key in sorted(shapes):
        if not key.startswith(PREFIX):
            raise NotReproduced(f"adapter tensor {key!r} is not named {PREFIX}…")
        rest = key[len(PREFIX):]
        if m := _LORA.match(rest) or _LORA_EMB.match(rest):
            loras.setdefault(m.group(1), {})[".".join(m.groups()[1:])] = key
        elif m := _BASE_LAYER.match(rest):
            base_layer[f"{m.group(1)}.{m.group(2)}"] = key
        elif any(rest.rsplit(".", 1)[0].endswith(s) for s in saved_modules):
            saved[rest] = key  # PEFT wraps every module whose name ends with an entry
        else:
            raise NotReproduced(f"adapter tensor {rest!r} is neither LoRA nor modules_to_save")
    return loras, base_layer, saved


def _deltas(module: str, parts: dict[str, str], cfg: dict[str, Any],
            shapes: dict[str, tuple[int, ...]], layout: Layout
            ) -> list[tuple[str, Delta, tuple[int, ...]]]:
    """(tensor suffix, update, its shape) for one LoRA module: the weight, and the bias with
    ``lora_bias``."""
    if module not in layout.modules:
        raise NotReproduced(f"the adapter targets {module}, which the model does not have")
    kind = _KINDS.get(layout.modules[module])
    emb = kind == "embedding"
    a = parts.get("lora_embedding_A" if emb else "lora_A.weight")
    b = parts.get("lora_embedding_B" if emb else "lora_B.weight")
    if kind is None or a is None or b is None or len(shapes[a]) != 2 or len(shapes[b]) != 2:
        raise NotReproduced(f"LoRA on {module} ({layout.modules[module]}) is not reproduced")
    r = shapes[a][0]
    r_cfg = pattern_value(cfg.get("rank_pattern") or {}, module, cfg.get("r"))
    if r != r_cfg:
        raise NotReproduced(f"{module}: rank {r} in {ADAPTER_FILE} but {r_cfg} in "
                            "adapter_config.json")
    alpha = pattern_value(cfg.get("alpha_pattern") or {}, module, cfg.get("lora_alpha"))
    scaling = alpha / math.sqrt(r) if cfg.get("use_rslora") else alpha / r
    out_in = (shapes[b][0], shapes[a][1])
    shape = out_in if kind == "linear" else out_in[::-1]
    out = [("weight", Delta(a, b, scaling, kind), shape)]
    if "lora_B.bias" in parts:
        out.append(("bias", Delta("", parts["lora_B.bias"], scaling, "bias"), (shapes[b][0],)))
    return out


class _Names:
    """Model-namespace tensor names to checkpoint names, through a tied head."""

    def __init__(self, layout: Layout, names: dict[str, tuple[int, ...]]) -> None:
        self.layout, self.names = layout, names
        self.embedding_weight = f"{layout.embedding}.weight"
        self.head_weight = f"{layout.head}.weight"
        #: the head shares the embedding's tensor, which the checkpoint stores once
        self.tied = layout.tied and self.locate(self.head_weight) is None

    def tied_member(self, name: str) -> bool:
        """Whether tensor or module ``name`` belongs to the tied embedding or head."""
        return self.tied and any(name == m or name.startswith(m + ".")
                                 for m in (self.layout.embedding, self.layout.head))

    def target(self, name: str) -> str:
        """The checkpoint tensor that ``name`` is: the embedding's for a tied head."""
        if self.tied and name == self.head_weight:
            name = self.embedding_weight
        found = self.locate(name)
        if found is None:
            raise NotReproduced(f"the adapter changes {name!r}, which the checkpoint does not "
                                "hold")
        return found

    def locate(self, name: str) -> str | None:
        """``name`` in the checkpoint, allowing one leading component more or less
        (``transformer.h.0…`` saved as ``h.0…``, or the other way round)."""
        if name in self.names:
            return name
        short = name.split(".", 1)[1] if "." in name else None
        if short in self.names:
            return short
        longer = [n for n in self.names if "." in n and n.split(".", 1)[1] == name]
        return longer[0] if len(longer) == 1 else None
