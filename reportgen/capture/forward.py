"""One forward pass per model over all probes, keeping only what the metrics need.

Per probe text and captured layer: the hidden state of the last non-padding token and the
mean over non-padding tokens. Plus the input-embedding matrix and the token strings, so
token drift can align vocabularies by string. Texts are sorted by length before batching
so little compute is spent on padding.

Metric families that need more from the same pass (next-token log-probabilities, per-token
activations at an SAE layer) plug in as :class:`Collector` objects: each sees every batch's
output while the model is loaded, may run its own extra passes in ``finish`` (scoring risk
continuations, masked copies for a masked LM), and returns an :class:`Extra` that the cache
stores with the capture.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from reportgen.core.progress import Progress

CAPTURE_VERSION = 1


@dataclass(frozen=True)
class CapturePlan:
    layers: tuple[int, ...] | None  # None = all
    max_length: int
    batch_size: int
    #: (collector name, its settings) for every collector riding on the pass: part of the key
    extras: tuple[tuple[str, str], ...] = ()

    def key(self) -> dict[str, Any]:
        return {**asdict(self), "version": CAPTURE_VERSION}


@dataclass
class Extra:
    """What one collector kept: small arrays, JSON-able facts, and big files streamed to disk.

    ``files`` name files in the collector's work folder; the cache moves them into its entry
    and hands back their new paths, so a family reads e.g. a hidden-state store by name.
    """

    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)


@dataclass
class Batch:
    """One forward batch as a collector sees it. ``rows`` are indices into the capture's texts,
    in the batch's order; ``output`` is the backbone's output (``hidden_states`` of every layer,
    ``last_hidden_state``); tensors stay on the model's device."""

    rows: list[int]
    input_ids: Any
    attention_mask: Any
    output: Any


class Collector(Protocol):
    """Extra work riding on a model's capture pass (see the module docstring)."""

    name: str

    def settings(self) -> str:
        """A stable string of everything that changes the result: it keys the cache."""
        ...

    def start(self, model: Any, tokenizer: Any, texts: list[str], workdir: Path) -> None:
        """Called once, model loaded, before the first batch; big files go under ``workdir``."""
        ...

    def batch(self, b: Batch) -> None:
        ...

    def finish(self, progress: Progress) -> Extra:
        """After the last batch, model still loaded: extra passes, then the result."""
        ...


@dataclass
class Capture:
    """What one model produced; arrays are float32, shapes (n_layers, n_texts, d)."""

    layer_ids: list[int]
    last: np.ndarray
    mean: np.ndarray
    embeddings: np.ndarray  # (rows, d)
    vocab: list[str | None]  # string of each embedding row, None when the row has no token
    parameters: int
    hidden_size: int
    n_layers: int
    extras: dict[str, Extra] = field(default_factory=dict)  # by collector name


def vocab_strings(tokenizer: Any, rows: int) -> list[str | None]:
    inv: list[str | None] = [None] * rows
    for tok, i in tokenizer.get_vocab().items():
        if 0 <= i < rows:
            inv[i] = tok
    return inv


def backbone(model: Any) -> Any:
    """The transformer body (no LM head): hidden states without computing vocab logits."""
    base = getattr(model, "base_model", None)
    return base if base is not None else model


def prepare_tokenizer(tok: Any) -> Any:
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token or tok.unk_token
    tok.padding_side = "right"
    return tok


def length_sorted_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    return [order[s:s + batch_size] for s in range(0, len(order), batch_size)]


@torch.inference_mode()
def capture(model: Any, tokenizer: Any, texts: list[str], plan: CapturePlan,
            progress: Progress, label: str, collectors: list[Collector] | None = None,
            workdir: Path | None = None) -> Capture:
    tok = prepare_tokenizer(tokenizer)
    enc = tok(texts, truncation=True, max_length=plan.max_length, add_special_tokens=True)
    ids = enc["input_ids"]
    body = backbone(model)
    cfg = model.config
    n_layers = int(getattr(cfg, "num_hidden_layers", None) or cfg.n_layer)
    layer_ids = list(plan.layers) if plan.layers is not None else list(range(n_layers + 1))
    d = int(getattr(cfg, "hidden_size", None) or cfg.n_embd)
    last = np.zeros((len(layer_ids), len(texts), d), dtype=np.float32)
    mean = np.zeros_like(last)
    batches = length_sorted_batches([len(x) for x in ids], plan.batch_size)
    # with device_map="auto" layers may sit on several devices: inputs go where the
    # embeddings are, and every pooled state comes back to the CPU in float32
    device = model.get_input_embeddings().weight.device
    collectors = collectors or []
    if collectors and workdir is None:
        raise ValueError("collectors need a work folder for their files")
    for c in collectors:
        own = Path(workdir or ".") / c.name
        own.mkdir(parents=True, exist_ok=True)
        c.start(model, tok, texts, own)
    with progress.counter(f"capture {label}", len(texts)) as advance:
        for b in batches:
            batch = tok.pad({"input_ids": [ids[i] for i in b]}, return_tensors="pt")
            input_ids = batch["input_ids"].to(device)
            mask = batch["attention_mask"].to(device)
            out = body(input_ids=input_ids, attention_mask=mask, output_hidden_states=True)
            _pool(out.hidden_states, batch["attention_mask"], layer_ids, b, last, mean)
            for c in collectors:
                c.batch(Batch(b, input_ids, mask, out))
            advance(len(b))
    extras = {c.name: c.finish(progress) for c in collectors}
    from reportgen.capture.offload import value

    emb = value(model.get_input_embeddings(), "weight").detach().float().cpu().numpy().copy()
    from reportgen.spec.resolve import parameter_count

    return Capture(layer_ids, last, mean, emb, vocab_strings(tok, emb.shape[0]),
                   parameter_count(model), d, n_layers, extras)


def _pool(hidden: tuple[torch.Tensor, ...], mask: torch.Tensor, layer_ids: list[int],
          rows: list[int], last: np.ndarray, mean: np.ndarray) -> None:
    m = mask.unsqueeze(-1).float()
    last_idx = mask.sum(dim=1) - 1
    ar = torch.arange(mask.shape[0])
    for j, layer in enumerate(layer_ids):
        h = hidden[layer].float().cpu()
        last[j, rows] = h[ar, last_idx].numpy()
        mean[j, rows] = ((h * m).sum(dim=1) / m.sum(dim=1)).numpy()
