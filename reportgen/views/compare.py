"""Compare in one picture: a family's per-candidate charts become one chart of small multiples.

Where a family draws the same chart once per candidate (top concepts, token movers, weight
heatmaps, …), the page stacks them into one Vega-Lite ``vconcat`` whose quantitative and
ordinal scales (and colours) are shared, so a bar of the same length or a cell of the same
colour means the same number in every panel; nominal axes (a concept's name) stay each
panel's own. The tables behind the panels follow the picture as per-candidate details: folded
in the HTML, moved to the PDF's annex. Generic: no family is named here.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from reportgen.views.charts import Figure
from reportgen.views.tables import Table

_SHARED_TYPES = {"quantitative", "ordinal", "temporal"}
_CHANNELS = ("x", "y", "color", "shape", "strokeDash", "size", "opacity")


@dataclass(frozen=True)
class Comparative(Figure):
    """Several candidates' figures drawn as one (``members``, in page order)."""

    members: tuple[Figure, ...] = ()
    columns: int = 1  # panels side by side (the PDF's page is wider than it is tall per chart)

    def spec(self) -> dict[str, Any]:
        return small_multiples([m.spec() for m in self.members], self.columns)

    @property
    def hint(self) -> str:
        return ("Every panel shares its scales: equal lengths and colours mean equal "
                "values. " + self.members[0].hint)


def compare_sections(sections: list[Any], columns: int = 1) -> list[Figure]:
    """Each page section's (views.html.Section) per-candidate charts merged in place, with
    ``columns`` panels a row; the page's figures in order."""
    out: list[Figure] = []
    for s in sections:
        s.figures, s.tables = compare(s.figures, s.tables, columns)
        out += s.figures
    return out


def compare(figs: list[Figure], tables: dict[str, list[Table]] | None = None,
            columns: int = 1) -> tuple[list[Figure], dict[str, list[Table]]]:
    """Figures with per-candidate groups (same family and heading, two or more candidates)
    merged into one :class:`Comparative` at the first member's place; ``tables`` keyed by
    figure id, re-keyed so the merged figure holds its members' tables, folded."""
    groups: dict[tuple[str, str], list[Figure]] = {}
    for f in figs:
        if f.candidate is not None:
            groups.setdefault((f.family, f.heading or f.title), []).append(f)
    out: list[Figure] = []
    tables = dict(tables or {})
    done: set[tuple[str, str]] = set()
    for f in figs:
        key = (f.family, f.heading or f.title)
        members = groups.get(key, []) if f.candidate is not None else []
        if len(members) < 2:
            out.append(f)
            continue
        if key in done:
            continue
        done.add(key)
        merged = dataclasses.replace(_merge(members), columns=columns)
        out.append(merged)
        # a table already folded (every row of one whose top rows are shown) stays HTML-only
        detail = [t if t.collapsed else dataclasses.replace(t, collapsed=True, detail=True)
                  for m in members for t in tables.pop(m.id, [])]
        if detail:
            tables[merged.id] = detail
    return out, tables


def _merge(members: list[Figure]) -> Comparative:
    first = members[0]
    names = ", ".join(str(m.candidate) for m in members)
    title = first.heading or first.title
    return Comparative(
        id=f"{first.id}-compared", family=first.family, title=title,
        caption=(f"One panel per compared model ({names}), on shared scales. "
                 + first.caption),
        alt=(f"{len(members)} panels of the same chart, one per compared model ({names}), "
             "on shared scales; " + first.alt),
        chart=first.chart, candidate=None, heading=first.heading, members=tuple(members))


def small_multiples(specs: list[dict[str, Any]], columns: int = 1) -> dict[str, Any]:
    """The specs stacked top to bottom (``columns`` a row), one config, parameters renamed
    per panel (a name may appear once per page), shared scales where the panels' fields are
    not nominal."""
    panels, hoisted = [], []
    for i, spec in enumerate(specs):
        body = {k: v for k, v in spec.items() if k not in ("config", "$schema")}
        panel = _rename_params(body, _param_names(body), f"_{i}")
        # a parameter naming its views belongs at the top level (Vega-Lite's schema allows
        # ``views`` nowhere else); renamed per panel, each still selects in its own panel
        own = panel.pop("params", [])
        hoisted += [p for p in own if "views" in p]
        if rest := [p for p in own if "views" not in p]:
            panel["params"] = rest
        panels.append(panel)
    out: dict[str, Any] = {"$schema": specs[0].get("$schema"), "spacing": 28}
    if hoisted:
        out["params"] = hoisted
    if columns > 1:
        out |= {"concat": panels, "columns": columns}
    else:
        out["vconcat"] = panels
    if "config" in specs[0]:
        out["config"] = specs[0]["config"]
    out["resolve"] = {"scale": {ch: ("shared" if _shareable(panels, ch) else "independent")
                                for ch in _CHANNELS if _used(panels, ch)}}
    if out["$schema"] is None:
        del out["$schema"]
    return out


def _units(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Every single view in a spec (its layers, nested)."""
    if "layer" in spec:
        return [u for layer in spec["layer"] for u in _units(layer)]
    return [spec]


def _encodings(panels: list[dict[str, Any]], channel: str) -> list[dict[str, Any]]:
    """The panels' encodings of ``channel`` that read a field."""
    out = []
    for p in panels:
        for u in _units(p):
            enc = (u.get("encoding") or {}).get(channel)
            if isinstance(enc, dict) and "field" in enc:
                out.append(enc)
    return out


def _used(panels: list[dict[str, Any]], channel: str) -> bool:
    return bool(_encodings(panels, channel))


def _shareable(panels: list[dict[str, Any]], channel: str) -> bool:
    """Shared when the panels agree on any domain they fix (two different fixed domains, a
    map's variants 'base, planted' and 'base, control', stay each panel's own), and, on the
    axes, when the field is not nominal (each panel lists its own concepts)."""
    encs = _encodings(panels, channel)
    domains = {json.dumps((e.get("scale") or {}).get("domain"), sort_keys=True) for e in encs}
    if len(domains) > 1 and "null" not in domains or len(domains) > 2:
        return False
    if channel in ("x", "y"):
        return {str(e.get("type")) for e in encs} <= _SHARED_TYPES
    return True


def _param_names(spec: Any) -> set[str]:
    """Every parameter and view name a spec defines (Altair names views with parameters
    'view_<hash>': equal across panels, so Vega would draw every panel from one)."""
    found: set[str] = set()
    if isinstance(spec, dict):
        if isinstance(spec.get("name"), str):
            found.add(spec["name"])
        for k, v in spec.items():
            if k not in ("data", "datasets", "values"):
                found |= _param_names(v)
    elif isinstance(spec, list):
        for v in spec:
            found |= _param_names(v)
    return found


def _rename_params(spec: Any, names: set[str], suffix: str) -> Any:
    """A copy with every name in ``names`` renamed, where defined and where used."""
    if isinstance(spec, list):
        return [_rename_params(v, names, suffix) for v in spec]
    if not isinstance(spec, dict):
        return spec
    out = {}
    for k, v in spec.items():
        if k in ("data", "datasets", "values"):
            out[k] = v  # rows are data, never parameter names
        elif k in ("param", "name") and isinstance(v, str) and v in names:
            out[k] = v + suffix
        elif k == "views" and isinstance(v, list):
            out[k] = [x + suffix if x in names else x for x in v]
        else:
            out[k] = _rename_params(v, names, suffix)
    return out
