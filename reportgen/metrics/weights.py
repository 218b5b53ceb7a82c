"""Weight drift per tensor, block and module type, straight from the safetensors files.

``‖W_ft − W_base‖_F / ‖W_base‖_F`` needs no forward pass. Tensors are read one pair at a
time with ``safetensors.safe_open``, so memory stays near the largest tensor, never two
state dicts. Parameter names are matched across checkpoints saved by different heads of
the same body (``bert.encoder…`` in a masked-LM checkpoint, ``encoder…`` in the bare
model); tensors present in only one checkpoint, or with different shapes (a resized
embedding), are listed, never compared row by row.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..certificate import MetricValue
from ..errors import ModelError
from .registry import lookup, register

if TYPE_CHECKING:  # torch and safetensors load when drift is computed: the registry stays light
    import torch

DRIFT = "‖W_candidate − W_base‖_F / ‖W_base‖_F"
register("weights.relative_drift.max", f"Largest per-tensor {DRIFT} over matched tensors.")
register("weights.relative_drift.mean", f"Mean over matched tensors of {DRIFT}.")
register("weights.relative_drift.global",
         f"{DRIFT} over all matched tensors taken together (one concatenated vector).")
register("weights.block.{block}.relative_drift",
         f"{DRIFT} over all tensors of transformer block {{block}} taken together (numbered "
         "from 0 as in the checkpoint's parameter names: the other families' layer 1 is the "
         "output of block 0).")
register("weights.unmatched_tensors",
         "Tensors present in only one checkpoint or with different shapes (not compared).",
         unit="tensors")

Transform = Callable[[str, "torch.Tensor"], "torch.Tensor"]
_BLOCK = re.compile(r"(?:^|\.)(?:h|layer|layers|block|blocks)\.(\d+)(?:\.|$)")
_HEADS = ("lm_head.weight", "cls.predictions.decoder.weight", "vocab_projector.weight",
          "embed_out.weight")
_INPUT_EMBEDDINGS = ("wte.weight", "word_embeddings.weight", "embed_tokens.weight",
                     "embed_in.weight")


# ---------------------------------------------------------------- reading checkpoints


def _open(f: Path) -> Any:  # safetensors' handle type is not public
    from safetensors import safe_open

    return safe_open(f, framework="pt")


def tensor_index(path: str | Path) -> dict[str, Path]:
    """Tensor name → the safetensors file holding it (single file, folder or sharded)."""
    p = Path(path)
    if p.is_file():
        files = [p]
    elif (p / "model.safetensors.index.json").is_file():
        try:
            weight_map = json.loads((p / "model.safetensors.index.json").read_text())["weight_map"]
        except (json.JSONDecodeError, KeyError) as e:
            raise ModelError(f"{p / 'model.safetensors.index.json'}: no readable weight_map "
                             f"({e})") from e
        return {name: p / f for name, f in weight_map.items()}
    else:
        files = sorted(p.glob("*.safetensors"))
    if not files:
        raise ModelError(f"{p}: no .safetensors weights found (weight drift reads safetensors "
                         "only)")
    index: dict[str, Path] = {}
    for f in files:
        with _open(f) as h:
            index.update({name: f for name in h.keys()})  # noqa: SIM118 (not a dict)
    return index


def _shapes(index: dict[str, Path]) -> dict[str, tuple[int, ...]]:
    by_file: dict[Path, list[str]] = defaultdict(list)
    for name, f in index.items():
        by_file[f].append(name)
    out: dict[str, tuple[int, ...]] = {}
    for f, names in by_file.items():
        with _open(f) as h:
            for n in names:
                out[n] = tuple(h.get_slice(n).get_shape())
    return out


def _read(index: dict[str, Path], name: str) -> torch.Tensor:
    with _open(index[name]) as h:
        return h.get_tensor(name)


class TensorSource(Protocol):
    """Named tensors read one at a time: a checkpoint, or a checkpoint with its adapter
    merged (:mod:`reportgen.metrics.adapter_weights`)."""

    def shapes(self) -> dict[str, tuple[int, ...]]: ...

    def read(self, name: str) -> torch.Tensor: ...


class Checkpoint:
    """The tensors of a safetensors checkpoint (file, folder or sharded folder)."""

    def __init__(self, path: str | Path) -> None:
        self.index = tensor_index(path)
        self._shapes: dict[str, tuple[int, ...]] | None = None

    def shapes(self) -> dict[str, tuple[int, ...]]:
        if self._shapes is None:
            self._shapes = _shapes(self.index)
        return self._shapes

    def read(self, name: str) -> torch.Tensor:
        return _read(self.index, name)


def _source(x: str | Path | TensorSource) -> TensorSource:
    return Checkpoint(x) if isinstance(x, (str, Path)) else x


# ---------------------------------------------------------------- matching names


def _prefixes(keys: Iterable[str]) -> set[str]:
    return {""} | {k.split(".", 1)[0] + "." for k in keys if "." in k}


def _strip(keys: Iterable[str], prefix: str) -> dict[str, str]:
    return {k[len(prefix):]: k for k in keys if k.startswith(prefix)}


def match_names(base: Iterable[str], cand: Iterable[str]) -> list[tuple[str, str]]:
    """Pairs (base name, candidate name) for the same parameter.

    Tries dropping one leading component on either side (``bert.``, ``transformer.``,
    ``model.``, ``distilbert.``) and keeps the choice that pairs the most names (identity
    wins ties); names left over are then paired only when spelled identically.
    """
    base, cand = sorted(base), sorted(cand)
    best: tuple[int, int, str, str] = (-1, 0, "", "")
    for pb in sorted(_prefixes(base)):
        sb = _strip(base, pb)
        for pc in sorted(_prefixes(cand)):
            n = len(sb.keys() & _strip(cand, pc).keys())
            if (n, -len(pb) - len(pc)) > best[:2]:
                best = (n, -len(pb) - len(pc), pb, pc)
    sb, sc = _strip(base, best[2]), _strip(cand, best[3])
    pairs = [(sb[s], sc[s]) for s in sorted(sb.keys() & sc.keys())]
    used_b, used_c, cand_set = {b for b, _ in pairs}, {c for _, c in pairs}, set(cand)
    pairs += [(n, n) for n in base if n in cand_set and n not in used_b and n not in used_c]
    return pairs


def _tie_pairs(only_b: set[str], only_c: set[str], base_shapes: dict, cand_shapes: dict
               ) -> list[tuple[str, str]]:
    """An output head saved on one side only is compared with the other side's input
    embedding: that side ties the two (HF saves a tied tensor once)."""
    pairs = []
    for heads, embs, flip in ((only_c, base_shapes, False), (only_b, cand_shapes, True)):
        for h in sorted(x for x in heads if x.endswith(_HEADS)):
            own = base_shapes if flip else cand_shapes
            emb = [e for e in embs if e.endswith(_INPUT_EMBEDDINGS) and embs[e] == own[h]]
            if len(emb) == 1:
                pairs.append((h, emb[0]) if flip else (emb[0], h))
    return pairs


# ---------------------------------------------------------------- naming modules


def block_of(name: str) -> int | None:
    """Transformer block index from a parameter name (GPT-2 ``h.3``, BERT/DistilBERT
    ``layer.3``, Llama ``layers.3``); None outside the blocks."""
    m = _BLOCK.search(name)
    return int(m.group(1)) if m else None


def module_type(name: str) -> str:
    """attention / mlp / layernorm / embedding / head / pooler / other, from the name."""
    parts = name.lower().split(".")
    if parts[0] in ("lm_head", "cls", "embed_out", "classifier", "score", "qa_outputs",
                    "pre_classifier") or parts[0].startswith("vocab_"):
        return "head"
    if any("norm" in p or p.startswith("ln") for p in parts):
        return "layernorm"
    if any("embed" in p for p in parts) or "wte" in parts or "wpe" in parts:
        return "embedding"
    if "pooler" in parts:
        return "pooler"
    attn = {"query", "key", "value", "q_proj", "k_proj", "v_proj", "o_proj", "q_lin",
            "k_lin", "v_lin", "out_lin", "c_attn"}
    if any("attn" in p or "attention" in p or p in attn for p in parts):
        return "attention"
    mlp = {"mlp", "ffn", "intermediate", "c_fc", "fc1", "fc2", "gate_proj", "up_proj",
           "down_proj", "lin1", "lin2", "dense_h_to_4h", "dense_4h_to_h"}
    if any(p in mlp for p in parts) or (block_of(name) is not None and "output" in parts):
        return "mlp"  # BERT's block-level output.dense is the MLP's second matrix
    return "other"


# ---------------------------------------------------------------- drift


@dataclass
class WeightDrift:
    tensors: list[dict] = field(default_factory=list)  # one row per compared pair
    unmatched: list[dict] = field(default_factory=list)


def _ratio(diff_sq: float, base_sq: float) -> float | None:
    """sqrt(diff² / base²); 0 when nothing moved, None when a zero base tensor moved."""
    if base_sq == 0:
        return 0.0 if diff_sq == 0 else None
    return float(np.sqrt(diff_sq / base_sq))


def _row(name: str, b: torch.Tensor, c: torch.Tensor) -> dict:
    import torch

    b32, c32 = b.to(torch.float32), c.to(torch.float32)
    base_sq = float(torch.linalg.vector_norm(b32, dtype=torch.float64) ** 2)
    diff_sq = float(torch.linalg.vector_norm(c32 - b32, dtype=torch.float64) ** 2)
    return {"name": name, "block": block_of(name), "module": module_type(name),
            "shape": list(b.shape), "parameters": int(b.numel()), "base_norm": base_sq ** 0.5,
            "diff_norm": diff_sq ** 0.5, "relative_drift": _ratio(diff_sq, base_sq)}


def _compare(b_name: str, c_name: str, b: torch.Tensor, c: torch.Tensor, tied: bool) -> dict:
    """One tensor row; a tie pair is named by its head, with the embedding it is tied to."""
    head_in_base = tied and b_name.endswith(_HEADS)
    row = _row(b_name if head_in_base or not tied else c_name, b, c)
    if c_name != b_name and not tied:
        row["candidate_name"] = c_name
    if tied:  # the side without a saved head ties it to its input embedding
        row["tied_to"] = c_name if head_in_base else b_name
        row["tied_in"] = "candidate" if head_in_base else "base"
    return row


def weight_drift(
    base_path: str | Path | TensorSource, cand_path: str | Path | TensorSource,
    transform: Transform | None = None,
) -> WeightDrift:
    """Per-tensor drift between two safetensors checkpoints (or any :class:`TensorSource`,
    such as a checkpoint with its adapter merged), read one tensor pair at a time.

    ``transform(name, tensor)`` is applied to each candidate tensor before comparing (pass
    the base's own files and a round-trip to measure a derived int8 variant). It receives
    the tensor as stored: GPT-2 ``Conv1D`` weights are (in, out), so their output channels
    are columns, unlike ``nn.Linear``'s (out, in). Integer tensors (position ids) are not
    weights and are skipped.
    """
    base, cand = _source(base_path), _source(cand_path)
    bs, cs = base.shapes(), cand.shapes()
    pairs = match_names(bs, cs)
    only_b = set(bs) - {b for b, _ in pairs}
    only_c = set(cs) - {c for _, c in pairs}
    ties = _tie_pairs(only_b, only_c, bs, cs)
    out = WeightDrift()
    for b_name, c_name in pairs + ties:
        only_b.discard(b_name)
        only_c.discard(c_name)
        if bs[b_name] != cs[c_name]:
            out.unmatched.append({"name": b_name, "present_in": "both",
                                  "reason": f"shape {list(bs[b_name])} in base, "
                                            f"{list(cs[c_name])} in candidate"})
            continue
        b, c = base.read(b_name), cand.read(c_name)
        if b.is_floating_point() and c.is_floating_point():
            c = transform(c_name, c) if transform is not None else c
            out.tensors.append(_compare(b_name, c_name, b, c, (b_name, c_name) in ties))
    out.unmatched += [{"name": n, "present_in": "base", "reason": "absent from candidate"}
                      for n in sorted(only_b)]
    out.unmatched += [{"name": n, "present_in": "candidate", "reason": "absent from base"}
                      for n in sorted(only_c)]
    return out


def block_rows(tensors: list[dict]) -> list[dict]:
    """Drift per (block, module type): sums of squares over the group's tensors."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in tensors:
        groups[(r["block"] is None, r["block"] or 0, r["module"])].append(r)
    rows = []
    for (_, _, module), rs in sorted(groups.items()):
        d2 = sum(r["diff_norm"] ** 2 for r in rs)
        b2 = sum(r["base_norm"] ** 2 for r in rs)
        rows.append({"block": rs[0]["block"], "module": module, "tensors": len(rs),
                     "parameters": sum(r["parameters"] for r in rs),
                     "relative_drift": _ratio(d2, b2)})
    return rows


def _mv(name: str, value: float | None, error: str | None = None) -> MetricValue:
    info = lookup(name)
    assert info is not None, name
    return MetricValue(value, info.definition, info.unit, None, error)


def weight_metrics(drift: WeightDrift) -> tuple[dict[str, MetricValue], dict[str, list[dict]]]:
    """Headline metrics and tables ``weights_tensors``, ``weights_blocks``,
    ``weights_unmatched`` from a :class:`WeightDrift`."""
    rels = [r["relative_drift"] for r in drift.tensors if r["relative_drift"] is not None]
    none = None if rels else "no tensor with a non-zero base norm was matched"
    m = {
        "weights.relative_drift.max": _mv("weights.relative_drift.max",
                                          max(rels) if rels else None, none),
        "weights.relative_drift.mean": _mv("weights.relative_drift.mean",
                                           float(np.mean(rels)) if rels else None, none),
        "weights.unmatched_tensors": _mv("weights.unmatched_tensors",
                                         float(len(drift.unmatched))),
    }
    glob = _ratio(sum(r["diff_norm"] ** 2 for r in drift.tensors),
                  sum(r["base_norm"] ** 2 for r in drift.tensors))
    m["weights.relative_drift.global"] = _mv("weights.relative_drift.global", glob,
                                             None if glob is not None else none)
    by_block: dict[int, list[dict]] = defaultdict(list)
    for r in drift.tensors:
        if r["block"] is not None:
            by_block[r["block"]].append(r)
    for layer in sorted(by_block):
        rs = by_block[layer]
        v = _ratio(sum(r["diff_norm"] ** 2 for r in rs), sum(r["base_norm"] ** 2 for r in rs))
        m[f"weights.block.{layer}.relative_drift"] = _mv(
            f"weights.block.{layer}.relative_drift", v,
            None if v is not None else "the block's base weights are all zero")
    tables = {"weights_tensors": drift.tensors, "weights_blocks": block_rows(drift.tensors),
              "weights_unmatched": drift.unmatched}
    return m, tables


def weight_drift_metrics(
    base_path: str | Path | TensorSource, cand_path: str | Path | TensorSource,
    transform: Transform | None = None,
) -> tuple[dict[str, MetricValue], dict[str, list[dict]]]:
    """:func:`weight_drift` then :func:`weight_metrics`."""
    return weight_metrics(weight_drift(base_path, cand_path, transform))


HEADLINE = ("weights.relative_drift.max", "weights.relative_drift.mean",
            "weights.relative_drift.global", "weights.unmatched_tensors")


def not_available(reason: str) -> dict[str, MetricValue]:
    """The headline metrics with no value and why, so a check on them is ERROR."""
    return {n: _mv(n, None, f"not available: {reason}") for n in HEADLINE}
