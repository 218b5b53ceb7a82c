"""One forward pass per model over all probes, keeping only what the metrics need.

Per probe text and captured layer: the hidden state of the last non-padding token and the
mean over non-padding tokens. Plus the input-embedding matrix and the token strings, so
token drift can align vocabularies by string. Texts are sorted by length before batching
so little compute is spent on padding.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from .progress import Progress

CAPTURE_VERSION = 1


@dataclass(frozen=True)
class CapturePlan:
    layers: tuple[int, ...] | None  # None = all
    max_length: int
    batch_size: int

    def key(self) -> dict[str, Any]:
        return {**asdict(self), "version": CAPTURE_VERSION}


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
            progress: Progress, label: str) -> Capture:
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
    with progress.counter(f"capture {label}", len(texts)) as advance:
        for b in batches:
            batch = tok.pad({"input_ids": [ids[i] for i in b]}, return_tensors="pt")
            out = body(input_ids=batch["input_ids"].to(device),
                       attention_mask=batch["attention_mask"].to(device),
                       output_hidden_states=True)
            _pool(out.hidden_states, batch["attention_mask"], layer_ids, b, last, mean)
            advance(len(b))
    emb = model.get_input_embeddings().weight.detach().float().cpu().numpy().copy()
    from .models import parameter_count

    return Capture(layer_ids, last, mean, emb, vocab_strings(tok, emb.shape[0]),
                   parameter_count(model), d, n_layers)


def _pool(hidden: tuple[torch.Tensor, ...], mask: torch.Tensor, layer_ids: list[int],
          rows: list[int], last: np.ndarray, mean: np.ndarray) -> None:
    m = mask.unsqueeze(-1).float()
    last_idx = mask.sum(dim=1) - 1
    ar = torch.arange(mask.shape[0])
    for j, layer in enumerate(layer_ids):
        h = hidden[layer].float().cpu()
        last[j, rows] = h[ar, last_idx].numpy()
        mean[j, rows] = ((h * m).sum(dim=1) / m.sum(dim=1)).numpy()
