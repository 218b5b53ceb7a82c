"""Spec problems as one located line each: the field's dotted name, what was expected and what
arrived, with "did you mean" among the known names; pydantic's errors translated the same way."""

from __future__ import annotations

import difflib
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from reportgen.core.errors import Problem
from reportgen.spec.types import NAME_PATTERN, AuditSpec
from reportgen.spec.yamlsrc import MAX_VALUES, Path_, field_name, one_line


@dataclass(frozen=True)
class Ctx:
    """Where the spec came from, to turn a key path into ``file:line: field``."""

    file: str
    lines: dict[Path_, int]
    texts: dict[Path_, str]
    base_dir: Path
    paths: dict[Problem, Path_] = field(default_factory=dict)

    def line(self, path: Path_) -> int | None:
        """The line of ``path``, else of its nearest ancestor (a missing key: its mapping)."""
        for n in range(len(path), -1, -1):
            if path[:n] in self.lines:
                return self.lines[path[:n]]
        return None

    def problem(self, path: Path_, message: str) -> Problem:
        problem = Problem(self.file, self.line(path), field_name(path), one_line(message))
        self.paths[problem] = path
        return problem

    def sort(self, problems: list[Problem], raw: Any) -> list[Problem]:
        """By line, then in document order (a dict's order when there are no lines)."""
        order = _document_order(raw)

        def rank(p: Problem) -> int:
            path = self.paths.get(p, ())
            return next((order[path[:n]] for n in range(len(path), -1, -1)
                         if path[:n] in order), 0)

        return sorted(problems, key=lambda p: (p.line or 0, rank(p)))

def _document_order(raw: Any) -> dict[Path_, int]:
    """Every key path of the data, numbered in the order it was written."""
    order: dict[Path_, int] = {}

    def walk(value: Any, path: Path_, active: frozenset[int]) -> None:
        order.setdefault(path, len(order))
        if id(value) in active or len(order) > MAX_VALUES:
            return
        inner = active | {id(value)}
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, (*path, key), inner)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, (*path, i), inner)

    walk(raw, (), frozenset())
    return order



def describe(value: Any, text: str | None = None) -> str:
    """A value as a user would recognise it in a message: 'abc', 1.3, true, a list."""
    if value is MISSING:
        return "nothing"
    if value is None:
        return "an empty value"
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    if isinstance(value, bool):
        return text or ("true" if value else "false")
    if isinstance(value, (int, float)) or hasattr(value, "isoformat"):
        return text or str(value)
    if isinstance(value, dict):
        return "a mapping" if value else "an empty mapping"
    if isinstance(value, (list, tuple)):
        return "a list" if value else "an empty list"
    return f"a {type(value).__name__}"

def did_you_mean(word: Any, choices: list[str], what: str = "Known") -> str:
    """The hint after an 'unknown …' message: " Did you mean 'x'? Known: a, b"."""
    close = difflib.get_close_matches(str(word), choices, n=1, cutoff=0.6)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return f"{hint} {what}: {', '.join(choices) or '(none)'}"

def _branches(tp: Any) -> list[Any]:
    """The alternatives of a type annotation, None left out."""
    if get_origin(tp) in (Union, types.UnionType):
        return [b for arg in get_args(tp) for b in _branches(arg)]
    return [] if tp is type(None) else [tp]

def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)

def _field_type(models: list[type[BaseModel]], key: Any) -> Any:
    for m in models:
        for name, info in m.model_fields.items():
            if key in (name, info.alias):
                return info.annotation
    return None

def _locate(loc: tuple, raw: Any) -> tuple[Path_, bool, list[Any], Any]:
    """pydantic's loc as a key path, walking the data and the models side by side.

    Union members appear in loc as tags ('list[int]', 'datetime'); they are dropped and
    reported as ``tagged``. Also returns the types allowed at the end and the model that owns
    the last key (for 'did you mean').
    """
    path: list[Any] = []
    tagged, data, allowed, owner = False, raw, [AuditSpec], None
    for el in loc:
        models = [t for t in allowed if _is_model(t)]
        ann = _field_type(models, el) if isinstance(el, str) else None
        if isinstance(data, list) and isinstance(el, int):
            data = data[el] if 0 <= el < len(data) else MISSING
            allowed = [b for t in allowed if get_origin(t) is list
                       for b in _branches(get_args(t)[0])]
        elif ann is not None or (isinstance(data, dict) and el in data):
            owner = models[0] if models else None
            data = data.get(el, MISSING) if isinstance(data, dict) else MISSING
            allowed = _branches(ann) if ann is not None else []
        else:
            tagged = True
            continue
        path.append(el)
    return tuple(path), tagged, allowed, owner

_EXPECTED = {
    "string_type": "a string",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "int_parsing_size": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "finite_number": "a finite number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}

_BOUNDS = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=",
           "less_than": "<"}

def _expected(err: dict, allowed: list[Any]) -> str:
    """What a failed check expected, as a noun phrase ('a whole number', "'all'")."""
    kind = err["type"]
    if kind == "literal_error":
        choices = [a for t in allowed if get_origin(t) is Literal for a in get_args(t)]
        return " or ".join(f"'{c}'" for c in choices) or err["ctx"]["expected"]
    if kind.startswith("datetime"):
        return "a date-time (YYYY-MM-DD HH:MM:SS)"
    if kind.startswith("date"):
        return "a date (YYYY-MM-DD)"
    if kind == "list_type" and any(get_args(t) == (int,) for t in allowed):
        return "a list of whole numbers"
    if kind == "string_pattern_mismatch" and err["ctx"].get("pattern") == NAME_PATTERN:
        return "a name of letters, digits, '_' and '-' (it becomes part of metric names)"
    return _EXPECTED.get(kind, err["msg"][:1].lower() + err["msg"][1:])

def _message(err: dict, path: Path_, allowed: list[Any], owner: Any, ctx: Ctx) -> str:
    """One pydantic error as a plain sentence saying what was expected and what arrived."""
    kind, info, value = err["type"], err.get("ctx") or {}, err.get("input")
    got = describe(value, ctx.texts.get(path))
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        valid = [f.alias or n for n, f in owner.model_fields.items()] if owner else []
        close = difflib.get_close_matches(str(path[-1]), valid, n=1, cutoff=0.6)
        hint = f"Did you mean '{close[0]}'?" if close else "Expected one of: " + ", ".join(valid)
        return f"unknown key {describe(path[-1])}. {hint}"
    if kind == "value_error":
        return str(info.get("error", err["msg"]))
    if kind == "literal_error":
        choices = [str(a) for t in allowed if get_origin(t) is Literal for a in get_args(t)]
        return f"expected one of: {', '.join(choices) or info.get('expected')}; got {got}"
    if kind == "too_short":
        n = info.get("min_length", 1)
        return f"expected at least {n} item{'s' if n != 1 else ''}, got {got}"
    if kind in _BOUNDS:
        bound = next(iter(info.values()), "?")
        return f"expected a number {_BOUNDS[kind]} {bound}, got {got}"
    if kind == "recursion_loop":
        return "the value refers to itself"
    message = f"expected {_expected(err, allowed)}, got {got}"
    if kind == "string_type" and (isinstance(value, (int, float)) or hasattr(value, "year")):
        message += f'; put it in quotes: "{ctx.texts.get(path) or value}"'
    return message

def pydantic_problems(error: ValidationError, raw: Any, ctx: Ctx) -> list[Problem]:
    """Every pydantic error, located; a union's failed alternatives become one message."""
    errors = error.errors(include_url=False)
    # an invalid key's loc ends in the key as text; the key itself is the error's input
    located = [(err, *_locate(err["loc"][:-1] if err["type"] == "invalid_key" else err["loc"],
                              raw)) for err in errors]
    deeper = {path[:n] for _, path, *_ in located for n in range(len(path))}
    entries: list[Problem | Path_] = []
    unions: dict[Path_, list[tuple[dict, list[Any]]]] = {}
    for err, path, tagged, allowed, owner in located:
        if err["type"] == "invalid_key":
            key = "null" if err.get("input") is None else describe(err.get("input"))
            entries.append(ctx.problem(path, f"expected text keys, got the key {key}"))
        elif not tagged:
            entries.append(ctx.problem(path, _message(err, path, allowed, owner, ctx)))
        elif path not in deeper:  # else an alternative that got further explains it better
            if path not in unions:
                unions[path] = []
                entries.append(path)
            unions[path].append((err, allowed))
    return [e if isinstance(e, Problem) else _union_problem(e, unions[e], ctx) for e in entries]

def _union_problem(path: Path_, alternatives: list[tuple[dict, list[Any]]], ctx: Ctx) -> Problem:
    phrases = list(dict.fromkeys(_expected(err, allowed) for err, allowed in alternatives))
    got = describe(alternatives[0][0].get("input"), ctx.texts.get(path))
    return ctx.problem(path, f"expected {' or '.join(phrases)}, got {got}")


MISSING: Any = type("Missing", (), {"__repr__": lambda self: "MISSING"})()
