"""Cross-entropy loss recovered: splice a dictionary's reconstruction into a causal LM.

The hook replaces block L's output (the residual stream ``hidden_states[L]``) with
``sae.reconstruct(h)`` or with zeros, and the next-token cross-entropy over the non-padding
positions is compared with the clean model's: recovered = (CE_zero - CE_sae) /
(CE_zero - CE_clean). These are extra forward passes beyond the capture pass; the caller
counts them so tests can tell them from the main pass.
"""

from __future__ import annotations

from typing import Any

import torch

from reportgen.sae.model import SAE


def blocks(model: Any, n_layers: int) -> Any:
    """The model's list of transformer blocks: the first ModuleList with one entry per layer."""
    for _, mod in model.named_modules():
        if isinstance(mod, torch.nn.ModuleList) and len(mod) == n_layers:
            return mod
    raise ValueError("cannot find the transformer blocks of this model")


def ce_layer_ok(layer: int, n_layers: int) -> bool:
    """Layers whose state is a block's raw output: 1..n-1 (0 is the embedding output, and the
    last state has the final layer norm applied, so no block output equals it)."""
    return 1 <= layer < n_layers


def _replace(fn):
    def hook(_mod: Any, _args: Any, out: Any) -> Any:
        if isinstance(out, tuple):
            return (fn(out[0]), *out[1:])
        return fn(out)

    return hook


def _reconstruct(sae: SAE):
    def fn(h: torch.Tensor) -> torch.Tensor:
        flat = h.reshape(-1, h.shape[-1])
        return sae.reconstruct(flat).reshape(h.shape).to(h.dtype).to(h.device)

    return fn


def batch_ce(model: Any, input_ids: torch.Tensor, mask: torch.Tensor) -> tuple[float, int]:
    """(sum of next-token CE over non-padding targets, number of targets)."""
    logits = model(input_ids=input_ids, attention_mask=mask).logits[:, :-1].float()
    target = input_ids[:, 1:]
    keep = mask[:, 1:].bool() & mask[:, :-1].bool()
    logp = torch.log_softmax(logits, dim=-1).gather(-1, target.unsqueeze(-1)).squeeze(-1)
    return float(-(logp * keep).sum()), int(keep.sum())


def ce_recovered_pass(model: Any, tok: Any, texts: list[str], saes: dict[int, SAE],
                      n_layers: int, max_length: int, batch_size: int
                      ) -> tuple[dict[int, dict[str, Any]], int]:
    """Per layer {ce_clean, ce_sae, ce_zero, tokens, texts}, and the forward calls made."""
    device = model.get_input_embeddings().weight.device
    blk = blocks(model, n_layers)
    sums = {L: {"clean": 0.0, "sae": 0.0, "zero": 0.0} for L in saes}
    count, calls = 0, 0
    enc = tok(texts, truncation=True, max_length=max_length)["input_ids"]
    for s in range(0, len(enc), batch_size):
        batch = tok.pad({"input_ids": enc[s:s + batch_size]}, return_tensors="pt")
        ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
        clean, n = batch_ce(model, ids, mask)
        calls += 1
        count += n
        for L, sae in saes.items():
            sums[L]["clean"] += clean
            for key, fn in (("sae", _reconstruct(sae)), ("zero", torch.zeros_like)):
                handle = blk[L - 1].register_forward_hook(_replace(fn))
                try:
                    sums[L][key] += batch_ce(model, ids, mask)[0]
                finally:
                    handle.remove()
                calls += 1
    out = {L: {f"ce_{k}": v / max(count, 1) for k, v in s_.items()} | {
        "tokens": count, "texts": len(texts)} for L, s_ in sums.items()}
    return out, calls
