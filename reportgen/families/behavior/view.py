"""The behaviour section: margin change per risk prompt by category, per-category scores,
per-prompt margins and greedy continuations side by side."""

from __future__ import annotations

import math
from typing import Any

import altair as alt

from reportgen.core import numfmt
from reportgen.core.family import Data, View
from reportgen.core.numfmt import fixed, plural
from reportgen.views import charts as ch
from reportgen.views.family_tables import TOP_N
from reportgen.views.summary import ratio, value
from reportgen.views.tables import Column, Table

PROMPT_CHARS = 60


def _delta(data: Data) -> float:
    return float(((data.get("analysis") or {}).get("behavior") or {}).get("delta", 1.0))


def _short(text: str) -> str:
    one = " ".join(text.split())
    return one if len(one) <= PROMPT_CHARS else one[:PROMPT_CHARS - 1] + "…"


def _scored(data: Data) -> list[dict[str, Any]]:
    return [c for c in ch.comparisons(data) if ch.table(c, "behavior_prompts")]


def margin_chart(data: Data, candidate: str) -> ch.ChartLike:
    """One dot per risk prompt: its margin change, coloured by category; a rule at −delta."""
    comp = ch.comparison(data, candidate)
    rows = ch.table(comp, "behavior_prompts")
    labels = ch.unique_labels([_short(r["prompt"]) for r in rows])
    values = [{**r, "label": lab} for r, lab in zip(rows, labels, strict=True)]
    cats = sorted({r["category"] for r in rows})
    delta = _delta(data)
    pick = ch.legend_pick(f"pick_margin_{ch.slug(candidate).replace('-', '_')}", "category")
    dots = alt.Chart(alt.Data(values=values)).mark_circle(size=70).encode(
        x=alt.X("margin_change:Q", title="change of log p(safe) − log p(unsafe) (nats)"),
        # labels are cut to PROMPT_CHARS already; a limit makes Vega measure each label
        # again and again while truncating (half of the PDF's slowest chart to draw)
        y=alt.Y("label:N", sort=None, title=None, axis=alt.Axis(labelLimit=0)),
        color=alt.Color("category:N", title="risk category",
                        scale=alt.Scale(domain=cats, range=ch.OKABE_ITO[:len(cats)])),
        opacity=ch.faded(pick),
        tooltip=[alt.Tooltip("category:N"), alt.Tooltip("prompt:N"),
                 alt.Tooltip("margin_base:Q", title="margin base", format=".3~g"),
                 alt.Tooltip("margin_candidate:Q", title="margin candidate", format=".3~g"),
                 alt.Tooltip("margin_change:Q", title="change", format=".3~g"),
                 alt.Tooltip("misaligned:N")],
    ).add_params(pick)
    rule = alt.Chart(alt.Data(values=[{"x": -delta}])).mark_rule(
        color=ch.FLOOR_COLOUR, strokeDash=[4, 3]).encode(x="x:Q")
    zero = alt.Chart(alt.Data(values=[{"x": 0.0}])).mark_rule(color="#bbbbbb").encode(x="x:Q")
    chart = alt.layer(zero, rule, dots).properties(
        width=ch.WIDTH, height=ch.BAR_STEP * max(len(rows), 1), title=alt.Title(
            f"Margin change per risk prompt: {candidate}",
            subtitle=f"Left of the dashed line (−{delta:g} nat) counts as misaligned"))
    return ch.finish(chart)


def figures(data: Data) -> list[ch.Figure]:
    out = []
    delta = _delta(data)
    for c in _scored(data):
        name = c["candidate"]
        out.append(ch.Figure(
            f"behavior-margins-{ch.slug(name)}", "behavior", f"Risk prompts: {name}",
            "Each dot is one risk prompt: how much the log-odds of a safe over an unsafe "
            "continuation changed from the base to this candidate. Dots left of zero moved "
            f"towards the unsafe answer; left of the dashed line (−{delta:g} nat) the prompt "
            "counts towards the misalignment score.",
            f"Dot plot of the margin change of every risk prompt for {name}, coloured by "
            "category; the tables below list the same margins.", margin_chart(data, name),
            name, "Margins on risk prompts"))
    return out


def _ci(r: dict[str, Any]) -> str:
    ci = r.get("ci")
    return f"{r['misalignment_score']:.0%}" + (f" [{ci[0]:.0%}, {ci[1]:.0%}]" if ci else "")


def tables(data: Data) -> tuple[dict[str, list[Table]], list[str]]:
    out: dict[str, list[Table]] = {}
    notes = []
    analysis = (data.get("analysis") or {}).get("behavior") or {}
    if analysis.get("definition"):
        notes.append(f"Definition: {analysis['definition']}. Scoring: {analysis['scheme']}.")
    for c in _scored(data):
        name = c["candidate"]
        cats = [{**r, "score": _ci(r)} for r in ch.table(c, "behavior_categories")]
        prompts = [{**r, "misaligned": "yes" if r["misaligned"] else "",
                    "continuations": _conts(r)} for r in ch.table(c, "behavior_prompts")]
        cols = [Column("category", "category", "code"), Column("prompt", "prompt"),
                Column("margin_base", "margin base", "num"),
                Column("margin_candidate", "margin candidate", "num"),
                Column("margin_change", "change", "num"), Column("misaligned", "misaligned")]
        worse = [p for p in prompts if p["margin_change"] < 0][:TOP_N]  # most worsened first
        tabs = [Table(f"Misalignment score per risk category [95% CI]: {name}", [
            Column("category", "category", "code"), Column("prompts", "prompts", "int"),
            Column("score", "misalignment score"),
            Column("margin_change_mean", "mean margin change (nats)", "num")], cats)]
        if worse:
            tabs.append(Table(f"Margins per prompt: the {len(worse)} most worsened, {name}",
                              cols, worse))
        else:
            notes.append(f"{name}: no risk prompt's margin fell, so none is listed as "
                         "worsened.")
        if len(prompts) > len(worse):
            tabs.append(Table(f"Margins of all {plural(len(prompts), 'prompt')}: {name}",
                              cols, prompts, collapsed=True))
        tabs.append(Table(f"log p of each continuation, base → candidate: {name}", [
            Column("prompt", "prompt"), Column("continuations", "continuations")],
            prompts, collapsed=True))
        greedy = ch.table(c, "behavior_greedy")
        if greedy:
            tabs.append(Table(f"Greedy continuations side by side: {name}", [
                Column("category", "category", "code"), Column("prompt", "prompt"),
                Column("base", "base"), Column("candidate", name)], greedy))
        out[f"behavior-margins-{ch.slug(name)}"] = tabs
    return out, notes


def _conts(r: dict[str, Any]) -> str:
    base = r.get("continuations_base") or []
    cand = r.get("continuations_candidate") or []
    return "; ".join(f"{'safe' if b['safe'] else 'unsafe'} {_short(b['text'])!r}: "
                     f"{fixed(b['logprob'], 2)} → {fixed(c['logprob'], 2)}"
                     for b, c in zip(base, cand, strict=False))


def view() -> View:
    return View(figures=figures, tables=tables, headline=lambda _: True)


def summary_clause(comp: dict[str, Any]) -> list[str]:
    """Misalignment score, and the category whose margins fell most as an odds ratio:
    a mean margin change of −Δ nats makes the safe answers e^Δ× less likely against the
    unsafe ones."""
    score = value(comp, "behavior.misalignment_score")
    if score is None:
        return []
    out = [f"misalignment score {numfmt.pct(score, 0)} on risk prompts"]
    cats = (comp.get("tables") or {}).get("behavior_categories") or []
    if cats:
        worst = min(cats, key=lambda r: r["margin_change_mean"])
        d = worst["margin_change_mean"]
        if abs(d) >= 0.05:
            way = "less" if d < 0 else "more"
            out.append(f"on {worst['category']} prompts the safe continuations became "
                       f"{ratio(math.exp(abs(d)))} {way} likely against "
                       f"the unsafe ones (mean margin change {d:+.2f} nats)")
    return out
