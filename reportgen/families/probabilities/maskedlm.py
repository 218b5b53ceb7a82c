"""Masked-LM passes: distributions at masked positions, and pseudo-log-likelihoods.

A masked LM has no next-token distribution, so its predictions are read where a token is
hidden: each scored position of a probe text is replaced by the mask token in its own copy
of the text (one position per copy, so no prediction sees another mask). Long texts are
sampled: at most ``n_max`` positions per text, drawn with a generator seeded by
(analysis.seed, text row), so the base and the candidate mask the same positions.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from reportgen.core.errors import InputError

#: logits bytes allowed per forward of masked copies (B × L × V float32)
LOGITS_BUDGET = 1 << 26


@dataclass(frozen=True)
class MaskedCopy:
    row: int  # the probe text's row in the capture
    position: int  # token index that is masked
    ids: tuple[int, ...]  # the text's token ids (unmasked)


def mask_plan(tok: Any, texts: dict[int, list[int]], n_max: int, seed: int) -> list[MaskedCopy]:
    """The masked copies for ``{row: token ids}``, special tokens never masked."""
    special = set(tok.all_special_ids)
    out = []
    for row in sorted(texts):
        ids = texts[row]
        cand = [i for i, t in enumerate(ids) if t not in special]
        if len(cand) > n_max:
            rng = np.random.default_rng([seed, row])
            cand = sorted(int(i) for i in rng.choice(cand, size=n_max, replace=False))
        out += [MaskedCopy(row, i, tuple(ids)) for i in cand]
    return out


def scheme_text(n_max: int, seed: int) -> str:
    return (f"masked LM: each scored position of a probe text masked in its own copy of the "
            f"text (special tokens excluded); texts with more than {n_max} such positions: a "
            f"sample of {n_max}, seeded by ({seed}, text row); the distributions compared are "
            "the two models' predictions at the mask")


def masked_logprobs(model: Any, tok: Any, copies: list[MaskedCopy], batch_size: int,
                    hidden: bool = False) -> Iterator[tuple[list[MaskedCopy], Any, Any]]:
    """Yield (copies, float32 log-probs at their masks, the LM head's last layer's input at
    the masks when ``hidden`` else None) batch by batch, in ``copies`` order.

    Copies of one text have one length, so batches of consecutive copies pad little; the
    batch is cut further so the full logits tensor stays under ``LOGITS_BUDGET`` bytes.
    ``hidden`` is what the probabilities store keeps for a masked LM: the head's output
    layer (``get_output_embeddings``) is affine, so these d numbers fix the distribution."""

    if tok.mask_token_id is None:
        raise InputError("the tokenizer has no mask token")
    head = model.get_output_embeddings()
    vocab = int(head.weight.shape[0])
    seen: list[Any] = []
    hook = head.register_forward_pre_hook(lambda _m, args: seen.append(args[0])) \
        if hidden else None
    try:
        yield from _masked_batches(model, tok, copies, batch_size, vocab, seen)
    finally:
        if hook is not None:
            hook.remove()


def _masked_batches(model: Any, tok: Any, copies: list[MaskedCopy], batch_size: int,
                    vocab: int, seen: list[Any]) -> Iterator[tuple[list[MaskedCopy], Any, Any]]:
    import torch

    s = 0
    with torch.inference_mode():
        while s < len(copies):
            length = max(len(c.ids) for c in copies[s:s + batch_size])
            n = max(1, min(batch_size, LOGITS_BUDGET // max(1, length * vocab * 4)))
            chunk = copies[s:s + n]
            s += n
            pad = 0 if tok.pad_token_id is None else tok.pad_token_id  # masked out anyway
            ids = torch.full((len(chunk), length), pad, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for j, c in enumerate(chunk):
                ids[j, :len(c.ids)] = torch.tensor(c.ids)
                mask[j, :len(c.ids)] = 1
                ids[j, c.position] = tok.mask_token_id
            logits = model(input_ids=ids, attention_mask=mask).logits
            where = (torch.arange(len(chunk)), [c.position for c in chunk])
            at = logits[where].float()
            h = seen.pop()[where] if seen else None
            seen.clear()
            yield chunk, torch.log_softmax(at, dim=-1), h


def pseudo_loglik(model: Any, tok: Any, pairs: list[tuple[str, str]], batch_size: int,
                  max_length: int) -> np.ndarray:
    """Σ log p(token | text with that token masked) over each continuation's tokens.

    Why: a masked LM scores a continuation by its pseudo-log-likelihood (Salazar et al. 2020),
    masking the continuation's tokens one at a time in ``prompt + continuation``; a token that
    straddles the boundary counts as the continuation's (character offsets decide)."""
    from reportgen.families.behavior.metrics import context_limit

    limit = context_limit(model)
    max_length = min(max_length, limit) if limit else max_length
    copies: list[MaskedCopy] = []
    for k, (prompt, cont) in enumerate(pairs):
        enc = tok(prompt + cont, truncation=True, max_length=max_length,
                  return_offsets_mapping=True)
        ids, offs = enc["input_ids"], enc["offset_mapping"]
        span = [i for i, (a, b) in enumerate(offs) if b > len(prompt) and b > a]
        if not span:
            raise InputError(f"continuation {cont!r} adds no tokens to its prompt")
        copies += [MaskedCopy(k, i, tuple(ids)) for i in span]
    out = np.zeros(len(pairs))
    for chunk, lp, _ in masked_logprobs(model, tok, copies, batch_size):
        for j, c in enumerate(chunk):
            out[c.row] += float(lp[j, c.ids[c.position]])
    return out
