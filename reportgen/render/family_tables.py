"""The tables behind the built-in families' charts: each chart's text alternative.

Kept apart from :mod:`reportgen.render.html` so the page assembly stays short; a plug-in
family brings its own tables through :class:`reportgen.render.views.FamilyView` instead.
"""

from __future__ import annotations

from typing import Any

from ..metrics.collapse import COLLAPSED
from ..numfmt import plural
from . import charts
from .tables import Column, Table

TOP_N = 20
#: Section.tables key of the tables that sit under no chart (shown after a section's figures)
LOOSE_TABLES = "_section"


def cand_key(comp: dict[str, Any]) -> str:
    """A row key for a candidate's column that no fixed column key can collide with."""
    return "candidate:" + comp["candidate"]


def concept_tables(data: dict[str, Any]) -> dict[str, list[Table]]:
    """The tables behind each concept chart (their text alternative)."""
    cols = [Column("rank", "rank", "int"), Column("term", "term"),
            Column("category", "category"), Column("cosine_distance", "cosine distance", "num"),
            Column("cosine_distance_mean_pooled", "mean-pooled", "num"),
            Column("noise_floor_ratio", "× noise floor", "ratio")]
    out: dict[str, list[Table]] = {}
    comps = [c for c in charts.comparisons(data) if charts.table(c, "concepts")]
    for c in comps:
        rows = sorted(charts.table(c, "concepts"), key=lambda r: r["rank"])
        name = c["candidate"]
        if charts.no_concept_moved(c):
            continue  # concept_notes says so
        out[f"top-concepts-{charts.slug(name)}"] = _top_and_all(
            f"Top {plural(min(TOP_N, len(rows)), 'concept')} by drift: {name}",
            f"All {len(rows)} concepts: {name}", cols + _piece_columns(rows, name), rows)
    cat_rows = [{**r, "candidate": c["candidate"]} for c in comps
                for r in charts.table(c, "categories")]
    cat_rows.sort(key=lambda r: r["category"])
    out["concept-categories"] = [Table("Drift by category", [
        Column("category", "category"), Column("candidate", "candidate"),
        Column("count", "concepts", "int"), Column("mean", "mean", "num"),
        Column("std", "std", "num"), Column("top_quartile_share", "in top quartile", "pct"),
        Column("noise_floor_ratio", "× noise floor", "ratio")], cat_rows)]
    layers: dict[int, dict[str, Any]] = {}
    for c in comps:
        for r in charts.table(c, "layers"):
            layers.setdefault(r["layer"], {"layer": r["layer"]})[cand_key(c)] = \
                r["cosine_distance_mean"]
    out["concept-layers"] = [Table(
        "Mean concept drift (last-token hidden state) by layer",
        [Column("layer", "layer", "int")] + [Column(cand_key(c), c["candidate"], "num")
                                             for c in comps],
        [layers[k] for k in sorted(layers)])]
    return out


def concept_notes(data: dict[str, Any]) -> list[str]:
    """What the concept section says in words: candidates in which no concept moved, and the
    certificate's warning for each candidate whose concept states collapsed (repeated where
    its drift numbers are read)."""
    still = [f"{c['candidate']}: no concept moved (every concept's last-layer state is the "
             "base's), so there is no ranking to show." for c in charts.comparisons(data)
             if charts.table(c, "concepts") and charts.no_concept_moved(c)]
    return still + [str(w) for w in data.get("warnings") or [] if COLLAPSED in str(w)]


def _piece_columns(rows: list[dict[str, Any]], name: str) -> list[Column]:
    """How many tokens the base tokenizer cut each term into (more than 1: a multi-token
    term); the candidate's count too where its tokenizer cuts some term otherwise."""
    cols = []
    if any("pieces" in r for r in rows):
        cols.append(Column("pieces", "term tokens", "int"))
    if any(r.get("candidate_pieces", r.get("pieces")) != r.get("pieces") for r in rows):
        cols.append(Column("candidate_pieces", f"term tokens in {name}", "int"))
    return cols


def _top_and_all(top: str, everything: str, cols: list[Column],
                 rows: list[dict[str, Any]]) -> list[Table]:
    """The first TOP_N rows, plus all rows collapsed (HTML only) when there are more."""
    tables = [Table(top, cols, rows[:TOP_N])]
    if len(rows) > TOP_N:
        tables.append(Table(everything, cols, rows, collapsed=True))
    return tables


def token_tables(data: dict[str, Any]) -> tuple[dict[str, list[Table]], list[str]]:
    """Tables behind the token charts, and a note per candidate with new tokens."""
    cols = [Column("rank", "rank", "int"), Column("token", "token", "token"),
            Column("cosine_distance", "cosine distance", "num"),
            Column("base_id", "base id", "int"), Column("candidate_id", "candidate id", "int")]
    out: dict[str, list[Table]] = {}
    notes = []
    for c in charts.comparisons(data):
        rows = charts.moved_tokens(c)
        name = c["candidate"]
        if rows:
            out[f"token-movers-{charts.slug(name)}"] = _top_and_all(
                f"Top {plural(min(TOP_N, len(rows)), 'token mover')}: {name}",
                f"All {len(rows)} listed token movers: {name}", cols, rows)
        elif charts.no_token_moved(c):
            notes.append(f"{name}: no token moved (every shared token's input embedding is "
                         "the base's), so there are no token movers to list.")
        new = [r["token"] for r in charts.table(c, "new_tokens")]
        if new:
            shown = ", ".join(charts.token_label(t) for t in new[:20])
            more = f" and {len(new) - 20} more" if len(new) > 20 else ""
            notes.append(f"{name} has {plural(len(new), 'token')} that the base vocabulary "
                         f"lacks; they have no base embedding to compare with: {shown}{more}.")
    hist, _ = charts.shared_token_histogram(data)
    out["token-histogram"] = [Table("Histogram bins (shared by every panel)", [
        Column("candidate", "candidate"), Column("bin_start", "from", "num"),
        Column("bin_end", "to", "num"), Column("count", "tokens", "int")], hist,
        collapsed=True)]
    return out, notes


def _neighbour_text(ns: list[dict[str, Any]], token: bool = False) -> str:
    lab = charts.token_label if token else str
    return ", ".join(f"{lab(n['label'])} {n['similarity']:.2f}" for n in ns)


def representation_tables(data: dict[str, Any], fam: str
                          ) -> tuple[dict[str, list[Table]], list[str]]:
    """Tables behind the neighbourhood, CKA, weight and domain charts."""
    comps = charts.comparisons(data)
    real = [c for c in comps if c.get("role") != "noise_floor"]
    out: dict[str, list[Table]] = {}
    notes: list[str] = []
    if fam == "neighbors":
        tabs = []
        cols = [Column("rank", "rank", "int"), Column("term", "term"),
                Column("category", "category"), Column("jaccard", "Jaccard", "num"),
                Column("base", "base neighbours (cosine)"),
                Column("candidate", "candidate neighbours (cosine)")]
        for c in real:
            listed = charts.table(c, "rewired_concepts")
            rows = [{**r, "base": _neighbour_text(r["base_neighbours"]),
                     "candidate": _neighbour_text(r["candidate_neighbours"])}
                    for r in listed if r["jaccard"] < 1]
            if rows:
                tabs.append(Table(f"Most rewired concepts, side by side: {c['candidate']}",
                                  cols, rows[:TOP_N]))
            elif listed:
                notes.append(f"{c['candidate']}: every concept kept all of its nearest "
                             "neighbours (Jaccard 1), so no concept was rewired.")
        tcols = [Column("token", "token", "token"),
                 Column("cosine_distance", "cosine distance", "num"),
                 Column("jaccard", "Jaccard", "num"),
                 Column("base", "base neighbours (cosine)"),
                 Column("candidate", "candidate neighbours (cosine)")]
        for c in real:
            listed = charts.table(c, "neighbors_tokens")
            rows = [{**r, "base": _neighbour_text(r["base_neighbours"], True),
                     "candidate": _neighbour_text(r["candidate_neighbours"], True)}
                    for r in listed if (r.get("cosine_distance") or 0) > 0]
            if rows:
                tabs.append(Table(f"Neighbourhoods of the top token movers: {c['candidate']}",
                                  tcols, rows[:TOP_N]))
            elif listed:
                notes.append(f"{c['candidate']}: no token moved, so no token neighbourhood "
                             "is listed.")
        concepts = any(charts.table(c, "neighbors_concepts_distribution") for c in comps)
        if tabs:  # under the concept chart; without concepts there is none to sit under
            out["neighbors-distribution" if concepts else LOOSE_TABLES] = tabs
        prows = charts.projection_rows(data)
        if prows:
            out["umap-categories"] = [Table("UMAP coordinates", [
                Column("term", "term"), Column("category", "category"),
                Column("variant", "variant"), Column("x", "x", "num"), Column("y", "y", "num"),
                Column("drift", "cosine distance", "num")], prows, collapsed=True)]
    elif fam == "cka":
        layers: dict[int, dict[str, Any]] = {}
        for c in comps:
            for r in charts.table(c, "cka"):
                layers.setdefault(r["layer"], {"layer": r["layer"]})[cand_key(c)] = r["cka"]
        if not layers:  # no concept CKA (no concept probes): the domains' CKA is theirs
            return out, notes
        out["cka-layers"] = [Table(
            "Linear CKA of the concept prompts by layer (— : undefined, no variance)",
            [Column("layer", "layer", "int")] + [Column(cand_key(c), c["candidate"], "num")
                                                 for c in comps],
            [layers[k] for k in sorted(layers)])]
    elif fam == "weights":
        cols = [Column("block", "block", "int"), Column("module", "module"),
                Column("tensors", "tensors", "int"), Column("parameters", "parameters", "int"),
                Column("relative_drift", "relative drift", "num")]
        out.update(_per_candidate(comps, "weights_blocks", "weights", cols,
                                  "Weight drift by block and module type"))
        for c in comps:
            if charts.no_weight_changed(c):
                notes.append(f"{c['candidate']}: no weight changed (every compared tensor "
                             "equals the base's).")
            unmatched = charts.table(c, "weights_unmatched")
            if unmatched:
                shown = ", ".join(u["name"] for u in unmatched[:10])
                notes.append(f"{c['candidate']}: {plural(len(unmatched), 'tensor')} not compared "
                             f"(absent on one side or reshaped): {shown}.")
    elif fam == "domains":
        cols = [Column("domain", "domain"), Column("layer", "layer", "int"),
                Column("cosine_distance_mean", "mean drift", "num"),
                Column("cka", "linear CKA", "num")]
        out.update(_per_candidate(comps, "domains", "domains", cols,
                                  "Domain drift and CKA by layer"))
    return out, notes


def _per_candidate(comps: list[dict], table: str, figure: str, cols: list[Column],
                   title: str) -> dict[str, list[Table]]:
    """One collapsed table per candidate that has rows, under its figure ``figure-SLUG``."""
    return {f"{figure}-{charts.slug(c['candidate'])}": [
        Table(f"{title}: {c['candidate']}", cols, charts.table(c, table), collapsed=True)]
        for c in comps if charts.table(c, table)}
