"""The concept explorer: type a concept, see how each candidate moved it.

The page embeds the per-concept numbers the certificate already holds (drift per layer, rank,
noise-floor ratio, neighbourhood overlap, neighbour lists where recorded) as one
``<script type="application/json">`` block that the browser never executes, and a small
script, allowed by its hash in the page's CSP, reads it and writes the answer with
``textContent`` and DOM calls only. Everything comes from the certificate dict, so the
explorer works for any audit with concept tables and simply is not shown without them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reportgen.core.numfmt import plural
from reportgen.families.concepts.view_explorer_script import SCRIPT
from reportgen.views import charts

Data = dict[str, Any]


INTRO = ("Type one of the {count} of this audit to see its drift in each candidate (rank, "
         "noise-floor ratio, neighbourhood overlap), its drift layer by layer{steps} and its "
         "nearest concepts before and after. The numbers are the ones in the tables above, "
         "rounded to four digits; certificate.json has every digit.")

SERIES_INTRO = ", its drift at each training step of each checkpoint series"


@dataclass(frozen=True)
class Explorer:
    """What the page's explorer slot needs: the embedded data, the term list, an example
    term, and its words (title, intro, the input's label, what to read without script)."""

    data: dict[str, Any]
    terms: list[str]
    example: str
    title: str = "Concept explorer"
    label: str = "Concept"
    intro: str = ""
    nojs: str = ("The explorer needs JavaScript; the concept tables above hold the same "
                 "numbers.")

    @property
    def script(self) -> str:
        """The page script that reads the embedded data (allowed by its hash in the CSP)."""
        return SCRIPT


def explorer(data: Data) -> Explorer | None:
    """The explorer's data, or None when no comparison has a concept table."""
    comps = [c for c in charts.comparisons(data) if charts.table(c, "concepts")]
    if not comps:
        return None
    names, colours = charts.candidate_colours(data)
    colour = dict(zip(names, colours, strict=True))
    concepts: dict[str, dict[str, Any]] = {}
    for i, c in enumerate(comps):
        by_layer = {r["term"]: r.get("by_layer") for r in charts.table(c, "concept_layers")}
        nbr = {r["term"]: r for r in charts.table(c, "neighbors_concepts")}
        lists = {r["term"]: r for r in charts.table(c, "rewired_concepts")}
        for r in charts.table(c, "concepts"):
            entry = concepts.setdefault(r["term"], {"term": r["term"],
                                                    "category": r.get("category"),
                                                    "base": None, "per": {}})
            row = {"rank": r.get("rank"), "drift": _round(r.get("cosine_distance")),
                   "pooled": _round(r.get("cosine_distance_mean_pooled")),
                   "floor": _round(r.get("noise_floor_ratio")),
                   "layers": [_round(v) for v in by_layer.get(r["term"]) or []]}
            if r["term"] in nbr:
                row["jaccard"] = _round(nbr[r["term"]].get("jaccard"))
                row["nrank"] = nbr[r["term"]].get("rank")
            if r["term"] in lists:
                rl = lists[r["term"]]
                row["neighbours"] = _neighbours(rl.get("candidate_neighbours"))
                entry["base"] = entry["base"] or _neighbours(rl.get("base_neighbours"))
            entry["per"][str(i)] = row
    layers = [r["layer"] for r in charts.table(comps[0], "layers")]
    series = data.get("series") or []  # a page without a series stays as it was
    paths = [_trajectories(data, block, list(concepts)) for block in series]
    if series:
        for term, entry in concepts.items():
            entry["series"] = [p[term] for p in paths]
    payload = {
        "candidates": [{"name": c["candidate"], "role": c.get("role", "candidate"),
                        "colour": colour.get(c["candidate"], charts.FLOOR_COLOUR),
                        "count": len(charts.table(c, "concepts"))} for c in comps],
        "layers": layers,
        "concepts": sorted(concepts.values(), key=lambda e: str(e["term"]).casefold()),
    }
    if series:
        payload["series"] = [{"name": b.get("name"),
                              "steps": [s.get("step") for s in b.get("steps") or []],
                              "colour": charts.CANDIDATE_COLOURS[i % len(
                                  charts.CANDIDATE_COLOURS)]} for i, b in enumerate(series)]
    top = min(charts.table(comps[0], "concepts"), key=lambda r: r.get("rank") or 0)
    terms = [e["term"] for e in payload["concepts"]]
    return Explorer(payload, terms, top["term"],
                    intro=INTRO.format(count=plural(len(terms), "concept"),
                                       steps=SERIES_INTRO if series else ""))


def _trajectories(data: Data, block: dict[str, Any], terms: list[str]) -> dict[str, list[Any]]:
    """Each concept's drift at each step of a series: the series block's numbers where it
    lists the concept (its most moved), else each step's own concept row (the number the
    block would copy); None where a step has no such row."""
    by_cand = {c["candidate"]: c for c in data.get("comparisons") or []}  # every step
    per_step = [{r.get("term"): r.get("cosine_distance")
                 for r in charts.table(by_cand.get(s.get("candidate"), {}), "concepts")}
                for s in block.get("steps") or []]
    listed = {c.get("term"): c.get("values") or [] for c in block.get("concepts") or []}
    return {t: [_round(v) for v in listed[t]] if t in listed else
            [_round(d.get(t)) for d in per_step] for t in terms}


def _round(v: Any) -> Any:
    """Four significant digits keep the page small; the JSON certificate keeps every digit."""
    return float(f"{v:.4g}") if isinstance(v, float) else v


def _neighbours(ns: list[dict[str, Any]] | None) -> list[list[Any]] | None:
    if ns is None:
        return None
    return [[n["label"], _round(n.get("similarity"))] for n in ns]
