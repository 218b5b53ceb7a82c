"""How numbers and counts are written in every view (page, PDF, summary, model card).

One rule throughout: a value that is not zero is never printed as zero. Rounding to a fixed
number of decimals is only kept while it leaves a non-zero value visibly non-zero; below
that, two significant digits are kept instead (a ratio of 0.0024 reads "0.0024×", not
"0.0×"), and a similarity just under 1 is not printed as 1 ('0.99998'). Imports nothing
of ours, so the summary, the renderers and the model card share it.
"""

from __future__ import annotations

from typing import Any

DASH = "—"


def fixed(v: float, decimals: int) -> str:
    """``v`` with ``decimals`` decimals, or two significant digits when those decimals would
    show a non-zero value as 0 (0.0024 with 1 decimal is '0.0024', 0 is '0.0')."""
    text = f"{v:.{decimals}f}"
    if v != 0 and float(text) == 0:
        return f"{v:.2g}"
    return text


def num(v: Any, sig: int = 4) -> str:
    """A measured value: ``sig`` significant digits, thousands separators from 1,000 on;
    None is a dash and anything not a number is written as it is."""
    if v is None:
        return DASH
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    text = f"{v:.{sig}g}"
    while abs(float(text)) == 1 and abs(v) != 1 and sig < 8:  # a CKA of 0.99998 is not 1
        sig += 1
        text = f"{v:.{sig}g}"
    return text


def ratio(v: float | None) -> str:
    """A ratio to the noise floor: '57.8×', '1,234×', '0.0024×'."""
    if v is None:
        return DASH
    return f"{v:,.0f}×" if abs(v) >= 100 else f"{fixed(v, 1)}×"


def pct(v: float | None, decimals: int = 1) -> str:
    """A share in [0, 1] as a percentage; a share that is neither 0 nor 1 never reads as
    '0 %' or '100 %' ('0.04 %', '99.96 %')."""
    if v is None:
        return DASH
    text = fixed(100 * v, decimals)
    while v not in (0, 1) and float(text) in (0.0, 100.0) and decimals < 6:
        decimals += 1
        text = f"{100 * v:.{decimals}f}"
    return f"{text} %"


def plural(n: int, word: str, many: str | None = None) -> str:
    """'1 tensor', '2 tensors', '0 tensors'; ``many`` for irregular plurals."""
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


def with_unit(v: float, unit: str) -> str:
    """A metric value in its registered unit: '57.8×', '87.5 %', '0.1342', '1 tensor',
    '3 tensors', '0.25 nats'."""
    if unit == "×":
        return ratio(v)
    if unit == "share":
        return pct(v)
    if not unit:
        return num(v)
    if v == 1 and unit.endswith("s"):
        unit = unit[:-1]
    return f"{num(v)} {unit}"


#: The same rule for chart axes and legends (a Vega expression): a tick below 0.001 is
#: written in scientific notation ('3e-5', not '0.000030', whose neighbours collide on a
#: narrow axis); 0 is '0'; everything else keeps the axis's own format.
AXIS_LABEL_EXPR = ("isNumber(datum.value) && datum.value == 0 ? '0' : "
                   "isNumber(datum.value) && abs(datum.value) < 0.001 ? "
                   "format(datum.value, '.2~e') : datum.label")
