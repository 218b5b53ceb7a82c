"""The PDF's sections, in page order, as :mod:`reportgen.views.pdfdoc` blocks.

Each function mirrors a part of ``templates/certificate.html.j2`` in 'pdf' mode: the same
words and numbers, laid out by ``templates/certificate.typ``.
"""

from __future__ import annotations

from typing import Any

from reportgen.core import numfmt
from reportgen.views.annex import distinct_files
from reportgen.views.filters import fmt_params
from reportgen.views.pdfdoc import (
    ICONS,
    breakable,
    cell,
    figure,
    heading,
    items,
    par,
    run,
    status_run,
    table,
    tables,
)

Block = dict[str, Any]


def masthead(ctx: dict[str, Any]) -> dict[str, Any]:
    audit, tool, data = ctx["audit"], ctx["tool"], ctx["data"]
    n = len(data.get("checks") or [])
    words = [f"{ctx['counts'][s]} {w}" for s, w in (
        ("FAIL", "failed"), ("ERROR", "could not be computed"), ("WARN", "warned"),
        ("PASS", "passed")) if ctx["counts"][s]]
    detail = (" · ".join(words) + f" · {numfmt.plural(n, 'check')} in all") if n else \
        "no checks were defined"
    spec_digest = (data.get("spec") or {}).get("digest") or "—"
    return {
        "verdict": ctx["verdict"], "icon": ICONS.get(ctx["verdict"], "?"), "detail": detail,
        "name": str(audit.get("name") or "Untitled audit"),
        "description": str(audit.get("description") or ""),
        "meta": [["Release", str(audit.get("release") or "—"), False],
                 ["Created", str(audit.get("created") or "—"), False],
                 ["Certificate digest", f"sha256:{ctx['digest']}", True],
                 ["Spec digest", str(spec_digest), True],
                 ["Issued by", f"{tool.get('name', 'reportgen')} {tool.get('version', '')}, "
                               f"certificate schema {data.get('schema_version', '?')}", False]],
    }


def findings(ctx: dict[str, Any]) -> list[Block]:
    f = ctx["findings"]
    out = [heading(1, "Findings")]
    if f.rows and f.columns:
        floor = f" ({f.floor})" if f.floor else ""
        out.append(par(run(
            "One row per compared model, one column per family: the family's headline "
            f"number, its ratio to the noise floor{floor} and the checks on the family's "
            "metrics for that model (a cell's colour is the worst of them; grey: no check). "
            "Each family's section below has every number behind it.")))
        out.append(_findings_table(f))
    out += [heading(2, "Summary"), items("list", ctx["summary"])]
    return out


def _findings_table(f: Any) -> Block:
    rows = []
    for r in f.rows:
        head = [run(r.candidate, "b")] + ([run("noise floor", "sub")]
                                          if r.role == "noise_floor" else [])
        cells, fills = [head], [""]
        for name, _ in f.columns:
            c = r.cells.get(name)
            cells.append(_finding(c))
            fills.append((c.status or "none") if c is not None else "")
        rows.append({"cells": cells, "fills": fills})
    n = len(f.columns)
    return {"t": "table", "caption": "Findings at a glance", "size": 6.5,
            "widths": [12] + [88 / n] * n if n else [100],
            "columns": [{"label": "model", "align": "left"}]
            + [{"label": breakable(title), "align": "right"} for _, title in f.columns],
            "rows": rows}


def _finding(c: Any) -> list[list[str]]:
    if c is None:
        return [run("—", "muted")]
    out = [run(c.headline.label, "muted"), ["br", ""]]
    if c.value is None:
        out += [run("n/a", "muted"), run(c.error or "not computed", "err")]
    else:
        out.append(run(numfmt.with_unit(c.value, c.unit), "big"))
    if c.ratio is not None:
        out.append(run(f"{numfmt.ratio(c.ratio)} the noise floor", "sub"))
    if c.checks:
        out += [["br", ""], status_run(c.status),
                run(" " + numfmt.plural(len(c.checks), "check"), "muted")]
    return out


def checks(ctx: dict[str, Any]) -> list[Block]:
    cs = list(ctx["data"].get("checks") or [])
    out = [heading(1, "Checks")]
    if not cs:
        return out + [par(run("The audit spec defined no checks, so nothing was compared "
                              "with a threshold."))]
    out.append(par(run("Each check compares one metric of one candidate with the thresholds "
                       "written in the audit spec: "), run("fail_if", "code"),
                   run(" makes it FAIL, "), run("warn_if", "code"),
                   run(" makes it WARN, a metric that could not be computed makes it ERROR. "
                       "The verdict is the worst status.")))
    rows, key = [], None
    for c in cs:
        k = (c.get("id"), c.get("metric"), c.get("description"), c.get("fail_if"),
             c.get("warn_if"), c.get("condition"))
        if k != key:
            key = k
            rows.append({"head": True, "cells": [_check_head(c)]})
        rows.append({"status": c.get("status"), "cells": [
            [run(c.get("candidate"))], [run(numfmt.num(c.get("value")))],
            [status_run(c.get("status"))], [run(c.get("message") or "")]]})
    out.append({"t": "table", "caption": f"{numfmt.plural(len(cs), 'check')}, grouped by "
                "check: the check, its metric and condition, then one row per candidate",
                "size": 7.5, "widths": [14, 9, 10, 67],
                "columns": [{"label": "candidate", "align": "left"},
                            {"label": "value", "align": "right"},
                            {"label": "status", "align": "left"},
                            {"label": "message", "align": "left"}], "rows": rows})
    return out


def _check_head(c: dict[str, Any]) -> list[list[str]]:
    cond = [x for x in (f"fail if {c['fail_if']}" if c.get("fail_if") else "",
                        f"warn if {c['warn_if']}" if c.get("warn_if") else "") if x]
    out = [run(c.get("id"), "bcode"), run("   "), run(c.get("metric"), "code"),
           run("   " + ("   ".join(cond) if cond else str(c.get("condition") or "—")))]
    if c.get("description"):
        out.append(run("   " + str(c["description"]), "muted"))
    return out


def models(ctx: dict[str, Any]) -> list[Block]:
    ms = list(ctx["data"].get("models") or [])
    parts = [p for m in ms for p in (m.get("digest"), m.get("adapter")) if p]
    algos = sorted({p.get("algorithm") for p in parts})
    one = len(algos) == 1
    rows = []
    for m in ms:
        for i, (part, label) in enumerate(((m.get("digest"), m["name"]),
                                           (m.get("adapter"), f"{m['name']} adapter"))):
            if part:
                rows.append({"cells": _model_row(m, part, label, i == 0, one)})
    return [heading(1, "Models"), par(run(
        "The base model, every candidate and every noise-floor variant, each named by the "
        "digest of its checkpoint files (SHA-256 per file, then SHA-256 over the per-file "
        "digests in path order, as in OpenSSF model signing). A model with an adapter is its "
        "base checkpoint with the adapter merged, and is named by both digests.")),
        # the digest's column holds 64 hex digits on one line (77.8 mm at this size)
        {"t": "table", "size": 6.5, "widths": [16, 8, 8, 13, 6, 45, 4],
         "caption": f"{numfmt.plural(len(ms), 'model')}, each with the root digest of its "
                    "checkpoint in full",
         "columns": [{"label": x, "align": a} for x, a in (
             ("name", "left"), ("role", "left"), ("kind", "left"), ("architecture", "left"),
             ("params", "right"), ("root digest" + (f" ({algos[0]})" if one else ""), "left"),
             ("files", "right"))], "rows": rows}]


def _model_row(m: dict[str, Any], part: dict[str, Any], label: str, first: bool,
               one: bool) -> list[list[list[str]]]:
    name = [run(label)]
    if first and m.get("derived_from"):
        how = f": {m['derivation']}" if m.get("derivation") else ""
        name.append(run(f"from {m['derived_from']}{how}", "sub"))
    digest = ("" if one else f"{part.get('algorithm')}:") + str(part.get("root"))
    tail = [[["code", digest]], [run(len(part.get("files", [])))]]
    if not first:
        return [name, [run("its adapter, merged into the checkpoint above", "muted")],
                [], [], [], *tail]
    return [name, [run(str(m.get("role", "")).replace("_", " "))], [run(m.get("kind", ""))],
            [run(m.get("architecture", ""))], [run(fmt_params(m.get("parameters")))], *tail]


def probes(ctx: dict[str, Any]) -> list[Block]:
    ps = list(ctx["data"].get("probes") or [])
    out = [heading(1, "Probes"), {
        "t": "table", "size": 7, "caption": numfmt.plural(len(ps), "probe set"),
        "widths": [22, 10, 7, 61],
        "columns": [{"label": "name", "align": "left"}, {"label": "kind", "align": "left"},
                    {"label": "count", "align": "right"}, {"label": "digest", "align": "left"}],
        "rows": [{"cells": [[run(p.get("name"))], [run(p.get("kind"))], [run(p.get("count"))],
                            [["code", str(p.get("digest"))]]]} for p in ps]}]
    for p in ps:
        ct = (p.get("details") or {}).get("chat_template")
        if ct:
            out.append(par(run(
                f"{p['name']}: prompts rendered as a user turn through the chat template of "
                f"{ct['model']} ({ct['file']}, sha256 {str(ct['sha256'])[:12]}…), the same "
                "text for every model; the continuations are scored as the assistant's "
                "answer."), note=True))
    return out


def series(ctx: dict[str, Any]) -> list[Block]:
    svs = ctx["series"]
    if not svs:
        return []
    out = [heading(1, "Checkpoint series")]
    for sv in svs:
        out += [heading(2, sv.name), par(run(sv.intro)), *tables(sv.tables)]
    if any(sv.figures for sv in svs):
        every = ", every series" if len(svs) > 1 else ""
        out.append(heading(2, f"Most moved concepts by training step{every}"))
        out += [figure(f) for sv in svs for f in sv.figures]
    if ctx["trajectories"]:
        every = ", every series" if len(svs) > 1 else ""
        out.append(heading(2, f"Headline metrics by training step{every}"))
        out += [figure(f) for f in ctx["trajectories"]]
    return out


def family(s: Any) -> list[Block]:
    out = [heading(1, s.title)]
    if s.intro:
        out.append(par(run(s.intro)))
    if s.limitations:
        out.append({"t": "limits", "items": [[run(w)] for w in s.limitations]})
    if s.metrics.rows:
        out += [heading(2, "Headline metrics"), {**table(s.metrics), "first": 32}]
    out += [par(run(n), note=True) for n in s.notes]
    if s.definitions:
        out.append(par(run("The definitions of this section's metrics are in the annex "
                           f"(Definitions: {s.title})."), note=True))
    last = ""
    for f in s.figures:
        if f.heading and f.heading != last:
            last = f.heading
            out.append(heading(2, f.heading))
        out += [figure(f), *tables(s.tables.get(f.id, []))]
    drawn = {f.id for f in s.figures}
    for key, ts in s.tables.items():
        if key not in drawn:
            out += tables([t for t in ts if t.rows])
    return out


def warnings(ctx: dict[str, Any]) -> list[Block]:
    data = ctx["data"]
    out = [heading(1, "Warnings and limitations")]
    for title, key in (("Warnings", "warnings"), ("Limitations", "limitations")):
        out.append(heading(2, title))
        lines = data.get(key) or []
        out.append(items("list", lines) if lines else par(run("None were recorded.")))
    return out


def annex(ctx: dict[str, Any]) -> list[Block]:
    out = [heading(1, "Annex: definitions and the tables behind the charts"), par(
        run("Every metric's definition, then each section's per-candidate and long tables, "
            "first rows only. Every row of every table is in the HTML page ("),
        run("certificate.html", "code"), run(") and in the certificate JSON ("),
        run("certificate.json", "code"), run(", also attached to this PDF), under each "
                                             "comparison's "), run("tables", "code"),
        run("."))]
    for s in ctx["sections"]:
        if s.definitions:
            out += [heading(2, f"Definitions: {s.title}"), {
                "t": "defs", "items": [[run(name, "code"), run(f"({unit})" if unit else "",
                                                               "muted"), run(d)]
                                       for name, d, unit in s.definitions]}]
    for part in ctx["annex"]:
        out.append(heading(2, f"Tables: {part.title}"))
        out += tables(part.tables, size=6.5)
    return out


def appendix(ctx: dict[str, Any]) -> list[Block]:
    data = ctx["data"]
    ms = list(data.get("models") or [])
    files = distinct_files(ms)
    n = len(ms) + sum(1 for m in ms if m.get("adapter"))
    spec_digest = (data.get("spec") or {}).get("digest") or "—"
    rows = [{"cells": [[run(f.name, "code")], [["code", f"{f.algorithm}:{f.digest}"]],
                       [run("every checkpoint" if len(f.holders) == n and n > 1
                            else ", ".join(f.holders))]]} for f in files]
    return [heading(1, "Appendix"), heading(2, "Checkpoint file digests"), par(
        run("Every file of every checkpoint, once per distinct digest: a file that several "
            "checkpoints hold byte for byte is one row naming them. The HTML page lists each "
            "checkpoint's files under it; the certificate JSON holds them under "),
        run("models[].digest.files", "code"), run("."), note=True),
        {"t": "table", "size": 6.5, "widths": [22, 50, 28],
         "caption": f"{numfmt.plural(len(files), 'distinct file')} in "
                    f"{numfmt.plural(n, 'checkpoint')}",
         "columns": [{"label": x, "align": "left"} for x in ("file", "digest", "held by")],
         "rows": rows},
        heading(2, "Audit spec (normalised)"),
        par(run("The spec as the audit read it; its digest is "), ["code", str(spec_digest)],
            run(".")),
        par(run("The spec itself is in the certificate JSON attached to this PDF ("),
            run("spec.content", "code"), run(") and in the HTML page."))]


def glossary(ctx: dict[str, Any]) -> list[Block]:
    return [heading(1, "Glossary"),
            {"t": "glossary", "items": [[run(g.term, "b"), run(g.definition)]
                                        for g in ctx["glossary"]]}]


def colophon(ctx: dict[str, Any]) -> list[Block]:
    tool, data = ctx["tool"], ctx["data"]
    libs = tool.get("libraries") or {}
    text = (f"Issued by {tool.get('name', 'reportgen')} {tool.get('version', '')} "
            f"(certificate schema {data.get('schema_version', '?')}).")
    if libs:
        text += " Libraries: " + ", ".join(f"{k} {v or '(not installed)'}"
                                           for k, v in libs.items()) + "."
    return [par(run(text), note=True), par(
        run("Certificate digest (SHA-256 of certificate.json): "), ["code", ctx["digest"]],
        run(". Check it with "), run("sha256sum certificate.json", "code"),
        run("; this page is rendered from that file alone."), note=True)]


def blocks(ctx: dict[str, Any]) -> list[Block]:
    """Every section of the PDF in page order."""
    out = findings(ctx) + checks(ctx) + models(ctx) + probes(ctx) + series(ctx)
    for s in ctx["sections"]:
        out += family(s)
    return (out + warnings(ctx) + annex(ctx) + appendix(ctx) + glossary(ctx)
            + colophon(ctx))


__all__ = ["blocks", "cell", "masthead"]
