"""Concept terms that a tokenizer splits into several tokens, flagged on the certificate.

A concept is read at the template's last token, after the whole term: a term split into many
pieces (a rare word, a made-up string) reaches that reading through all of them, so its drift
can rank high, and move its category's mean, for reasons that have little to do with the
concept. Such terms are kept and flagged: each concept row records how many pieces the base
tokenizer (and the candidate's) cut the term into inside its prompt, the certificate lists
the multi-token terms, and the limitations say how many and which.

The counts come from a collector (no forward pass): the tokenizer each capture uses, on the
prompts exactly as captured, so a candidate whose tokenizer grew is counted with its own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .capture import Batch, Extra
from .families import CollectorContext, register_collector
from .progress import Progress
from .tokentext import running_pieces

NAME = "concept_pieces"
VERSION = 1
#: Terms listed by name in a limitation; the certificate's JSON and tables have all of them.
LISTED = 20
READING = ("hidden state of the template's last token, read after the whole term, so a term "
           "cut into several pieces is read through all of them")


def term_token_ids(tokenizer: Any, template: str, terms: list[str]) -> list[list[int]]:
    """Per term, the ids of the tokens that cover it inside its prompt (first ``{term}``)."""
    head, _, tail = template.partition("{term}")
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:  # fast tokenizers: tokens whose characters overlap the term
        from .termcheck import Reader, term_tokens

        reader = Reader(backend, None)
        return [[i for i, _ in term_tokens(reader, head + "{term}" + tail.replace("{term}", t),
                                           t)] for t in terms]
    # slow tokenizers have no offsets: the tokens after those the head alone starts with
    start = tokenizer(head, add_special_tokens=False)["input_ids"] if head else []
    out = []
    for term in terms:
        ids = tokenizer(head + term, add_special_tokens=False)["input_ids"]
        same = next((k for k, (x, y) in enumerate(zip(ids, start, strict=False)) if x != y),
                    min(len(ids), len(start)))
        out.append(ids[same:])
    return out


class PiecesCollector:
    """Counts each concept term's pieces with the model's own tokenizer, once per capture."""

    name = NAME

    def __init__(self, template: str, terms: list[str]) -> None:
        self.template, self.terms = template, terms
        self.ids: list[list[int]] = []
        self.text: dict[int, str] = {}

    def settings(self) -> str:
        return json.dumps({"v": VERSION, "template": self.template})

    def start(self, model: Any, tokenizer: Any, texts: list[str], workdir: Path) -> None:
        self.ids = term_token_ids(tokenizer, self.template, self.terms)
        self.text = running_pieces(tokenizer, sorted({i for ids in self.ids for i in ids}))

    def batch(self, b: Batch) -> None:
        pass

    def finish(self, progress: Progress) -> Extra:
        return Extra(arrays={"pieces": np.asarray([len(i) for i in self.ids], dtype=np.int64)},
                     meta={"tokens": [[self.text[i] for i in ids] for ids in self.ids]})


def factory(ctx: CollectorContext) -> PiecesCollector | None:
    if not ctx.probe.has_concepts:
        return None
    return PiecesCollector(ctx.probe.info.details["template"], ctx.probe.terms)


def pieces(cap: Any) -> tuple[list[int], list[list[str]]] | None:
    """(count per term, piece texts per term) from a capture, or None when not counted."""
    e = cap.extras.get(NAME)
    if e is None:
        return None
    return [int(n) for n in e.arrays["pieces"]], e.meta["tokens"]


def mark_rows(rows: list[dict[str, Any]], terms: list[str], base: Any, cand: Any) -> None:
    """Add ``pieces`` (base tokenizer) and ``candidate_pieces`` to each concept-table row."""
    b, c = pieces(base), pieces(cand)
    if b is None or c is None:
        return
    at = {t: i for i, t in enumerate(terms)}
    for r in rows:
        r["pieces"] = b[0][at[r["term"]]]
        r["candidate_pieces"] = c[0][at[r["term"]]]


def tokenization(probe: Any, models: list, caps: dict) -> dict[str, Any] | None:
    """The certificate's ``analysis.concepts``: the multi-token terms (base tokenizer) and,
    per candidate whose tokenizer cuts a term into other pieces, those terms."""
    b = pieces(caps["base"])
    if b is None:
        return None
    counts, tokens = b
    multi = [{"term": t, "category": cat, "pieces": n, "tokens": tokens[i]}
             for i, (t, cat, n) in enumerate(zip(probe.terms, probe.categories, counts,
                                                 strict=True)) if n > 1]
    differ: dict[str, list[dict[str, Any]]] = {}
    for m in models[1:]:
        c = pieces(caps[m.name])
        if c is None:
            continue
        rows = [{"term": t, "pieces": n, "tokens": tokens[i], "candidate_pieces": c[0][i],
                 "candidate_tokens": c[1][i]}
                for i, (t, n) in enumerate(zip(probe.terms, counts, strict=True))
                if c[1][i] != tokens[i]]
        if rows:
            differ[m.name] = rows
    return {"reading": READING, "tokenizer": "base", "terms": len(counts),
            "multi_token": multi, "split_differently": differ}


def limitations(info: dict[str, Any] | None) -> list[str]:
    """How many concept terms are multi-token and which; candidates that cut them otherwise."""
    if not info:
        return []
    out = []
    multi = info.get("multi_token") or []
    if multi:
        shown = _listed([f"{r['term']} ({r['pieces']})" for r in multi])
        out.append(f"{len(multi)} of {info.get('terms')} concept terms are split by the base "
                   f"tokenizer into more than one token (pieces in brackets): {shown}. A "
                   "concept is read at the template's last token, after the whole term, so "
                   "such a term is read through all its pieces and a rare or made-up word can "
                   "rank high, and move its category's mean, for that reason; the concept "
                   "tables mark them.")
    for cand, rows in (info.get("split_differently") or {}).items():
        shown = _listed([f"{r['term']} ({_cut(r['tokens'])} → {_cut(r['candidate_tokens'])})"
                         for r in rows])
        out.append(f"The tokenizer of {cand} splits {len(rows)} concept "
                   f"{'term' if len(rows) == 1 else 'terms'} differently from the base's "
                   f"(base → {cand} pieces): {shown}; their prompts are not the same token "
                   "sequence in both models.")
    return out


def _cut(tokens: list[str]) -> str:
    return "|".join(t.strip() for t in tokens)


def _listed(items: list[str]) -> str:
    more = len(items) - LISTED
    return ", ".join(items[:LISTED]) + (f" and {more} more" if more > 0 else "")


register_collector(NAME, factory)
