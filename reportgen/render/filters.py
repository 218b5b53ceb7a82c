"""Jinja filters: how numbers, digests and names are written on the certificate page."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from . import charts


def fmt_num(v: Any) -> str:
    """Four significant digits; large numbers with thousands separators."""
    if v is None:
        return "—"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.4g}"


def fmt_ratio(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:.1f}×" if abs(v) < 100 else f"{v:,.0f}×"


def fmt_pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.1f} %"


def fmt_metric(m: dict[str, Any] | None) -> str:
    """A metric value in its unit ('57.8×', '87.5 %', '0.1342')."""
    if m is None or m.get("value") is None:
        return "—"
    unit, v = m.get("unit", ""), m["value"]
    if unit == "×":
        return fmt_ratio(v)
    if unit == "share":
        return fmt_pct(v)
    if unit:
        return f"{fmt_num(v)} {unit}"
    return fmt_num(v)


def fmt_params(n: int | None) -> str:
    if not n:
        return "—"
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if n >= size:
            return f"{n / size:.1f} {suffix}"
    return str(n)


def short_digest(d: str | None, keep: int = 12) -> str:
    if not d:
        return "—"
    return d if len(d) <= keep + 1 else d[:keep] + "…"


def dotted(name: Any) -> Markup:
    """A dotted metric name that may wrap after each dot (long names in narrow cells)."""
    return Markup(".<wbr>").join(str(name).split("."))


def css_string(text: Any) -> Markup:
    """A quoted CSS string (for @page margin boxes) that nothing can break out of."""
    out = []
    for ch in str(text):
        if ch in '"\\<>&' or ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\{ord(ch):x} ")
        else:
            out.append(ch)
    return Markup('"' + "".join(out) + '"')


FILTERS = {"num": fmt_num, "ratio": fmt_ratio, "pct": fmt_pct, "metric": fmt_metric,
           "params": fmt_params, "short": short_digest, "css_string": css_string,
           "dotted": dotted,
           "token": charts.token_label}
