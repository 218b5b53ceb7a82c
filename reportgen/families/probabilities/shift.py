"""A candidate's probability statistics as plain arrays (cached without pickle) and back,
and the most affected positions decoded in context while the tokenizer is at hand."""

from __future__ import annotations

from typing import Any

import numpy as np

from reportgen.capture.forward import Extra
from reportgen.families.probabilities.metrics import (
    ProbabilityShift,
    TopPosition,
)

_STAT_KEYS = ("kl_bc", "kl_cb", "js", "entropy_base", "entropy_candidate", "top1",
              "logit_shift")

def shift_arrays(res: ProbabilityShift) -> tuple[dict[str, np.ndarray], list[str]]:
    """A ProbabilityShift as plain arrays (cacheable without pickle) and the group names."""
    names = sorted({str(g) for g in res.groups})
    codes = np.asarray([names.index(str(g)) for g in res.groups], dtype=np.int64)
    arrays = {f"stat_{k}": v for k, v in res.stats.items()}
    arrays.update(group_codes=codes, gained=res.gained, lost=res.lost,
                  mean_logit_shift=res.mean_logit_shift)
    return arrays, names

def shift_from_extra(e: Extra) -> ProbabilityShift:
    names = e.meta["groups"]
    groups = np.asarray([names[i] for i in e.arrays["group_codes"]], dtype=object)
    stats = {k: e.arrays[f"stat_{k}"] for k in _STAT_KEYS}
    return ProbabilityShift(stats, groups, e.arrays["gained"], e.arrays["lost"],
                            e.arrays["mean_logit_shift"], [])

def top_position_rows(res: ProbabilityShift, pos: np.ndarray, tok: Any, texts: list[str],
                      max_length: int) -> list[dict[str, Any]]:
    """The most affected positions in context, decoded while the tokenizer is at hand."""
    return [_context_row(t, pos[t.position], tok, texts, max_length) for t in res.top_positions]

def _context_row(t: TopPosition, where: np.ndarray, tok: Any, texts: list[str],
                 max_length: int) -> dict[str, Any]:
    row, ix = int(where[0]), int(where[1])
    ids = tok(texts[row], truncation=True, max_length=max_length)["input_ids"]

    def dec(i: list[int]) -> str:
        return tok.decode(i, clean_up_tokenization_spaces=False)

    return {
        "probe_set": t.group, "kl": t.kl, "text_row": row, "token_index": ix,
        "before": dec(ids[max(0, ix - 24):ix]), "token": dec([ids[ix]]),
        "after": dec(ids[ix + 1:ix + 9]),
        "base_top5": [{"token": dec([i]), "p": p} for i, p in zip(t.base_ids, t.base_probs,
                                                                  strict=True)],
        "candidate_top5": [{"token": dec([i]), "p": p} for i, p in zip(t.cand_ids, t.cand_probs,
                                                                       strict=True)],
    }
