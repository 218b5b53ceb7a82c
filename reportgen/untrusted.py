"""Files from outside, read without trusting them: regular files only, JSON within limits.

Why: a certificate folder, a PDF, a signature or a probe file may come from someone the
reader does not trust. A symbolic link in such a folder would make reportgen read, copy or
attach a file of the reader's own (``certificate.pdf -> /etc/hostname``), a FIFO would hang
it, and a crafted JSON document (a 5,000-digit number, nesting 100,000 deep, ``NaN``, a key
given twice so that two readers see two different values) would crash it or be read
differently elsewhere. Here each of those becomes one clear :class:`InputError`.
"""

from __future__ import annotations

import errno
import json
import math
import os
import stat
from pathlib import Path, PurePosixPath
from typing import Any

from .errors import InputError

MAX_DEPTH = 64  # a certificate nests about 8 deep
MAX_NUMBER_CHARS = 40  # a parameter count has 13 digits
CHUNK = 1 << 20


class UntrustedFileError(InputError):
    """A file from outside that is a symbolic link, not a regular file, or too large."""


class BadJSON(ValueError):
    """JSON that is invalid or beyond a limit; the message says which (no file name)."""


# -------------------------------------------------------------------------------- files


def read_regular(path: Path, limit: int) -> bytes:
    """The bytes of ``path``, which must be a regular file (not a link) of at most ``limit``
    bytes. A missing file raises FileNotFoundError, so the caller can say what was expected.
    """
    with os.fdopen(open_regular(path), "rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise UntrustedFileError(f"{path}: larger than {_size(limit)}; refusing to read it")
    return data


def read_json_beside(path: Path, limit: int = 2**20) -> bytes | None:
    """The bytes of an optional JSON file such as ``certificate.sig.json`` (None when there is
    none), checked to be a regular file holding a JSON object within the limits."""
    try:
        raw = read_regular(path, limit)
    except FileNotFoundError:
        return None
    try:
        value = parse_json(raw)
    except BadJSON as e:
        raise UntrustedFileError(f"{path}: not a JSON document ({e})") from None
    if not isinstance(value, dict):
        raise UntrustedFileError(f"{path}: expected a JSON object")
    return raw


def open_regular(path: Path) -> int:
    """A read-only descriptor of ``path`` if it is a regular file and not a symbolic link."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as e:
        if e.errno == errno.ELOOP or Path(path).is_symlink():
            raise symlink_error(Path(path)) from None
        raise UntrustedFileError(f"{path}: cannot be read ({e.strerror})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UntrustedFileError(f"{path}: not a regular file")
    return fd


def copy_regular(src: Path, dst: Path) -> None:
    """Copy the regular file ``src`` (never through a link) to ``dst`` and flush it."""
    with os.fdopen(open_regular(src), "rb") as fin, open(dst, "wb") as fout:
        while chunk := fin.read(CHUNK):
            fout.write(chunk)
        fout.flush()
        os.fsync(fout.fileno())


def inside(folder: Path, rel: str) -> Path:
    """``folder / rel`` for a relative path that stays inside ``folder`` and passes through
    no symbolic link (the last component is checked when it is opened)."""
    parts = PurePosixPath(rel).parts
    if not parts or PurePosixPath(rel).is_absolute() or ".." in parts:
        raise UntrustedFileError(f"{folder / rel}: expected a path inside {folder}")
    here = Path(folder)
    for part in parts[:-1]:
        here = here / part
        if here.is_symlink():
            raise symlink_error(here)
    return here / parts[-1]


def symlink_error(path: Path) -> UntrustedFileError:
    return UntrustedFileError(f"{path}: is a symbolic link; reportgen reads only regular "
                              "files from a certificate folder and never follows links there")


def _size(n: int) -> str:
    return f"{n / 2**20:.0f} MiB" if n >= 2**20 else f"{n} bytes"


# --------------------------------------------------------------------------------- JSON


def parse_json(raw: bytes | str) -> Any:
    """JSON with limits: UTF-8, nesting at most :data:`MAX_DEPTH`, numbers of at most
    :data:`MAX_NUMBER_CHARS` characters and finite, no NaN or Infinity, no key twice.
    Raises :class:`BadJSON` saying what is wrong."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        value = json.loads(text, parse_int=_int, parse_float=_float,
                           parse_constant=_constant, object_pairs_hook=_object)
    except UnicodeDecodeError:
        raise BadJSON("not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise BadJSON(f"{e.msg} at line {e.lineno} column {e.colno}") from None
    except RecursionError:
        raise BadJSON(_too_deep()) from None
    check_depth(value)
    return value


def check_depth(value: Any, limit: int = MAX_DEPTH) -> None:
    """Raise :class:`BadJSON` when lists and objects nest deeper than ``limit``."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        if depth > limit:
            raise BadJSON(_too_deep(limit))
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))


def _too_deep(limit: int = MAX_DEPTH) -> str:
    return f"lists and objects nested deeper than {limit} levels"


def _int(s: str) -> int:
    if len(s) > MAX_NUMBER_CHARS:
        raise BadJSON(f"a number of {len(s)} characters (at most {MAX_NUMBER_CHARS})")
    return int(s)


def _float(s: str) -> float:
    if len(s) > MAX_NUMBER_CHARS:
        raise BadJSON(f"a number of {len(s)} characters (at most {MAX_NUMBER_CHARS})")
    value = float(s)
    if not math.isfinite(value):
        raise BadJSON(f"the number {s} is out of range")
    return value


def _constant(name: str) -> float:
    raise BadJSON(f"{name} is not a JSON number")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise BadJSON(f"the key {json.dumps(dup)[:80]} appears twice in one object")
    return out
