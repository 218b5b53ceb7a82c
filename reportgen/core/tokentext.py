"""Token ids as they read inside running text, for contexts assembled token by token.

``tokenizer.decode([i])`` drops what joins a token to its neighbours: a SentencePiece word
loses its leading space ("▁is" decodes to "is"), a WordPiece continuation keeps its "##", and
a WordPiece word has no space before it. Joining such pieces gives "Theconceptofdividend".
Decoding each token after a fixed one-word anchor and removing the anchor's own text keeps
exactly what the tokenizer's decoder would put between them, whatever the scheme.
"""

from __future__ import annotations

import contextlib
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


def _byte_alphabet() -> dict[str, int]:
    """GPT-2's byte-level BPE alphabet (printable bytes as themselves, the rest shifted past
    U+0100), inverted: character → byte."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
            *range(ord("®"), ord("ÿ") + 1)]
    chars, n = {}, 0
    for b in range(256):
        if b in keep:
            chars[chr(b)] = b
        else:
            chars[chr(256 + n)] = b
            n += 1
    return chars


_BYTES = _byte_alphabet()
_VISIBLE = {" ": "␣", "\n": "⏎", "\t": "⇥"}


def token_label(token: str) -> str:
    """Tokens as a reader can see them: byte-level BPE decoded ('Ġbank' → '␣bank'),
    whitespace made visible, anything else unprintable shown as a Python literal."""
    if token and any(ord(c) > 255 for c in token) and all(c in _BYTES for c in token):
        with contextlib.suppress(UnicodeDecodeError):
            token = bytes(_BYTES[c] for c in token).decode("utf-8")
    shown = "".join(_VISIBLE.get(c, c) for c in token)
    if shown and shown.isprintable():
        return shown
    return repr(token)
