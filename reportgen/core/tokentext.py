"""Token ids as they read inside running text, for contexts assembled token by token.

``tokenizer.decode([i])`` drops what joins a token to its neighbours: a SentencePiece word
loses its leading space ("▁is" decodes to "is"), a WordPiece continuation keeps its "##", and
a WordPiece word has no space before it. Joining such pieces gives "Theconceptofdividend".
Decoding each token after a fixed one-word anchor and removing the anchor's own text keeps
exactly what the tokenizer's decoder would put between them, whatever the scheme.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def running_pieces(tokenizer: Any, ids: Iterable[int]) -> dict[int, str]:
    """``{id: text}`` such that joining the texts of a token sequence reads like the text
    (byte-level BPE, SentencePiece and WordPiece alike; special tokens keep their names)."""
    anchor = tokenizer("a", add_special_tokens=False)["input_ids"][:1]
    lead = _decode(tokenizer, anchor) if anchor else ""
    out = {}
    for i in ids:
        both = _decode(tokenizer, [*anchor, int(i)])
        out[int(i)] = both[len(lead):] if anchor and both.startswith(lead) else \
            _decode(tokenizer, [int(i)])
    return out


def _decode(tokenizer: Any, ids: list[int]) -> str:
    return tokenizer.decode(ids, clean_up_tokenization_spaces=False)
