"""The token-embedding section: the top token movers, drift over the whole vocabulary, the
new tokens a grown tokenizer added."""

from __future__ import annotations

from typing import Any

from reportgen.core.family import View
from reportgen.core.numfmt import plural
from reportgen.core.tokentext import token_label
from reportgen.families.embeddings.view_charts import (
    moved_tokens,
    no_token_moved,
    shared_token_histogram,
    token_histogram_chart,
    token_movers_chart,
)
from reportgen.views import charts
from reportgen.views.charts import Figure, comparisons, slug
from reportgen.views.family_tables import TOP_N, top_and_all
from reportgen.views.summary import num3, ratio_text, value
from reportgen.views.tables import Column, Table


def token_tables(data: dict[str, Any]) -> tuple[dict[str, list[Table]], list[str]]:
    """Tables behind the token charts, and a note per candidate with new tokens."""
    cols = [Column("rank", "rank", "int"), Column("token", "token", "token"),
            Column("cosine_distance", "cosine distance", "num"),
            Column("base_id", "base id", "int"), Column("candidate_id", "candidate id", "int")]
    out: dict[str, list[Table]] = {}
    notes = []
    for c in charts.comparisons(data):
        rows = moved_tokens(c)
        name = c["candidate"]
        if rows:
            out[f"token-movers-{charts.slug(name)}"] = top_and_all(
                f"Top {plural(min(TOP_N, len(rows)), 'token mover')}: {name}",
                f"All {len(rows)} listed token movers: {name}", cols, rows)
        elif no_token_moved(c):
            notes.append(f"{name}: no token moved (every shared token's input embedding is "
                         "the base's), so there are no token movers to list.")
        new = [r["token"] for r in charts.table(c, "new_tokens")]
        if new:
            shown = ", ".join(token_label(t) for t in new[:20])
            more = f" and {len(new) - 20} more" if len(new) > 20 else ""
            notes.append(f"{name} has {plural(len(new), 'token')} that the base vocabulary "
                         f"lacks; they have no base embedding to compare with: {shown}{more}.")
    hist, _ = shared_token_histogram(data)
    out["token-histogram"] = [Table("Histogram bins (shared by every panel)", [
        Column("candidate", "candidate"), Column("bin_start", "from", "num"),
        Column("bin_end", "to", "num"), Column("count", "tokens", "int")], hist,
        collapsed=True)]
    return out, notes


def summary_clause(comp: dict[str, Any]) -> list[str]:
    mean = value(comp, "embeddings.cosine_distance.mean")
    if mean is None:
        return []
    if mean == 0:
        text = "no token embedding moved"
    else:
        text = (f"token-embedding drift {num3(mean)} "
                f"({ratio_text(comp, 'embeddings.cosine_distance')})")
    movers = sorted((r for r in (comp.get("tables") or {}).get("tokens") or []
                     if (r.get("cosine_distance") or 0) > 0), key=lambda r: r["rank"])
    if movers:
        from reportgen.core.tokentext import token_label

        text += f", largest for '{token_label(movers[0]['token'])}'"
    out = [text]
    new = value(comp, "embeddings.new_tokens")
    if new:
        out.append(f"{plural(int(new), 'new token')} not in the base vocabulary")
    return out


def floor_clause(comp: dict[str, Any]) -> str:
    v = value(comp, "embeddings.cosine_distance.mean")
    return "" if v is None else f"token-embedding drift {num3(v)}"


def figures(data: dict[str, Any]) -> list[Figure]:
    out = []
    for c in comparisons(data):
        if not moved_tokens(c):
            continue
        name = c["candidate"]
        out.append(Figure(
            f"token-movers-{slug(name)}", "embeddings", f"Top token movers: {name}",
            "Each bar is one vocabulary token; its length is the cosine distance between the "
            "token's input embedding in the base model and in this candidate.",
            f"Bar chart of the tokens whose input embedding moved most in {name}; the table "
            "below lists the same tokens.",
            token_movers_chart(data, name), name, "Top token movers"))
    if shared_token_histogram(data)[0]:
        out.append(Figure(
            "token-histogram", "embeddings", "Token-embedding drift over the vocabulary",
            "How many tokens moved by how much, one panel per compared model in which any "
            "token moved, on the same bins and the same axis from 0. Most tokens sit near "
            "zero; the symmetric-log count axis keeps the few far movers visible.",
            "Histograms of per-token embedding drift, one per compared model; the bin counts "
            "are in the table below.",
            token_histogram_chart(data), heading="Drift over the whole vocabulary"))
    return out


def view() -> View:
    return View(figures=figures, tables=token_tables)
