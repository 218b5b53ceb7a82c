"""The findings table that opens the page: one row per compared model, one column per family.

Each cell is the family's headline number (``Family.headline``: the family chooses it, the
page only lays it out), its ratio to the noise floor and the worst status of the checks on the
family's metrics for that candidate. It reads the certificate's JSON alone, so every number in
it is one the JSON holds (or, for a ``vs_floor`` headline, the quotient of two it holds).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reportgen.core.family import Family, Headline
from reportgen.core.records import STATUS_ORDER
from reportgen.families import families
from reportgen.views import charts

_WORST = tuple(reversed(STATUS_ORDER))


@dataclass(frozen=True)
class Cell:
    headline: Headline
    value: float | None
    unit: str
    error: str | None  # why the value is missing
    ratio: float | None  # to the noise floor
    #: (check id, status) of the checks on the family's metrics for this candidate
    checks: tuple[tuple[str, str], ...] = ()

    @property
    def status(self) -> str | None:
        """The worst status of the checks on this family and candidate (None: no check)."""
        found = {s for _, s in self.checks}
        return next((s for s in _WORST if s in found), None)


@dataclass(frozen=True)
class Row:
    candidate: str
    role: str
    cells: dict[str, Cell | None] = field(default_factory=dict)  # by family name


@dataclass(frozen=True)
class Findings:
    columns: list[tuple[str, str]]  # (family name, title), page order
    rows: list[Row]
    floor: str | None  # the noise floor's name, when the audit had one


def findings(data: dict[str, Any]) -> Findings:
    """The table for ``data``: candidates first, the noise floor last; a family gets a column
    when some comparison has its headline number."""
    comps = charts.latest(data)
    floor = next((c for c in comps if c.get("role") == "noise_floor"), None)
    ordered = [c for c in comps if c is not floor] + ([floor] if floor else [])
    checks = list(data.get("checks") or [])
    judged = _judged_by(data)
    rows = [Row(str(c.get("candidate")), str(c.get("role") or "candidate"),
                {f.name: _cell(f, c, floor, [k for k in checks
                                             if c.get("candidate") in judged(k)])
                 for f in families()}) for c in ordered]
    cols = [(f.name, f.title) for f in families() if any(r.cells.get(f.name) for r in rows)]
    return Findings(cols, rows, str(floor.get("candidate")) if floor else None)


def _judged_by(data: dict[str, Any]) -> Any:
    """check -> the compared models it judges: its candidate, or every step of the series it
    names (a check on a series judges the whole run)."""
    steps = {str(s.get("name")): {str(st.get("candidate")) for st in s.get("steps") or []}
             for s in data.get("series") or []}

    def judged(check: dict[str, Any]) -> set[str]:
        name = str(check.get("candidate"))
        return steps.get(name, {name})

    return judged


def _cell(fam: Family, comp: dict[str, Any], floor: dict[str, Any] | None,
          checks: list[dict[str, Any]]) -> Cell | None:
    """``checks``: those judging this comparison's model."""
    head = fam.headline(comp)
    if head is None:
        return None
    metric = (comp.get("metrics") or {}).get(head.metric) or {}
    value = metric.get("value")
    return Cell(head, value, str(metric.get("unit") or ""), metric.get("error"),
                None if comp is floor else _ratio(head, comp, floor, value),
                tuple((str(c.get("id")), str(c.get("status"))) for c in checks
                      if str(c.get("metric", "")).split(".", 1)[0] == fam.name))


def _ratio(head: Headline, comp: dict[str, Any], floor: dict[str, Any] | None,
           value: float | None) -> float | None:
    if head.ratio is not None:
        return ((comp.get("metrics") or {}).get(head.ratio) or {}).get("value")
    if not head.vs_floor or floor is None or value is None:
        return None
    below = ((floor.get("metrics") or {}).get(head.metric) or {}).get("value")
    return value / below if below else None  # a floor of zero gives no ratio, never ∞
