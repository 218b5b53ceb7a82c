"""The PDF's annex: the tables behind the charts, moved out of the reading order.

The PDF is for reading: a section keeps its charts, its headline metrics and its short
tables; each candidate's detail tables (views.compare) move to one annex at the end, each
cut to its first rows; a long table behind a chart (more than ``LONG`` rows) is left to the
HTML page. The section names what moved or was left out and says where every row is (the
HTML page and the certificate JSON, which the PDF carries as an attachment). Tables shown
only in the HTML (``collapsed``: every row of a table whose top rows are shown) stay out,
as before.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from reportgen.core.numfmt import plural
from reportgen.views.tables import Table

#: the annex shows this many rows of a detail table
ROWS = 5
#: a table behind a chart longer than this is left to the HTML page and the JSON
LONG = 12


@dataclass(frozen=True)
class Part:
    id: str  # the section's id
    title: str  # the section's title
    tables: list[Table]


def annex(sections: list[Any]) -> list[Part]:
    """Move detail tables out of each section (views.html.Section, in place) into the annex,
    in page order, each cut to ``ROWS`` rows; leave long tables out; say so in the section."""
    parts = []
    for s in sections:
        moved: list[Table] = []
        left: list[str] = []
        kept: dict[str, list[Table]] = {}
        for key, tables in s.tables.items():
            for t in tables:
                if t.detail:
                    moved.append(_cut(t))
                elif not t.collapsed and len(t.rows) > LONG:
                    left.append(f"{t.caption} ({plural(len(t.rows), 'row')})")
                else:
                    kept.setdefault(key, []).append(t)
        s.tables = kept
        if moved:
            s.notes.append(f"Each candidate's {plural(len(moved), 'table')} behind the charts "
                           "are in the annex (first rows only).")
            parts.append(Part(s.id, s.title, moved))
        if left:
            s.notes.append("Left out of the PDF for length: " + "; ".join(left) + ".")
        if moved or left:
            s.notes.append("Every row of every table is in the HTML page and in the "
                           "certificate JSON attached to this PDF.")
    return parts


def _cut(t: Table) -> Table:
    caption = t.caption
    if len(t.rows) > ROWS:
        caption += f" (first {ROWS} of {plural(len(t.rows), 'row')})"
    return dataclasses.replace(t, caption=caption, rows=t.rows[:ROWS], collapsed=False,
                               detail=False)


@dataclass(frozen=True)
class FileDigest:
    name: str  # the file's path in its checkpoint
    algorithm: str
    digest: str
    holders: list[str]  # the checkpoints (or "<model> adapter") holding these exact bytes


def distinct_files(models: list[dict[str, Any]]) -> list[FileDigest]:
    """Every checkpoint file once per distinct digest, with the checkpoints that hold it, in
    model order: the demo's twelve checkpoints share their config and tokenizer files, so
    72 rows (two and a half PDF pages) are 25."""
    rows: dict[tuple[str, str, str], list[str]] = {}
    for m in models:
        for part, label in ((m.get("digest"), m["name"]), (m.get("adapter"),
                                                           f"{m['name']} adapter")):
            for f in (part or {}).get("files", []):
                rows.setdefault((f["name"], part["algorithm"], f["digest"]), []).append(label)
    return [FileDigest(name, algorithm, digest, holders)
            for (name, algorithm, digest), holders in rows.items()]
