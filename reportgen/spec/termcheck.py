"""Probe terms a model cannot read: every token of the term is its tokenizer's unknown token.

Such a term would still be scored (the drift of ``[UNK]`` in the template, ranked among real
concepts), so the spec is refused before any model loads. Only tokenizer files are read:
``tokenizer.json`` through the tokenizers library, or (for a folder without one) the
tokenizer transformers builds, never weights. The term is read where the model reads it,
inside the template, and its tokens are those whose characters overlap it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Path_ = tuple[Any, ...]


@dataclass(frozen=True)
class Reader:
    """A tokenizer (``tokenizers.Tokenizer``) and the id of its unknown token, if it has one."""

    tokenizer: Any
    unk_id: int | None


def load_reader(folder: Path, trust_remote_code: bool = False) -> Reader | None:
    """The model's tokenizer; None for a tokenizer with no fast (tokenizers) backend."""
    path = folder / "tokenizer.json"
    if path.is_file():
        from tokenizers import Tokenizer

        text = path.read_text(encoding="utf-8")
        tok = Tokenizer.from_str(text)
        return Reader(tok, _unk_id(tok, json.loads(text)))
    from transformers import AutoTokenizer  # no tokenizer.json: let transformers build it

    backend = getattr(AutoTokenizer.from_pretrained(
        str(folder), local_files_only=True, trust_remote_code=trust_remote_code),
        "backend_tokenizer", None)
    return None if backend is None else Reader(backend, _unk_id(backend,
                                                                 json.loads(backend.to_str())))


def _unk_id(tok: Any, data: dict) -> int | None:
    """From the tokenizer model's own settings: a byte-level BPE has none (every byte is a
    token), WordPiece and BPE name it (unk_token), Unigram gives its id (unk_id)."""
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, dict):
        return None
    if isinstance(model.get("unk_token"), str):
        return tok.token_to_id(model["unk_token"])
    unk = model.get("unk_id")
    return unk if isinstance(unk, int) and not isinstance(unk, bool) else None


def term_tokens(reader: Reader, template: str, term: str) -> list[tuple[int, str]]:
    """(id, token) of every token overlapping the term inside the template's text."""
    pieces = template.split("{term}")
    spans, at = [], 0
    for piece in pieces[:-1]:
        at += len(piece)
        spans.append((at, at + len(term)))
        at += len(term)
    enc = reader.tokenizer.encode(term.join(pieces), add_special_tokens=False)
    return [(i, t) for i, t, (a, b) in zip(enc.ids, enc.tokens, enc.offsets, strict=True)
            if b > a and any(a < e and b > s for s, e in spans)]


def unreadable(reader: Reader, template: str, term: str) -> str | None:
    """How the model reads a term it cannot see; None when it can."""
    tokens = term_tokens(reader, template, term)
    if not tokens:
        return "reads as no token at all"
    if reader.unk_id is not None and all(i == reader.unk_id for i, _ in tokens):
        return "reads as unknown tokens only (" + " ".join(t for _, t in tokens) + ")"
    return None


def unreadable_terms(concepts: list, template: str, models: list) -> list[tuple[Path_, str]]:
    """(spec field, message): one per term some model cannot read, and per tokenizer that
    cannot be read. ``models``: preflight.ModelRead of the base and candidates."""
    readers: dict[str, tuple[Reader | None, list[str]]] = {}
    out: list[tuple[Path_, str]] = []
    for m in models:
        key = _key(m.folder)
        if key not in readers:
            try:
                readers[key] = (load_reader(m.folder, m.trust_remote_code), [])
            except Exception as e:  # tokenizers and transformers raise many kinds
                first = (str(e).strip().splitlines() or [type(e).__name__])[0]
                out.append(((*m.at, "path"), f"cannot read the tokenizer of {m.source!r} "
                                             f"({first})"))
                readers[key] = (None, [])
        readers[key][1].append(m.name)
    for c in concepts:
        found: dict[str, list[str]] = {}
        for reader, names in readers.values():
            how = unreadable(reader, template, c.term) if reader is not None else None
            if how:
                found.setdefault(how, []).extend(names)
        for how, names in found.items():
            out.append((("probes", "concepts", "vocabulary"),
                        f"term {c.term!r} (category {c.category!r}) {how} to the tokenizer of "
                        f"{_names(names)}: the model cannot see it; remove it from the "
                        "vocabulary"))
    return out


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _key(folder: Path) -> str:
    """Folders with the same tokenizer.json share one reader (a fine-tune copies it)."""
    path = folder / "tokenizer.json"
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    return str(folder.resolve())
