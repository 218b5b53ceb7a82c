"""Text for a terminal: control characters from untrusted fields are shown, never obeyed.

Why: a certificate, a signature or a model folder handed over by a vendor can carry an ANSI
escape sequence or a carriage return in any string (an audit name, a model name, a file
name). Printed raw, ``ESC[1A ESC[2K`` erases the line above, so a "verification failed"
line can be hidden, and a line break in a model name can forge an "ok" line. Everything the
command line prints goes through :func:`echo` (or :func:`echo_lines` for multi-line text of
our own making), which writes such characters as visible escapes (``\\x1b``) instead.
"""

from __future__ import annotations

import re
import sys

# C0 and C1 controls, DEL, line and paragraph separators, and the bidirectional marks,
# embeddings, overrides and isolates (they reorder what follows them on the line).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e"
                     "\u2066-\u2069]")


def terminal_safe(text: object) -> str:
    """``text`` on one line with every control character written as an escape."""
    return _UNSAFE.sub(_escape, str(text))


def _escape(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def echo(text: object = "", err: bool = False, end: str = "\n") -> None:
    """Print ``text`` as one line (a line break inside it is escaped too) to stdout, or to
    stderr with ``err``."""
    print(terminal_safe(text), file=sys.stderr if err else sys.stdout, end=end)


def echo_lines(text: str, err: bool = False, end: str = "\n") -> None:
    """Print text of our own making that spans lines (a summary, a model card): its line
    breaks are kept, and each line is made terminal-safe."""
    echo_text = "\n".join(terminal_safe(line) for line in text.split("\n"))
    print(echo_text, file=sys.stderr if err else sys.stdout, end=end)
