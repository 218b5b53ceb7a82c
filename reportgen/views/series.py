"""A series on the page: headline metric × step with the onsets, the most moved concepts and
SAE features over the steps, and the summary's onset lines; from the certificate's
``series`` block alone (no family is named here: each family's view says what is headline).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reportgen.core import numfmt
from reportgen.core.names import lookup
from reportgen.families import families
from reportgen.spec.conditions import parse_condition
from reportgen.views.charts import categories, comparisons
from reportgen.views.tables import Column, Table
from reportgen.views.trajectory import concept_figure, trajectory_figures

MAX_SUMMARY_ONSETS = 4


@dataclass
class SeriesView:
    """One series' part of the page."""

    name: str
    intro: str
    tables: list[Table] = field(default_factory=list)
    figures: list[Any] = field(default_factory=list)  # views.charts.Figure, after the tables


def headline(name: str) -> bool:
    """Whether ``name`` is in its family's headline table (the family's rule; else every
    metric that is not one of a pattern's many, such as a per-layer value)."""
    fam = next((f for f in families() if f.name == name.split(".", 1)[0]), None)
    view = fam.view() if fam is not None and fam.view is not None else None
    if view is not None and view.headline is not None:
        return bool(view.headline(name))
    info = lookup(name)
    return info is None or "{" not in info.name


def _steps(block: dict[str, Any]) -> list[int]:
    return [s.get("step") for s in block.get("steps") or []]


def _step_columns(steps: list[int]) -> list[Column]:
    return [Column(f"s{i}", f"step {s}", "num") for i, s in enumerate(steps)]


def _by_step(values: list[Any]) -> dict[str, Any]:
    return {f"s{i}": v for i, v in enumerate(values or [])}


def _limits(m: dict[str, Any]) -> str:
    """'warn > 0.001 or fail > 0.01': each distinct threshold once."""
    texts = [f"{t.get('kind')} {t.get('condition')}" for t in m.get("thresholds") or []]
    return " or ".join(dict.fromkeys(texts))


def _holds(threshold: dict[str, Any], value: Any) -> bool:
    try:
        return isinstance(value, (int, float)) and parse_condition(
            str(threshold.get("condition"))).holds(float(value))
    except ValueError:  # an untrusted certificate's condition that does not parse
        return False


def _onset_text(onset: dict[str, Any] | None) -> str:
    if onset and "unknown_from" in onset:
        return f"unknown (no value at step {onset.get('unknown_from')})"
    return "—" if not onset else f"step {onset.get('step')}"


def metric_table(block: dict[str, Any], checked_only: bool = False) -> Table:
    """Headline metric × step with thresholds and onsets; ``checked_only`` (the PDF): only
    the metrics a check puts a threshold on, the caption saying where the rest are."""
    steps = _steps(block)
    floor = block.get("floor") or {}
    multiple = floor.get("multiple")
    rows = []
    names = [n for n in (block.get("metrics") or {}) if headline(n)]
    shown = [n for n in names if block["metrics"][n].get("thresholds")] if checked_only else names
    for name in shown:
        m = block["metrics"][name]
        onset = m.get("onset") or {}
        limits = _limits(m)
        rows.append({"metric": name, **_by_step(m.get("values") or []),
                     "thresholds": limits if m.get("thresholds") else "—",
                     "threshold_onset": _onset_text(onset.get("threshold")),
                     "floor_onset": _onset_text(onset.get("floor"))})
    floor_label = f"onset ({numfmt.num(multiple, 3)}× floor)" if multiple else "onset (floor)"
    rest = len(names) - len(shown)
    more = (f" (the {numfmt.plural(len(shown), 'checked metric')}; the other {rest} headline "
            "metrics at each step are in the HTML page and the JSON)" if rest else "")
    return Table(f"{block.get('name')}: headline metrics at each step{more}",
                 [Column("metric", "metric", "code"), *_step_columns(steps),
                  Column("thresholds", "thresholds"),
                  Column("threshold_onset", "onset (threshold)"),
                  Column("floor_onset", floor_label)], rows)


def concept_table(block: dict[str, Any]) -> Table:
    rows = [{"term": c.get("term"), "category": c.get("category"), **_by_step(c.get("values"))}
            for c in block.get("concepts") or []]
    return Table(f"{block.get('name')}: cosine drift of the concepts that moved most by the "
                 "last step", [Column("term", "concept"), Column("category", "category"),
                               *_step_columns(_steps(block))], rows)


def feature_table(block: dict[str, Any]) -> Table:
    rows = [{"layer": f.get("layer"), "feature": f.get("feature"), "label": f.get("label"),
             **_by_step(f.get("values")),
             "first": "—" if f.get("first_step") is None else f"step {f.get('first_step')}"}
            for f in block.get("features") or []]
    return Table(f"{block.get('name')}: mean absolute change of the SAE features that moved "
                 "most by the last step (— : not among that step's most moved)",
                 [Column("layer", "layer", "int"), Column("feature", "feature", "int"),
                  Column("label", "label"), *_step_columns(_steps(block)),
                  Column("first", "first among the most moved")], rows)


def series_views(data: dict[str, Any], mode: str = "html") -> list[SeriesView]:
    """One view per series in the certificate (none for a certificate without series); the
    PDF's metric table holds the checked metrics (the page for reading, the HTML for
    exploring)."""
    out = []
    in_sections = {c.get("candidate") for c in comparisons(data)}
    for block in data.get("series") or []:
        steps = _steps(block)
        names = [str(s.get("candidate")) for s in block.get("steps") or []]
        where = ("its full sections are below" if names and names[-1] in in_sections else
                 "the family sections below compare the audit's other candidates")
        intro = (f"{numfmt.plural(len(steps), 'checkpoint')} of one run, each audited against "
                 f"the base as its own candidate ({', '.join(names)}); the last one is in the "
                 f"findings table, {where}; every step's comparison is in the JSON.")
        tables = [metric_table(block, checked_only=mode == "pdf")]
        if block.get("concepts") and mode != "pdf":  # the PDF draws them (small multiples)
            tables.append(concept_table(block))
        if block.get("features") and mode != "pdf":
            tables.append(feature_table(block))
        if mode == "pdf" and (block.get("concepts") or block.get("features")):
            intro += (" The tables of the most moved concepts and SAE features at each step "
                      "are in the HTML page and the JSON.")
        concept = concept_figure(block, categories(data))
        out.append(SeriesView(str(block.get("name")), intro, tables,
                              [concept] if concept else []))
    return out


def series_figures(data: dict[str, Any], mode: str = "html") -> list[Any]:
    """The trajectories after every series' tables: one chart per family, each series a
    line in it. The PDF draws the families a check thresholds (else the first two); the
    HTML every family."""
    blocks = list(data.get("series") or [])
    if not blocks:
        return []
    if mode != "pdf":
        return trajectory_figures(blocks, headline)
    checked = {n.split(".", 1)[0] for b in blocks for n, m in (b.get("metrics") or {}).items()
               if m.get("thresholds")}
    return trajectory_figures(
        blocks, headline, keep=lambda fams: [f for f in fams if f in checked] or fams[:2])


def series_lines(data: dict[str, Any]) -> list[str]:
    """The summary's line per series: where each thresholded metric first crossed."""
    out = []
    for block in data.get("series") or []:
        steps = _steps(block)
        span = f"{steps[0]}–{steps[-1]}" if steps else "no steps"
        parts = []
        for name, m in (block.get("metrics") or {}).items():
            if not m.get("thresholds"):
                continue
            onset = (m.get("onset") or {}).get("threshold")
            if not onset:
                parts.append(f"{name} never crosses {_limits(m)}")
                continue
            if "unknown_from" in onset:
                parts.append(f"{name} has no value at step {onset.get('unknown_from')}, so "
                             f"when it first crosses {_limits(m)} is unknown")
                continue
            crossed = [t for t in m["thresholds"] if _holds(t, onset.get("value"))]
            parts.append(f"{name} first crosses {_limits({'thresholds': crossed})} at step "
                         f"{onset.get('step')} ({numfmt.num(onset.get('value'), 3)})")
        if not parts:
            parts = ["no check puts a threshold on its metrics, so no onset is given"]
        more = len(parts) - MAX_SUMMARY_ONSETS
        text = "; ".join(parts[:MAX_SUMMARY_ONSETS]) + (f"; … and {more} more" if more > 0
                                                         else "")
        out.append(f"Series {block.get('name')} ({numfmt.plural(len(steps), 'step')}, "
                   f"{span}): {text}.")
    return out
