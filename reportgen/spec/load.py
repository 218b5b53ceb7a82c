"""Load an audit spec (YAML file, dict or AuditSpec) and report every problem in it at once.

A user fixing a spec should see all of its mistakes in one run, each as
``file:line: field: message`` saying what was expected and what arrived. So the YAML is read
as a node tree (to keep line numbers), pydantic's errors are translated into plain words, and
the cross-field checks (names, metrics, conditions, the vocabulary) run on the raw data, so
they still run when pydantic rejected something elsewhere.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from reportgen.core.errors import InputError, InputErrors, Problem, SpecError
from reportgen.core.names import lookup, unknown_metric_message
from reportgen.spec.conditions import parse_condition
from reportgen.spec.metricnames import check_metric_names, known_from_spec
from reportgen.spec.types import NAME_PATTERN, AuditSpec

Path_ = tuple[Any, ...]
MISSING: Any = type("Missing", (), {"__repr__": lambda self: "MISSING"})()
MAX_VALUES = 100_000  # an alias "bomb" (a: &a [*b, *b, ...]) must not expand without bound


@dataclass(frozen=True)
class LoadedSpec:
    """A validated spec with what later stages need to resolve paths and cite it."""

    spec: AuditSpec
    file: str
    base_dir: Path
    digest: str
    normalised: dict
    facts: Any = None  # preflight.ModelFacts when the models were checked too


@dataclass
class YamlDoc:
    """Data read from YAML plus where each key and item sits, for located messages."""

    data: Any = None
    lines: dict[Path_, int] = field(default_factory=dict)
    texts: dict[Path_, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    ok: bool = True


# ---------------------------------------------------------------------------------------------
# Paths


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_vars(text: str) -> str:
    """Expand ${VAR} and ${VAR:-default} (default also when VAR is empty, as in the shell)."""

    def sub(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        value = os.environ.get(name, "")
        if value:
            return value
        if default is not None:
            return default
        if name in os.environ:
            return value
        raise InputError(
            f"{text}: environment variable {name} is not set; set it or write ${{{name}:-default}}"
        )

    out = _VAR.sub(sub, text)
    if "${" in _VAR.sub("", text):
        raise InputError(f"{text}: cannot expand '${{'; expected ${{NAME}} or ${{NAME:-default}}")
    return out


def resolve_path(text: str, base_dir: Path) -> Path:
    """A spec path as a Path: ${VAR} expanded, then ~, then relative to ``base_dir``."""
    try:
        path = Path(expand_vars(str(text))).expanduser()
    except RuntimeError as e:  # ~user with no such user, or no home directory
        raise InputError(f"{text}: cannot expand '~' ({e})") from None
    return path if path.is_absolute() else Path(base_dir) / path


# ---------------------------------------------------------------------------------------------
# Reading YAML with line numbers


class _Loader(yaml.SafeLoader):
    """SafeLoader whose bad dates are located YAML errors instead of bare ValueErrors."""

    def construct_yaml_timestamp(self, node: yaml.Node) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, OverflowError) as e:
            raise yaml.constructor.ConstructorError(
                None, None, f"invalid date {node.value!r} ({e})", node.start_mark
            ) from None


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)

_MERGE = "tag:yaml.org,2002:merge"


def read_text_file(path: Path, shown: str, what: str) -> str:
    """The UTF-8 text of a file, or InputError with one line naming it as the user wrote it."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{shown}: {what} not found") from None
    except IsADirectoryError:
        raise InputError(f"{shown}: is a folder; expected a {what}") from None
    except (OSError, ValueError) as e:
        why = getattr(e, "strerror", None) or str(e)
        raise InputError(f"{shown}: cannot read the {what} ({why})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(
            f"{shown}: the {what} is not UTF-8 text (byte {raw[e.start]:#04x} at offset {e.start})"
        ) from None


def read_yaml(text: str, file: str) -> YamlDoc:
    """Parse one YAML document safely, recording the line of every key and list item."""
    doc = YamlDoc()
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as e:
        return _reader_problem(e, text, file)
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_size(node)
            doc.lines[()] = node.start_mark.line + 1
            _index(node, (), loader, doc, file)
            doc.data = loader.construct_document(node)
    except yaml.MarkedYAMLError as e:
        doc.problems = [_syntax_problem(e, text, file)]
        doc.ok = False
    except yaml.reader.ReaderError as e:
        return _reader_problem(e, text, file)
    except (yaml.YAMLError, ValueError) as e:
        doc.problems = [Problem(file, None, "", one_line(f"YAML error: {e}"))]
        doc.ok = False
    except RecursionError:
        doc.problems = [Problem(file, None, "", "the YAML is nested too deeply to read")]
        doc.ok = False
    finally:
        loader.dispose()
    return doc


def _reader_problem(e: yaml.reader.ReaderError, text: str, file: str) -> YamlDoc:
    line = text.count("\n", 0, max(e.position, 0)) + 1
    what = f"unacceptable character #x{e.character:04x}: {e.reason}"
    return YamlDoc(problems=[Problem(file, line, "", f"YAML syntax error: {what}")], ok=False)


def _syntax_problem(e: yaml.MarkedYAMLError, text: str, file: str) -> Problem:
    mark = e.problem_mark or e.context_mark
    line = mark.line + 1 if mark else None
    what = e.problem or e.context or "unreadable YAML"
    if e.context and e.problem and e.problem.startswith("but "):
        what = f"{e.context}, {e.problem}"
    source = text.splitlines()[line - 1] if line and line <= len(text.splitlines()) else ""
    if "'\\t'" in what:
        what += " (indent with spaces, not tabs)"
    elif re.search(r":\s*(?:[<>]|[=!]=)", source):
        what += ' (put conditions in quotes, e.g. fail_if: "> 0.2")'
    kind = "YAML error" if isinstance(e, yaml.constructor.ConstructorError) else "YAML syntax error"
    return Problem(file, line, "", one_line(f"{kind}: {what}"))


def _check_size(root: yaml.Node) -> None:
    """Refuse recursive aliases, and aliases that repeat more than MAX_VALUES values.

    Big documents written out in full (a long vocabulary) are fine: only repetition through
    aliases counts, since that is how a few lines become billions of values.
    """
    sizes: dict[int, int] = {}
    active: set[int] = set()
    repeated = 0

    def size(node: yaml.Node) -> int:
        nonlocal repeated
        if id(node) in active:
            raise yaml.constructor.ConstructorError(
                None, None, "an alias refers to the value that contains it", node.start_mark
            )
        active.add(id(node))
        total = 1
        for child in _children(node):
            if id(child) in sizes:  # seen before: this is an alias
                repeated += sizes[id(child)]
                if repeated > MAX_VALUES:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"aliases repeat more than {MAX_VALUES} values",
                        node.start_mark,
                    )
            total += sizes[id(child)] if id(child) in sizes else size(child)
        active.discard(id(node))
        sizes[id(node)] = total
        return total

    size(root)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return node.value
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _index(node: yaml.Node, path: Path_, loader: _Loader, doc: YamlDoc, file: str) -> None:
    """Record lines (the caller records ``path``'s own) and scalar texts; report duplicate keys."""
    if isinstance(node, yaml.ScalarNode):
        doc.texts[path] = node.value
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            doc.lines[(*path, i)] = item.start_mark.line + 1
            _index(item, (*path, i), loader, doc, file)
    elif isinstance(node, yaml.MappingNode):
        first: dict[Any, int] = {}
        for knode, vnode in node.value:
            if knode.tag == _MERGE or not isinstance(knode, yaml.ScalarNode):
                continue  # merged keys keep their parent's line; complex keys fail later
            key = loader.construct_object(knode)
            line = knode.start_mark.line + 1
            if key in first:
                doc.problems.append(Problem(
                    file, line, field_name((*path, key)),
                    one_line(f"duplicate key {key!r} (first at line {first[key]})"),
                ))
            else:
                first[key] = line
            doc.lines[(*path, key)] = line
            _index(vnode, (*path, key), loader, doc, file)


# ---------------------------------------------------------------------------------------------
# Loading and validating


def load_spec(source: str | os.PathLike[str] | dict | AuditSpec,
              models: bool = False) -> LoadedSpec:
    """Load and validate a spec; raise SpecError listing every problem, sorted by line.

    ``models``: also read each model's config.json and tokenizer (never its weights) and
    report what they rule out (:mod:`reportgen.spec.preflight`); ``facts`` then holds what they
    said. """
    if isinstance(source, AuditSpec):
        source = source.model_dump(by_alias=True)
    if isinstance(source, dict):
        return _validate(source, YamlDoc(data=source), "<dict>", Path.cwd(), models)
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"load_spec expects a path, a dict or an AuditSpec, not {type(source)}")
    file = str(source)
    path = Path(source)
    doc = read_yaml(read_text_file(path, file, "spec file"), file)
    if not doc.ok:
        raise SpecError(doc.problems)
    required = ", ".join(n for n, f in AuditSpec.model_fields.items() if f.is_required())
    if doc.data is None:
        raise SpecError([Problem(
            file, None, "", f"the spec file is empty; expected a mapping with the keys {required}"
        )])
    if not isinstance(doc.data, dict):
        raise SpecError([Problem(
            file, doc.lines.get(()), "",
            f"expected a mapping with the keys {required}, got {describe(doc.data)}",
        )])
    return _validate(doc.data, doc, file, path.absolute().parent, models)


def _validate(raw: dict, doc: YamlDoc, file: str, base_dir: Path, models: bool) -> LoadedSpec:
    ctx = _Ctx(file, doc.lines, doc.texts, base_dir)
    spec: AuditSpec | None = None
    typed: list[Problem] = []
    try:
        spec = AuditSpec.model_validate(raw)
    except ValidationError as e:
        typed = _pydantic_problems(e, raw, ctx)
    semantic, facts = _semantic_problems(raw, ctx, models)
    claimed = {p.field for p in semantic}
    problems = doc.problems + [p for p in typed if p.field not in claimed] + semantic
    if problems or spec is None:
        raise SpecError(ctx.sort(list(dict.fromkeys(problems)), raw))
    normalised = spec.model_dump(mode="json", by_alias=True)
    if facts is not None:
        spec = facts.apply(spec)
    return LoadedSpec(spec, file, base_dir, spec_digest(normalised), normalised, facts)


def spec_digest(normalised: dict) -> str:
    """sha256 of canonical JSON, so key order and YAML formatting do not change it."""
    blob = json.dumps(normalised, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(blob.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------------------------
# Locating problems and describing values


@dataclass(frozen=True)
class _Ctx:
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


def field_name(path: Path_) -> str:
    """('checks', 1, 'fail_if') -> 'checks[1].fail_if'; odd keys in quotes: a['my key']."""
    out = ""
    for el in path:
        if isinstance(el, int) and not isinstance(el, bool):
            out += f"[{el}]"
        elif isinstance(el, str) and re.fullmatch(r"[\w-]+", el):
            out += f".{el}" if out else el
        else:
            out += f"[{el!r}]"
    return out


def one_line(text: str) -> str:
    """Messages are one line each: newlines and other control characters are escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


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


# ---------------------------------------------------------------------------------------------
# pydantic errors in plain words


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


def _message(err: dict, path: Path_, allowed: list[Any], owner: Any, ctx: _Ctx) -> str:
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


def _pydantic_problems(error: ValidationError, raw: Any, ctx: _Ctx) -> list[Problem]:
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


def _union_problem(path: Path_, alternatives: list[tuple[dict, list[Any]]], ctx: _Ctx) -> Problem:
    phrases = list(dict.fromkeys(_expected(err, allowed) for err, allowed in alternatives))
    got = describe(alternatives[0][0].get("input"), ctx.texts.get(path))
    return ctx.problem(path, f"expected {' or '.join(phrases)}, got {got}")


# ---------------------------------------------------------------------------------------------
# Checks across fields, on the raw data so they run even where pydantic failed elsewhere


def _semantic_problems(raw: dict, ctx: _Ctx, models: bool) -> tuple[list[Problem], Any]:
    """The problems across fields, and (with ``models``) what the models' configs said."""
    out: list[Problem] = []
    entries = raw.get("models")
    candidates = _check_models(entries if isinstance(entries, dict) else {}, ctx, out)
    _check_checks(raw.get("checks"), candidates, ctx, out)
    _check_layers(raw.get("analysis"), ctx, out)
    concepts = _check_vocabulary(raw.get("probes"), ctx, out)
    _check_probe_files(raw.get("probes"), ctx, out)
    facts = None
    if models:
        from reportgen.spec.preflight import (
            check_models,  # reads configs and tokenizers: only when asked
        )

        facts = check_models(raw, concepts, ctx, out)
    categories = None if concepts is None else list(dict.fromkeys(c.category for c in concepts))
    known = known_from_spec(raw, categories, facts.n_layers if facts else None)
    check_metric_names(raw, known, ctx.problem, out)
    return out, facts


def _mappings(items: Any) -> list[tuple[int, dict]]:
    """The (index, item) pairs of a list that are mappings; anything else pydantic reports."""
    return [(i, x) for i, x in enumerate(items) if isinstance(x, dict)] if isinstance(
        items, list) else []


def _check_models(models: dict, ctx: _Ctx, out: list[Problem]) -> list[str] | None:
    """Unique candidate names, each with exactly one source; the names (None: unreadable)."""
    at = ("models", "candidates")
    if not isinstance(models.get("candidates"), list):
        return None
    candidates = _mappings(models.get("candidates"))
    names: dict[str, int] = {}
    for i, c in candidates:
        name = c.get("name")
        if not isinstance(name, str):
            continue
        if name == "base":
            out.append(ctx.problem((*at, i, "name"),
                                   "'base' is the name of the base model; choose another name"))
        elif not name.strip():
            out.append(ctx.problem((*at, i, "name"), "expected a name, got an empty string"))
        elif name in names:
            out.append(ctx.problem((*at, i, "name"), f"duplicate model name {name!r}; "
                                   f"models.candidates[{names[name]}] already uses it"))
        else:
            names[name] = i
    for i, c in candidates:
        _check_source((*at, i), c, ["base", *names], ctx, out)
    _check_derive_loops(candidates, names, ctx, out)
    if candidates and all(c.get("role") == "noise_floor" for _, c in candidates):
        out.append(ctx.problem(at, "every candidate is a noise floor; "
                                   "expected at least one with role: candidate"))
    return list(names)


def _check_source(at: Path_, c: dict, known: list[str], ctx: _Ctx, out: list[Problem]) -> None:
    """A candidate comes from exactly one of a path and a derivation of a known model."""
    has_path, derive = c.get("path") is not None, c.get("derive")
    if has_path and derive is not None:
        out.append(ctx.problem(at, "has both path and derive; expected exactly one of them"))
    elif not has_path and derive is None:
        out.append(ctx.problem(at, "has neither path nor derive; expected exactly one of them"))
    source = derive.get("from") if isinstance(derive, dict) else None
    if not isinstance(source, str):
        return
    if source == c.get("name"):
        out.append(ctx.problem((*at, "derive", "from"), "a model cannot derive from itself"))
    elif source not in known:
        out.append(ctx.problem((*at, "derive", "from"),
                               f"unknown model {source!r}." + did_you_mean(source, known)))


def _check_derive_loops(candidates: list[tuple[int, dict]], names: dict[str, int], ctx: _Ctx,
                        out: list[Problem]) -> None:
    """a derives from b derives from a: nothing to start from. Reported once per loop."""
    parent = {}
    for _, c in candidates:
        derive = c.get("derive")
        source = derive.get("from") if isinstance(derive, dict) else None
        if isinstance(c.get("name"), str) and isinstance(source, str) and source != c["name"]:
            parent[c["name"]] = source
    for name, i in names.items():
        chain = [name]
        while chain[-1] in parent and parent[chain[-1]] not in chain:
            chain.append(parent[chain[-1]])
        loops = parent.get(chain[-1]) == name
        if loops and i == min(names.get(n, i) for n in chain):
            out.append(ctx.problem(("models", "candidates", i, "derive", "from"),
                                   "derivations form a loop: " + " -> ".join([*chain, name])))


def _check_checks(checks: Any, candidates: list[str] | None, ctx: _Ctx, out: list[Problem]) -> None:
    """Known metric and candidate, parseable conditions, no two checks with the same id."""
    seen: list[tuple[str, str | None, int]] = []
    for i, chk in _mappings(checks):
        at = ("checks", i)
        metric, candidate = chk.get("metric"), chk.get("candidate")
        if isinstance(metric, str) and lookup(metric) is None:
            out.append(ctx.problem((*at, "metric"), unknown_metric_message(metric)))
        if isinstance(candidate, str) and candidates is not None and candidate not in candidates:
            out.append(ctx.problem((*at, "candidate"), _unknown_candidate(candidate, candidates)))
        _check_conditions(at, chk, ctx, out)
        _check_duplicate(at, chk, seen, ctx, out)


def _unknown_candidate(name: str, candidates: list[str]) -> str:
    if name == "base":
        return ("'base' is the base model, not a candidate; each check compares a candidate "
                f"with it. Known: {', '.join(candidates) or '(none)'}")
    return f"unknown candidate {name!r}." + did_you_mean(name, candidates)


def _check_conditions(at: Path_, chk: dict, ctx: _Ctx, out: list[Problem]) -> None:
    conditions = {key: chk.get(key) for key in ("fail_if", "warn_if")}
    if all(v is None for v in conditions.values()):
        out.append(ctx.problem(at, "has neither fail_if nor warn_if; "
                                   "expected at least one condition"))
    for key, value in conditions.items():
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            text = value if isinstance(value, str) else ctx.texts.get((*at, key)) or str(value)
            try:
                parse_condition(text)
            except ValueError as e:
                out.append(ctx.problem((*at, key), str(e)))


def _check_duplicate(at: Path_, chk: dict, seen: list[tuple[str, str | None, int]], ctx: _Ctx,
                     out: list[Problem]) -> None:
    """Two checks may share an id (default: the metric) only if they name other candidates."""
    given, metric, candidate = chk.get("id"), chk.get("metric"), chk.get("candidate")
    check_id = given if isinstance(given, str) else metric if isinstance(metric, str) else None
    if check_id is None:
        return
    scope = candidate if isinstance(candidate, str) else None
    for other_id, other_scope, j in seen:
        if other_id == check_id and (None in (scope, other_scope) or scope == other_scope):
            if isinstance(given, str):
                out.append(ctx.problem((*at, "id"), f"duplicate check id {check_id!r}; "
                                                    f"checks[{j}] already uses it"))
            else:
                out.append(ctx.problem(at, f"duplicate check: checks[{j}] already checks "
                                           f"{check_id!r} on the same candidates; "
                                           "give one of them an id"))
            break
    seen.append((check_id, scope, at[1]))


def _check_layers(analysis: Any, ctx: _Ctx, out: list[Problem]) -> None:
    """analysis.layers: non-negative indices, each once (pydantic accepts -1 and true)."""
    layers = analysis.get("layers") if isinstance(analysis, dict) else None
    at = ("analysis", "layers")
    if not isinstance(layers, list):
        return
    if not layers:
        out.append(ctx.problem(at, "expected 'all' or at least one layer index, "
                                   "got an empty list"))
    seen: set[int] = set()
    for j, v in enumerate(layers):
        if isinstance(v, bool):
            got = describe(v, ctx.texts.get((*at, j)))
            out.append(ctx.problem((*at, j), f"expected a layer index (a whole number), got {got}"))
        elif isinstance(v, int) and v < 0:
            out.append(ctx.problem((*at, j), f"expected a layer index >= 0, got {v}"))
        elif isinstance(v, int) and v in seen:
            out.append(ctx.problem((*at, j), f"layer {v} is listed twice"))
        elif isinstance(v, int):
            seen.add(v)


def _check_vocabulary(probes: Any, ctx: _Ctx, out: list[Problem]) -> list | None:
    """The vocabulary must load now, not after the models have been hashed: every problem of
    it at once. Its concepts; [] without probes.concepts; None when they cannot be read."""
    concepts = probes.get("concepts") if isinstance(probes, dict) else None
    ref = concepts.get("vocabulary") if isinstance(concepts, dict) else None
    if not isinstance(ref, str):
        return None if isinstance(concepts, dict) else []
    from reportgen.spec.probes import (
        load_vocabulary,  # probes imports this module's readers: import late
    )

    try:
        return load_vocabulary(ref, ctx.base_dir, field="")
    except InputError as e:
        _file_problems(("probes", "concepts", "vocabulary"), e, ctx, out)
    return None


def _file_problems(at: Path_, e: InputError, ctx: _Ctx, out: list[Problem]) -> None:
    """Each problem of a probe file, located at the spec entry that names it."""
    out.extend(ctx.problem(at, m) for m in (e.messages if isinstance(e, InputErrors)
                                            else [str(e)]))


def _check_probe_files(probes: Any, ctx: _Ctx, out: list[Problem]) -> None:
    """Domain texts and risk packs load now too: every bad line is named before any model
    is hashed."""
    from reportgen.spec.probes import load_risk_prompts, load_texts

    for key, ref_key in (("domains", "texts"), ("risk", "prompts")):
        items = probes.get(key) if isinstance(probes, dict) else None
        for i, r in enumerate(items if isinstance(items, list) else []):
            ref = r.get(ref_key) if isinstance(r, dict) else None
            if not isinstance(ref, str):
                continue
            name = r.get("name") if isinstance(r.get("name"), str) else key
            try:
                if key == "risk":
                    load_risk_prompts(ref, ctx.base_dir, name, field="")
                else:
                    load_texts(ref, ctx.base_dir, field="")
            except InputError as e:
                _file_problems(("probes", key, i, ref_key), e, ctx, out)
