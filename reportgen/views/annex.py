"""The PDF's annex: the tables behind the charts, moved out of the reading order.

The PDF is for reading: a section keeps its charts, its headline metrics and its short
tables; each candidate's detail tables (views.compare) and every long table move to one
annex at the end, each cut to its first rows and saying where the whole of it is (the
HTML page and the certificate JSON, which the PDF also carries as an attachment). Tables
shown only in the HTML (``collapsed``: every row of a table whose top rows are shown) stay
out, as before.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from reportgen.core.numfmt import plural
from reportgen.views.tables import Table

#: a table longer than this moves to the annex; the annex shows this many rows of it
ROWS = 6


@dataclass(frozen=True)
class Part:
    id: str  # the section's id
    title: str  # the section's title
    tables: list[Table]


def annex(sections: list[Any]) -> list[Part]:
    """Move detail and long tables out of each section (views.html.Section, in place) into
    the annex, in page order; each moved table is cut to ``ROWS`` rows."""
    parts = []
    for s in sections:
        moved: list[Table] = []
        kept: dict[str, list[Table]] = {}
        for key, tables in s.tables.items():
            for t in tables:
                if t.detail or (not t.collapsed and len(t.rows) > ROWS):
                    moved.append(_cut(t))
                else:
                    kept.setdefault(key, []).append(t)
        s.tables = kept
        if moved:
            s.notes.append(f"{plural(len(moved), 'table')} behind this section's charts "
                           "are in the annex (first rows only); every row is in the HTML "
                           "page and the certificate JSON attached to this PDF.")
            parts.append(Part(s.id, s.title, moved))
    return parts


def _cut(t: Table) -> Table:
    caption = t.caption
    if len(t.rows) > ROWS:
        caption += f" (first {ROWS} of {plural(len(t.rows), 'row')})"
    return dataclasses.replace(t, caption=caption, rows=t.rows[:ROWS], collapsed=False,
                               detail=False)
