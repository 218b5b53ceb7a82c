"""Concept vocabularies (YAML ``category: [terms]`` or CSV ``term,category``) and probe digests.

A vocabulary mistake should cost the user one glance: every error is one line naming the
file as they wrote it, the line when known, and what was expected. The digest of the probe
texts keys the capture cache and is cited on the certificate, so it must not depend on
anything but the texts themselves.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reportgen.core.errors import InputError, InputErrors
from reportgen.core.resources import probes_dir
from reportgen.core.untrusted import BadJSON, parse_json
from reportgen.spec.messages import describe, did_you_mean
from reportgen.spec.yamlsrc import one_line, read_text_file, read_yaml, resolve_path

BUILTIN = "builtin:"
_SUFFIXES = (".yaml", ".yml", ".csv")
_PACK_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_][A-Za-z0-9_.-]*)*\Z")
_YAML_SHAPE = "a mapping of category: [terms]"
_CSV_HEADER = "a header row 'term,category'"


@dataclass(frozen=True)
class Concept:
    """One vocabulary term and the category it belongs to."""

    term: str
    category: str


def builtin_packs() -> list[str]:
    """Names usable as ``builtin:NAME``: probe files shipped under specs/probes."""
    try:
        root = probes_dir()
    except FileNotFoundError:
        return []
    names = {p.relative_to(root).with_suffix("").as_posix()
             for p in root.rglob("*") if p.suffix in _SUFFIXES and p.is_file()}
    return sorted(names)


def load_vocabulary(ref: str, base_dir: Path, field: str = "probes.concepts.vocabulary",
                    spec_file: str = "") -> list[Concept]:
    """The concepts of a vocabulary, in file order; else :class:`InputErrors` with every
    problem of the file, one located line each.

    ``spec_file`` and ``field`` (when given) prefix each message, so a user running the audit
    sees which spec entry named the file; pass ``field=""`` to get the bare messages.
    """
    try:
        return _load(ref, base_dir)
    except InputError as e:
        raise _prefixed(e, spec_file, field) from None


def _prefixed(e: InputError, spec_file: str, field: str) -> InputErrors:
    """Each problem of ``e`` prefixed with the spec entry that named the file."""
    where = "".join(f"{part}: " for part in (spec_file, field) if part)
    found = e.messages if isinstance(e, InputErrors) else [str(e)]
    return InputErrors([one_line(f"{where}{m}") for m in found])


def _load(ref: str, base_dir: Path) -> list[Concept]:
    path = _builtin_path(ref[len(BUILTIN):]) if ref.startswith(BUILTIN) else resolve_path(
        ref, base_dir)
    text = read_text_file(path, ref, "vocabulary file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _parse_csv(text, ref)
    if suffix in (".yaml", ".yml"):
        return _parse_yaml(text, ref)
    raise InputError(f"{ref}: expected a .yaml, .yml or .csv vocabulary file")


def _builtin_path(name: str) -> Path:
    """probes_dir()/NAME.yaml (or .yml, .csv); names cannot climb out of that folder."""
    if _PACK_NAME.match(name):
        try:
            root = probes_dir()
        except FileNotFoundError as e:
            raise InputError(str(e)) from None
        for suffix in _SUFFIXES:
            if (root / (name + suffix)).is_file():
                return root / (name + suffix)
    packs = builtin_packs()
    raise InputError(f"unknown built-in pack {name!r}." + did_you_mean(name, packs, "Available"))


def _parse_yaml(text: str, shown: str) -> list[Concept]:
    doc = read_yaml(text, shown)
    if not doc.ok:
        first = doc.problems[0]
        where = f"{shown}:{first.line}" if first.line else shown
        raise InputError(f"{where}: {first.message}")
    data = doc.data
    if data is None:
        raise InputError(f"{shown}: the file is empty; expected {_YAML_SHAPE}")
    if not isinstance(data, dict) or not data:
        got = describe(data, doc.texts.get(()))
        raise InputError(f"{shown}:{doc.lines.get(())}: expected {_YAML_SHAPE}, got {got}")
    found = _Found(shown)
    for p in doc.problems:  # duplicate keys: the rest of the file is still read
        found.fail(p.line, p.message)
    for category, terms in data.items():
        line = doc.lines.get((category,))
        problem = _category_problem(category) or _terms_problem(category, terms)
        if problem:
            found.fail(line, problem)
            continue
        for j, term in enumerate(terms):
            found.add(term, category, doc.lines.get((category, j), line),
                      doc.texts.get((category, j)))
    return found.result()


def _category_problem(category: Any) -> str | None:
    """A category name is one segment of metric names (concepts.category.NAME.…)."""
    if not isinstance(category, str) or not category.strip():
        return f"expected a category name, got {describe(category)}"
    if "." in category:
        return (f"category {category!r}: a category name cannot contain '.', which separates "
                "the parts of metric names (concepts.category.NAME.cosine_distance.mean)")
    return None


def _terms_problem(category: str, terms: Any) -> str | None:
    if terms is None or terms == []:
        return f"category {category!r} has no terms; expected a list of terms"
    if not isinstance(terms, list):
        return f"category {category!r}: expected a list of terms, got {describe(terms)}"
    return None


class _Found:
    """Concepts in file order, refusing blank, non-text and repeated terms. Problems are
    collected, not raised, so one read reports all of them (:meth:`result`)."""

    def __init__(self, shown: str):
        self.shown = shown
        self.concepts: list[Concept] = []
        self.where: dict[str, str] = {}
        self.problems: list[tuple[int, str]] = []

    def fail(self, line: int | None, message: str) -> None:
        at = f"{self.shown}:{line}" if line else self.shown
        self.problems.append((line or 0, f"{at}: {message}"))

    def add(self, term: Any, category: str, line: int | None, text: str | None = None) -> None:
        if not isinstance(term, str):
            return self.fail(line, f"category {category!r}: expected a term (text), got "
                                   f"{describe(term, text)}; put it in quotes")
        if not term.strip():
            return self.fail(line, f"category {category!r}: blank term; expected a word or "
                                   "phrase")
        if term in self.where:
            other = self.where[term]
            if other == category:
                return self.fail(line, f"term {term!r} is listed twice in {category!r}")
            return self.fail(line, f"term {term!r} is in both {other!r} and {category!r}; "
                                   "a term can belong to one category only")
        self.where[term] = category
        self.concepts.append(Concept(term, category))
        return None

    def result(self) -> list[Concept]:
        """The concepts, or VocabularyError with every problem in line order."""
        if self.problems:
            raise InputErrors([m for _, m in sorted(self.problems, key=lambda p: p[0])])
        return self.concepts


def _parse_csv(text: str, shown: str) -> list[Concept]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        rows = [(reader.line_num, row) for row in reader if any(c.strip() for c in row)]
    except csv.Error as e:
        raise InputError(f"{shown}:{reader.line_num}: not valid CSV ({e})") from None
    if not rows:
        raise InputError(f"{shown}: the file is empty; expected {_CSV_HEADER}")
    line, header = rows[0]
    columns = [c.strip().lower() for c in header]
    missing = [c for c in ("term", "category") if c not in columns]
    if len(missing) == 2:
        got = ",".join(header)
        raise InputError(f"{shown}:{line}: expected {_CSV_HEADER}, got {got!r}")
    if missing:
        raise InputError(f"{shown}:{line}: missing column '{missing[0]}'; expected {_CSV_HEADER}")
    ti, ci = columns.index("term"), columns.index("category")
    found = _Found(shown)
    for line, row in rows[1:]:
        term = row[ti].strip() if ti < len(row) else ""
        category = row[ci].strip() if ci < len(row) else ""
        if not category and term:
            found.fail(line, f"term {term!r} has no category")
        elif "." in category:
            found.fail(line, _category_problem(category) or "")
        else:
            found.add(term, category, line)
    if not found.concepts and not found.problems:
        raise InputError(f"{shown}: expected at least one term after the header")
    return found.result()


def concept_texts(concepts: list[Concept], template: str) -> list[str]:
    """The prompt for each concept. Only {term} is replaced, so other braces stay literal."""
    return [template.replace("{term}", c.term) for c in concepts]


def probe_digest(kind: str, texts: list[str], extra: dict | None = None) -> str:
    """sha256 of canonical JSON of the probe texts: the same probes give the same digest."""
    blob = json.dumps({"kind": kind, "texts": list(texts), "extra": extra or {}},
                      sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(blob.encode("utf-8")).hexdigest()


_TEXT_SUFFIXES = (".txt", ".jsonl")


def builtin_text_packs() -> list[str]:
    """Names usable as ``builtin:NAME`` for plain-text probe sets (``domains/finance``, …)."""
    try:
        root = probes_dir()
    except FileNotFoundError:
        return []
    return sorted(p.relative_to(root).with_suffix("").as_posix()
                  for p in root.rglob("*") if p.suffix in _TEXT_SUFFIXES and p.is_file())


def _builtin_text_path(name: str) -> Path:
    if _PACK_NAME.match(name):
        try:
            root = probes_dir()
        except FileNotFoundError as e:
            raise InputError(str(e)) from None
        for suffix in _TEXT_SUFFIXES:
            if (root / (name + suffix)).is_file():
                return root / (name + suffix)
    raise InputError(f"unknown built-in text pack {name!r}."
                     + did_you_mean(name, builtin_text_packs(), "Available"))


def load_texts(ref: str, base_dir: Path, field: str = "probes.domains[0].texts",
               spec_file: str = "") -> list[str]:
    """Probe texts from a file: one text per non-blank line (lines starting with "#" are
    comments), or JSONL (``.jsonl``) with a ``text`` field per line;
    ``builtin:domains/NAME`` for the shipped packs."""
    try:
        return _load_texts(ref, base_dir)
    except InputError as e:
        raise _prefixed(e, spec_file, field) from None


def _load_texts(ref: str, base_dir: Path) -> list[str]:
    path = (_builtin_text_path(ref[len(BUILTIN):]) if ref.startswith(BUILTIN)
            else resolve_path(ref, base_dir))
    text = read_text_file(path, ref, "probe text file")
    out: list[str] = []
    bad: list[str] = []
    jsonl = path.suffix.lower() == ".jsonl"
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or (not jsonl and line.lstrip().startswith("#")):
            continue
        if not jsonl:
            out.append(line.strip())
            continue
        try:
            obj = parse_json(line)
        except BadJSON as e:
            bad.append(f"{ref}:{n}: not valid JSON ({e})")
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
            bad.append(f"{ref}:{n}: expected an object with a 'text' string")
        elif not obj["text"].strip():
            bad.append(f"{ref}:{n}: blank text")
        else:
            out.append(obj["text"])
    if bad:
        raise InputErrors(bad)
    if not out:
        raise InputError(f"{ref}: no texts; expected one text per line (or JSONL with 'text')")
    return out


def load_risk_prompts(ref: str, base_dir: Path, name: str, field: str = "probes.risk[0].prompts",
                      spec_file: str = "") -> list:
    """A risk pack (JSONL of ``{prompt, safe, unsafe}``), its category the set's name;
    ``builtin:risk/NAME`` for the shipped packs."""
    from reportgen.spec.riskpacks import load_risk_pack

    try:
        path = (_builtin_text_path(ref[len(BUILTIN):]) if ref.startswith(BUILTIN)
                else resolve_path(ref, base_dir))
        return load_risk_pack(path, name)
    except InputError as e:
        raise _prefixed(e, spec_file, field) from None
