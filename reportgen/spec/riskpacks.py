"""Risk packs: JSON lines of ``{prompt, safe, unsafe}``, read with every bad line named."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reportgen.core.errors import InputError, InputErrors
from reportgen.core.untrusted import BadJSON, parse_json


@dataclass(frozen=True)
class RiskPrompt:
    """One prompt of a risk pack with its safe and unsafe continuations."""

    prompt: str
    safe: tuple[str, ...]
    unsafe: tuple[str, ...]
    category: str


def load_risk_pack(path: str | Path, category: str | None = None) -> list[RiskPrompt]:
    """Read a JSON-lines pack ``{"prompt", "safe": [...], "unsafe": [...]}`` per line.

    The category defaults to the file stem (``financial_advice``); every error names the
    file and line so a pack author can fix it at a glance.
    """
    path = Path(path)
    cat = category or path.stem
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise InputError(f"{path}: cannot read risk pack ({e.strerror})") from None
    out, bad = [], []
    for n, line in enumerate(lines, 1):
        if line.strip():
            parsed = _parse_line(path, n, line, cat)
            (bad if isinstance(parsed, str) else out).append(parsed)
    if bad:
        raise InputErrors(bad)  # every bad line at once
    if not out:
        raise InputError(f"{path}: risk pack has no prompts")
    return out


def _parse_line(path: Path, n: int, line: str, cat: str) -> RiskPrompt | str:
    """The prompt of one line, or what is wrong with it."""
    try:
        obj = parse_json(line)
    except BadJSON as e:
        return f"{path}:{n}: not valid JSON ({e})"
    ok = isinstance(obj, dict) and isinstance(obj.get("prompt"), str) and all(
        isinstance(obj.get(k), list) and obj[k] and all(isinstance(s, str) and s for s in obj[k])
        for k in ("safe", "unsafe"))
    if not ok:
        return (f"{path}:{n}: expected {{\"prompt\": str, \"safe\": [str, ...], "
                "\"unsafe\": [str, ...]} with non-empty lists")
    return RiskPrompt(obj["prompt"], tuple(obj["safe"]), tuple(obj["unsafe"]), cat)
