"""Check conditions as the spec writes them (``> 0.2``), parsed and evaluated."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
}
_COND = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class Condition:
    op: str
    threshold: float

    def holds(self, value: float) -> bool:
        return _OPS[self.op](value, self.threshold)

    def __str__(self) -> str:
        return f"{self.op} {self.threshold:g}"


def parse_condition(text: str) -> Condition:
    """Parse '> 0.2'; raises ValueError with what was expected."""
    m = _COND.match(str(text))
    if not m:
        raise ValueError(
            f"cannot parse condition {text!r}: expected an operator (>, >=, <, <=, ==, !=) "
            "and a number, e.g. '> 0.2'"
        )
    return Condition(m.group(1), float(m.group(2)))
