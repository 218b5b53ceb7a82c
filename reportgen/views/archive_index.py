"""The archive's index: every filed release, metric trends across releases, what changed.

``ARCHIVE/index.html`` is rebuilt from the filed ``certificate.json`` files each time, never
patched, so it cannot drift from what the archive holds. Each filed certificate is read as
untrusted input (a regular file, valid against the schema); one that is not is left out of
the index and named, so a bad filing can never leave the index unbuildable.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reportgen.certificate.document import Certificate
from reportgen.certificate.schema import load_certificate
from reportgen.core.errors import InputError
from reportgen.core.names import concrete_definition
from reportgen.core.records import STATUS_ORDER
from reportgen.views.modelcard import headline_metrics

INDEX = "index.html"
INDEX_TEMPLATE = "archive-index.html.j2"
RELEASES = "releases"
FILES = ("certificate.json", "certificate.html", "certificate.pdf", "certificate.sig.json",
         "model-card.md")
TOP_MOVES = 5


@dataclass(frozen=True)
class Release:
    slug: str
    data: dict[str, Any]
    digest: str
    files: tuple[str, ...]

    @property
    def name(self) -> str:
        return str((self.data.get("audit") or {}).get("release"))

    @property
    def created(self) -> str:
        return str((self.data.get("audit") or {}).get("created") or "")


@dataclass
class Flip:
    check: str
    candidate: str
    before: str | None  # None: the check is new in this release
    after: str | None  # None: the check was dropped
    value_before: float | None = None
    value_after: float | None = None


@dataclass
class Move:
    metric: str
    candidate: str
    before: float
    after: float

    @property
    def relative(self) -> float:
        if self.before == 0:
            return 0.0 if self.after == 0 else float("inf")
        return (self.after - self.before) / abs(self.before)


@dataclass
class Changes:
    release: Release
    previous: Release | None
    flips: list[Flip] = field(default_factory=list)
    moves: list[Move] = field(default_factory=list)


def load_releases(archive_dir: Path) -> list[Release]:
    """Every filed release that reads as a valid certificate, oldest first."""
    return scan_releases(archive_dir)[0]


def scan_releases(archive_dir: Path) -> tuple[list[Release], list[tuple[str, str]]]:
    """The filed releases, oldest first (by ``audit.created``, then release name), and
    (folder name, why) for each filed folder left out because its certificate is not valid."""
    out, skipped = [], []
    root = Path(archive_dir) / RELEASES
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        path = folder / "certificate.json"
        if folder.name.startswith(".") or not (path.is_file() or path.is_symlink()):
            continue
        try:
            _, data = load_certificate(path, tables=False)  # the index reads none
        except InputError as e:
            skipped.append((folder.name, str(e)))
            continue
        out.append(release_of(folder, data))
    return by_date(out), skipped


def by_date(releases: list[Release]) -> list[Release]:
    return sorted(releases, key=lambda r: (r.created, r.name))


def release_of(folder: Path, data: dict[str, Any], slug: str | None = None) -> Release:
    """A release as the index shows it: its folder name, data and the files it holds."""
    files = tuple(n for n in FILES if (folder / n).is_file() and not (folder / n).is_symlink())
    return Release(slug or folder.name, data, Certificate(data).digest, files)


def write_index(archive_dir: Path, html: str | None = None) -> Path:
    """Write ``index.html`` (rendered from the filed releases unless given) by renaming a
    finished temporary file into place."""
    if html is None:
        html = render_index(load_releases(archive_dir))
    path = Path(archive_dir) / INDEX
    fd, tmp = tempfile.mkstemp(prefix=".index-", suffix=".html", dir=archive_dir)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(html.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def render_index(releases: list[Release]) -> str:
    """The self-contained index page (Vega inlined once, strict CSP, no network)."""
    from markupsafe import Markup

    from reportgen.core.resources import templates_dir
    from reportgen.views.html import (
        EMBED_SCRIPT,
        chart_script,
        content_security_policy,
        environment,
        js_bundle,
    )

    bundle = js_bundle()
    trends = trend_series(releases)
    ctx = {
        "releases": list(reversed(releases)),
        "title": _title(releases),
        "trends": [(i, name, _definition(releases, name), rows,
                    chart_script(trend_chart(name, rows, releases).to_dict()))
                   for i, (name, rows) in enumerate(trends.items())],
        "changes": [what_changed(prev, cur) for prev, cur in
                    zip([None, *releases[:-1]], releases, strict=True)][::-1],
        "css": Markup((templates_dir() / "certificate.css").read_text(encoding="utf-8")),
        "js_bundle": Markup(bundle), "embed_script": Markup(EMBED_SCRIPT),
        "csp": content_security_policy([bundle, EMBED_SCRIPT]),
        "counts": _counts, "change_text": _change_text,
    }
    return environment().get_template(INDEX_TEMPLATE).render(ctx)


def _title(releases: list[Release]) -> str:
    names = list(dict.fromkeys(str((r.data.get("audit") or {}).get("name") or "")
                               for r in releases))
    return " · ".join(n for n in names if n) or "Release archive"


def _definition(releases: list[Release], metric: str) -> str:
    """The metric's one-line definition, as the newest release that has it states it."""
    for r in reversed(releases):
        for c in r.data.get("comparisons") or []:
            m = (c.get("metrics") or {}).get(metric)
            if m and m.get("definition"):
                return concrete_definition(metric, str(m["definition"]))
    return ""


def _counts(data: dict[str, Any]) -> str:
    checks = data.get("checks") or []
    parts = [f"{n} {s}" for s in reversed(STATUS_ORDER)
             if (n := sum(c.get("status") == s for c in checks))]
    return ", ".join(parts) or "no checks"


# ------------------------------------------------------------------------------- trends


def trend_series(releases: list[Release]) -> dict[str, list[dict[str, Any]]]:
    """Metric → one row per (release, candidate) that measured it, in release order."""
    names: dict[str, None] = {}
    for r in releases:
        names.update(dict.fromkeys(headline_metrics(r.data)))
    out: dict[str, list[dict[str, Any]]] = {}
    for name in names:
        rows = []
        for order, r in enumerate(releases):
            for c in r.data.get("comparisons") or []:
                value = ((c.get("metrics") or {}).get(name) or {}).get("value")
                if value is not None:
                    rows.append({"release": r.name, "order": order, "created": r.created,
                                 "candidate": c["candidate"], "role": c.get("role", ""),
                                 "value": value})
        if rows:
            out[name] = rows
    return out


def trend_chart(metric: str, rows: list[dict[str, Any]], releases: list[Release]) -> Any:
    """Line and points per candidate across releases (grey for noise-floor variants), the
    newest release's thresholds on the metric as rules: the chart a series draws by step."""
    from reportgen.views import charts
    from reportgen.views.trajectory import by_release, limits_of, metric_chart

    cands = list(dict.fromkeys(r["candidate"] for r in rows))
    floors = {r["candidate"] for r in rows if r["role"] == "noise_floor"}
    palette = iter(charts.CANDIDATE_COLOURS * 4)
    colours = [charts.FLOOR_COLOUR if c in floors else next(palette) for c in cands]
    newest = releases[max(r["order"] for r in rows)].data if rows else {}
    limits = limits_of([{"kind": kind, "condition": c.get(f"{kind}_if"),
                         "model": c.get("candidate")}
                        for c in newest.get("checks") or [] if c.get("metric") == metric
                        for kind in ("warn", "fail") if c.get(f"{kind}_if")])
    chart = metric_chart(rows, by_release([r.name for r in releases]), (cands, colours),
                         title=metric, limits=limits, height=220)
    return charts.finish(chart)


# ------------------------------------------------------------------------- what changed


def what_changed(previous: Release | None, current: Release) -> Changes:
    """Checks whose status flipped and the metrics that moved most since ``previous``."""
    changes = Changes(current, previous)
    if previous is None:
        return changes
    changes.flips = flipped_checks(previous.data, current.data)
    changes.moves = moved_metrics(previous.data, current.data)[:TOP_MOVES]
    return changes


def flipped_checks(before: dict[str, Any], after: dict[str, Any]) -> list[Flip]:
    def by_key(data: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
        return {(str(c.get("id")), str(c.get("candidate") or "")): c
                for c in data.get("checks") or []}

    old, new = by_key(before), by_key(after)
    flips = []
    for key in list(new) + [k for k in old if k not in new]:
        o, n = old.get(key), new.get(key)
        if o is None or n is None or o.get("status") != n.get("status"):
            flips.append(Flip(key[0], key[1], o and o.get("status"), n and n.get("status"),
                              o and o.get("value"), n and n.get("value")))
    return flips


def moved_metrics(before: dict[str, Any], after: dict[str, Any]) -> list[Move]:
    """Every metric measured in both releases for the same candidate, largest change first."""
    old = {c["candidate"]: c.get("metrics") or {} for c in before.get("comparisons") or []}
    moves = []
    for comp in after.get("comparisons") or []:
        prev = old.get(comp["candidate"], {})
        for name, m in (comp.get("metrics") or {}).items():
            a, b = (prev.get(name) or {}).get("value"), (m or {}).get("value")
            if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a != b:
                moves.append(Move(name, comp["candidate"], a, b))
    return sorted(moves, key=lambda m: (-abs(m.relative), m.metric, m.candidate))


def _change_text(m: Move) -> str:
    if m.relative == float("inf"):
        return "from 0"
    return f"{100 * m.relative:+.1f} %"
