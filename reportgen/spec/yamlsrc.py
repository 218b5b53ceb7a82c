"""The spec's YAML, read safely: ``${VAR}`` expansion, paths relative to the spec, the line of
every value (for located messages), and bounds on what an alias may expand to."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reportgen.core.errors import InputError, Problem

Path_ = tuple[Any, ...]

MAX_VALUES = 100_000  # an alias "bomb" (a: &a [*b, *b, ...]) must not expand without bound

@dataclass
class YamlDoc:
    """Data read from YAML plus where each key and item sits, for located messages."""

    data: Any = None
    lines: dict[Path_, int] = field(default_factory=dict)
    texts: dict[Path_, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    ok: bool = True

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

class SpecLoader(yaml.SafeLoader):
    """SafeLoader whose bad dates are located YAML errors instead of bare ValueErrors."""

    def construct_yaml_timestamp(self, node: yaml.Node) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, OverflowError) as e:
            raise yaml.constructor.ConstructorError(
                None, None, f"invalid date {node.value!r} ({e})", node.start_mark
            ) from None

SpecLoader.add_constructor("tag:yaml.org,2002:timestamp", SpecLoader.construct_yaml_timestamp)

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
        loader = SpecLoader(text)
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

def _index(node: yaml.Node, path: Path_, loader: SpecLoader, doc: YamlDoc, file: str) -> None:
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
