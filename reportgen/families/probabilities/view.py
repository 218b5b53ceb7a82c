"""The probabilities section: KL histogram, entropy before vs after, tokens gained and lost,
the most affected positions in context; every chart followed by the table behind it."""

from __future__ import annotations

from typing import Any

import altair as alt

from reportgen.core import numfmt
from reportgen.core.family import Data, View
from reportgen.core.numfmt import fixed
from reportgen.core.tokentext import token_label
from reportgen.views import charts as ch
from reportgen.views.summary import num3, value
from reportgen.views.tables import Column, Table

GAINED, LOST = "#009E73", "#D55E00"  # Okabe-Ito green / vermillion
TOP_TOKENS = 12


def _rows(comp: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return ch.table(comp, f"probabilities_{name}")


def _scored(data: Data) -> list[dict[str, Any]]:
    return [c for c in ch.comparisons(data) if _rows(c, "probe_sets")]


def _bin_label(r: dict[str, Any]) -> str:
    return f"≥ {r['lo']:g}" if r["hi"] is None else f"{r['lo']:g}–{r['hi']:g}"


def kl_histogram_chart(data: Data) -> ch.ChartLike:
    """Share of positions per KL bin, bars grouped by compared model (probe set 'all')."""
    rows = [{**r, "bin": _bin_label(r), "candidate": c["candidate"]}
            for c in _scored(data) for r in _rows(c, "kl_histogram") if r["probe_set"] == "all"]
    order = list(dict.fromkeys(r["bin"] for r in rows))
    domain, colours = ch.candidate_colours(data)
    pick = ch.legend_pick("pick_kl", "candidate")
    chart = alt.Chart(alt.Data(values=rows)).mark_bar().encode(
        x=alt.X("bin:N", sort=order, title="KL(base‖candidate) per position (nats)",
                axis=alt.Axis(labelAngle=0)),
        xOffset=alt.XOffset("candidate:N", sort=domain),
        y=alt.Y("share:Q", title="share of positions", axis=alt.Axis(format="%")),
        color=alt.Color("candidate:N", scale=alt.Scale(domain=domain, range=colours)),
        opacity=ch.faded(pick),
        tooltip=[alt.Tooltip("candidate:N"), alt.Tooltip("bin:N", title="KL bin"),
                 alt.Tooltip("count:Q", title="positions"),
                 alt.Tooltip("share:Q", format=".1%")],
    ).add_params(pick).properties(
        width=ch.WIDTH, height=220,
        title=alt.Title("How far each position's next-token distribution moved",
                        subtitle="KL divergence from the base, log-spaced bins"))
    return ch.finish(chart)


def entropy_chart(data: Data, candidate: str) -> ch.ChartLike:
    """Positions per entropy bin, the base in grey and the candidate in its colour."""
    comp = ch.comparison(data, candidate)
    domain, colours = ch.candidate_colours(data)
    colour = colours[domain.index(candidate)]
    rows = [{"from": r["lo"], "to": r["hi"], "model": who, "positions": r[key]}
            for r in _rows(comp, "entropy") if r["probe_set"] == "all"
            for who, key in (("base", "base"), (candidate, "candidate"))]
    chart = alt.Chart(alt.Data(values=rows)).mark_bar(opacity=0.6, binSpacing=0).encode(
        x=alt.X("from:Q", title="entropy of the predicted distribution (nats)"), x2="to:Q",
        y=alt.Y("positions:Q", title="positions", stack=None),
        color=alt.Color("model:N", title="model", scale=alt.Scale(
            domain=["base", candidate], range=[ch.FLOOR_COLOUR, colour])),
        tooltip=[alt.Tooltip("model:N"), alt.Tooltip("from:Q", format=".3~g"),
                 alt.Tooltip("to:Q", format=".3~g"), alt.Tooltip("positions:Q")],
    ).properties(width=ch.WIDTH, height=200, title=alt.Title(
        f"Entropy before and after: {candidate}",
        subtitle="Mass moving left = the fine-tune became more confident"))
    return ch.finish(chart)


def _gained(comp: dict[str, Any]) -> list[dict[str, Any]]:
    """Tokens whose net probability mass rose (a top-N of unchanged tokens says nothing)."""
    return [r for r in _rows(comp, "tokens_gained") if r["net_mass"] > 0]


def _lost(comp: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in _rows(comp, "tokens_lost") if r["net_mass"] < 0]


def tokens_chart(data: Data, candidate: str) -> ch.ChartLike:
    """Net probability mass gained (right) or lost (left) per token, summed over positions."""
    comp = ch.comparison(data, candidate)
    rows = [{**r, "direction": "gained"} for r in _gained(comp)[:TOP_TOKENS]]
    rows += [{**r, "direction": "lost"} for r in _lost(comp)[:TOP_TOKENS]]
    labels = ch.unique_labels([r["token"] for r in rows])
    rows = [{**r, "label": lab} for r, lab in zip(rows, labels, strict=True)]
    chart = alt.Chart(alt.Data(values=rows)).mark_bar().encode(
        x=alt.X("net_mass:Q", title="net probability mass, summed over positions"),
        y=alt.Y("label:N", sort=alt.EncodingSortField("net_mass", order="descending"),
                title=None, axis=alt.Axis(labelLimit=160)),
        color=alt.Color("direction:N", title=None,
                        scale=alt.Scale(domain=["gained", "lost"], range=[GAINED, LOST])),
        tooltip=[alt.Tooltip("token:N"), alt.Tooltip("net_mass:Q", format=".4~g"),
                 alt.Tooltip("mass_gained:Q", format=".4~g"),
                 alt.Tooltip("mass_lost:Q", format=".4~g"),
                 alt.Tooltip("mean_logit_shift:Q", title="mean logit shift", format=".3~g")],
    ).properties(width=ch.WIDTH, height=ch.BAR_STEP * max(len(rows), 1), title=alt.Title(
        f"Tokens that gained and lost probability: {candidate}",
        subtitle=f"Up to {TOP_TOKENS} each way, by net mass over every scored position"))
    return ch.finish(chart)


def figures(data: Data) -> list[ch.Figure]:
    comps = _scored(data)
    if not comps:
        return []
    out = [ch.Figure(
        "prob-kl-histogram", "probabilities", "KL divergence per position",
        "Each bar is the share of scored positions whose next-token distribution moved by a "
        "KL divergence in that bin. Mass in the right-hand bins means the candidate predicts "
        "differently from the base on those probe texts.",
        "Grouped bar chart of the share of positions per KL bin for each compared model; the "
        "table below has the same counts.", kl_histogram_chart(data),
        heading="Distribution shift")]
    for c in comps:
        name = c["candidate"]
        out.append(ch.Figure(
            f"prob-entropy-{ch.slug(name)}", "probabilities", f"Entropy before and after: {name}",
            "Grey bars count the base model's positions per entropy bin, coloured bars the "
            "candidate's. A candidate whose bars sit further left is more confident "
            "(entropy compression).",
            f"Overlaid histograms of predictive entropy for the base and {name}; the table "
            "below lists the bins.", entropy_chart(data, name), name, "Entropy before and after"))
        if not (_gained(c) or _lost(c)):
            continue  # the tables' note says that no token's probability moved
        out.append(ch.Figure(
            f"prob-tokens-{ch.slug(name)}", "probabilities", f"Probability mass moved: {name}",
            "Green bars: tokens the candidate predicts more often than the base, summed over "
            "every scored position; vermillion: tokens it predicts less often.",
            f"Diverging bar chart of the tokens that gained and lost most probability mass in "
            f"{name}; the table below lists them with their logit shifts.",
            tokens_chart(data, name), name, "Tokens that gained and lost probability"))
    return out


def _ci_text(r: dict[str, Any], key: str) -> str:
    ci = r.get(f"{key}_ci")
    return f"{r[key]:.4g} [{ci[0]:.3g}, {ci[1]:.3g}]" if ci else f"{r[key]:.4g}"


def _top5(items: list[dict[str, Any]]) -> str:
    return ", ".join(f"{token_label(i['token'])} {fixed(i['p'], 2)}" for i in items)


def tables(data: Data) -> tuple[dict[str, list[Table]], list[str]]:
    out: dict[str, list[Table]] = {}
    comps = _scored(data)
    sets = [Column("candidate", "candidate"), Column("probe_set", "probe set", "code"),
            Column("positions", "positions", "int"),
            Column("kl_bc", "KL(base‖cand) [95% CI]"), Column("js", "JS [95% CI]"),
            Column("entropy", "entropy base → cand."), Column("top1", "top-1 agree", "pct"),
            Column("logit_shift", "logit shift", "num")]
    rows = [{"candidate": c["candidate"], **r, "kl_bc": _ci_text(r, "kl_bc"),
             "js": _ci_text(r, "js"),
             "entropy": f"{r['entropy_base']:.3g} → {r['entropy_candidate']:.3g}"}
            for c in comps for r in _rows(c, "probe_sets")]
    hist = [{"candidate": c["candidate"], "probe_set": r["probe_set"], "bin": _bin_label(r),
             "count": r["count"], "share": r["share"]}
            for c in comps for r in _rows(c, "kl_histogram")]
    out["prob-kl-histogram"] = [
        Table("Per probe set: means over positions with bootstrap intervals", sets, rows),
        Table("KL histogram counts", [Column("candidate", "candidate"),
                                      Column("probe_set", "probe set", "code"),
                                      Column("bin", "KL bin"), Column("count", "positions", "int"),
                                      Column("share", "share", "pct")], hist, collapsed=True)]
    for c in comps:
        name, s = c["candidate"], ch.slug(c["candidate"])
        out[f"prob-entropy-{s}"] = [Table(f"Entropy bins: {name}", [
            Column("probe_set", "probe set", "code"), Column("lo", "from", "num"),
            Column("hi", "to", "num"), Column("base", "base positions", "int"),
            Column("candidate", "candidate positions", "int")], _rows(c, "entropy"),
            collapsed=True)]
        tok_cols = [Column("token", "token", "token"), Column("net_mass", "net mass", "num"),
                    Column("mass_gained", "gained", "num"), Column("mass_lost", "lost", "num"),
                    Column("mean_logit_shift", "mean logit shift (nats)", "num")]
        out[f"prob-tokens-{s}"] = [t for t in (
            Table(f"Tokens that gained most probability: {name}", tok_cols, _gained(c)[:20]),
            Table(f"Tokens that lost most probability: {name}", tok_cols, _lost(c)[:20]),
            _positions_table(c, _masked(data))) if t.rows]
    notes = [f"{c['candidate']}: no token gained or lost probability mass at any scored "
             "position, so none is listed." for c in comps if not (_gained(c) or _lost(c))]
    return out, notes


def _masked(data: Data) -> bool:
    scheme = ((data.get("analysis") or {}).get("probabilities") or {}).get("scheme", "")
    return str(scheme).startswith("masked")


def _positions_table(comp: dict[str, Any], masked: bool) -> Table:
    rows = [{"probe_set": r["probe_set"], "kl": r["kl"],
             "context": f"…{r['before']}⟦{token_label(r['token'])}⟧{r['after']}…",
             "base": _top5(r["base_top5"]), "candidate": _top5(r["candidate_top5"])}
            for r in _rows(comp, "top_positions") if r["kl"] > 0]
    what = ("the masked token; the models predict it" if masked
            else "the position; the models predict the token that follows it")
    return Table(f"Most affected positions in context (⟦token⟧ = {what}): "
                 f"{comp['candidate']}", [
                     Column("probe_set", "probe set", "code"), Column("kl", "KL", "num"),
                     Column("context", "text"), Column("base", "base top-5 (p)"),
                     Column("candidate", "candidate top-5 (p)")], rows)


def view() -> View:
    return View(figures=figures, tables=tables, headline=lambda _: True)


def summary_clause(comp: dict[str, Any]) -> str:
    """'next-token KL 0.012 nats, top-1 agreement 95%, 0.31 nats less entropy'."""
    kl = value(comp, "probabilities.kl_base_candidate.mean")
    if kl is None:
        return ""
    text = f"next-token KL(base‖candidate) {num3(kl)} nats"
    top1 = value(comp, "probabilities.top1_agreement")
    if top1 is not None:
        text += f", top-1 agreement {numfmt.pct(top1, 0)}"
    comp_h = value(comp, "probabilities.entropy_compression")
    if comp_h is not None and abs(comp_h) >= 0.01:  # smaller is noise to a reader
        text += (f", {num3(abs(comp_h))} nats {'less' if comp_h > 0 else 'more'} entropy "
                 f"({'more' if comp_h > 0 else 'less'} confident)")
    return text
