"""The release archive: every release's certificate filed, and an index with trends.

Layout: ``ARCHIVE/releases/<release>/`` holds that release's certificate files (JSON, HTML,
PDF, signature, model card) and ``ARCHIVE/index.html`` lists every release, charts each
headline metric across releases, and says what changed from one release to the next.

Why it is safe to run two ``archive add`` at once: each add holds an exclusive ``fcntl`` lock
on ``ARCHIVE/.archive.lock`` while it files its release and rebuilds the index, and every
write lands by rename (a staged release folder, a temporary index), so a reader never sees a
half-written file. The index is rebuilt from the filed ``certificate.json`` files each time,
never patched, so it cannot drift from what the archive holds.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .certificate import STATUS_ORDER, Certificate, dictionary_files
from .errors import InputError
from .metrics.registry import concrete_definition
from .modelcard import headline_metrics
from .render import copy_synced

INDEX = "index.html"
INDEX_TEMPLATE = "archive-index.html.j2"
LOCK = ".archive.lock"
RELEASES = "releases"
FILES = ("certificate.json", "certificate.html", "certificate.pdf", "certificate.sig.json",
         "model-card.md")
LOCK_TIMEOUT_S = 300.0
TOP_MOVES = 5
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class ArchiveError(InputError):
    """An archive or certificate folder that cannot be read, filed or written."""


@dataclass(frozen=True)
class Added:
    release: str
    path: Path  # the release's folder in the archive
    index: Path
    replaced: bool  # the release was already filed and its files were replaced
    missing: list[str] = field(default_factory=list)  # listed by the certificate, not found


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


# ------------------------------------------------------------------------------- adding


def add(archive_dir: Path, cert_dir: Path) -> Added:
    """File the certificate in ``cert_dir`` under its release and rebuild the index."""
    archive_dir, source = Path(archive_dir), _source_folder(Path(cert_dir))
    cert = Certificate.from_json(source / "certificate.json")
    release = _release_name(cert, source)
    slug = release_slug(release)
    releases = archive_dir / RELEASES
    try:
        releases.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ArchiveError(f"{archive_dir}: cannot create the archive ({e.strerror})") from None
    _warm_up_renderer()  # the slow part of rendering the index, done before taking the lock
    with archive_lock(archive_dir):
        target = releases / slug
        replaced = target.exists()
        if replaced:
            _check_same_release(target, release)
        wanted = dictionary_files(cert.data)
        _file_release(source, target, wanted)
        index = write_index(archive_dir)
    return Added(release, target, index, replaced,
                 [f for f in wanted if not (source / f).is_file()])


def _warm_up_renderer() -> None:
    from .render.html import js_bundle

    js_bundle()


def release_slug(release: str) -> str:
    """A folder and URL-safe name for a release ('v1.3' stays 'v1.3')."""
    slug = _UNSAFE.sub("-", release).strip("-.") or "release"
    return slug[:100]


def _source_folder(cert_dir: Path) -> Path:
    if cert_dir.is_file() and cert_dir.name == "certificate.json":
        return cert_dir.parent
    if not (cert_dir / "certificate.json").is_file():
        raise ArchiveError(f"{cert_dir}: no certificate.json here; expected an audit's "
                           "output folder")
    return cert_dir


def _release_name(cert: Certificate, source: Path) -> str:
    release = (cert.data.get("audit") or {}).get("release")
    if not isinstance(release, str) or not release.strip():
        raise ArchiveError(f"{source / 'certificate.json'}: audit.release is empty; set "
                           "audit.release in the spec to file the certificate in an archive")
    return release


def _check_same_release(target: Path, release: str) -> None:
    """Two releases whose names share a folder ('v1/3', 'v1-3') must not overwrite each other."""
    try:
        filed = Certificate.from_json(target / "certificate.json")
    except InputError:
        return  # an unreadable leftover: replacing it is the repair
    other = (filed.data.get("audit") or {}).get("release")
    if other != release:
        raise ArchiveError(f"{target}: already holds release {other!r}, whose folder name "
                           f"is the same as {release!r}'s; rename one of the releases")


def _file_release(source: Path, target: Path, extra: list[str]) -> None:
    """Copy the certificate files (and ``extra`` relative paths, where present) into a staging
    folder, then rename it into place."""
    stage = Path(tempfile.mkdtemp(prefix=f".stage-{target.name}-", dir=target.parent))
    old = target.parent / f".old-{target.name}-{os.getpid()}"
    try:
        for name in (*FILES, *extra):
            if (source / name).is_file():
                (stage / name).parent.mkdir(parents=True, exist_ok=True)
                copy_synced(source / name, stage / name)
        os.chmod(stage, 0o755)
        if target.exists():
            os.replace(target, old)
        os.replace(stage, target)
    except OSError as e:
        if old.exists() and not target.exists():
            os.replace(old, target)
        raise ArchiveError(f"{target}: cannot file the release ({e.strerror or e})") from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def archive_lock(archive_dir: Path, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold an exclusive lock on the archive (waits for another add to finish)."""
    fd = os.open(archive_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                    raise ArchiveError(f"{archive_dir}: the archive is locked by another "
                                       f"'archive add' (waited {timeout:.0f} s)") from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing releases the lock


# -------------------------------------------------------------------------------- index


def load_releases(archive_dir: Path) -> list[Release]:
    """Every filed release, oldest first (by ``audit.created``, then release name)."""
    out = []
    root = Path(archive_dir) / RELEASES
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        path = folder / "certificate.json"
        if folder.name.startswith(".") or not path.is_file():
            continue
        cert = Certificate.from_json(path)
        files = tuple(n for n in FILES if (folder / n).is_file())
        out.append(Release(folder.name, cert.data, cert.digest, files))
    return sorted(out, key=lambda r: (r.created, r.name))


def write_index(archive_dir: Path) -> Path:
    """Render ``index.html`` from the filed releases and rename it into place."""
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

    from .render.html import (
        EMBED_SCRIPT,
        chart_script,
        content_security_policy,
        environment,
        js_bundle,
    )
    from .resources import templates_dir

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
    """Line and points per candidate across releases; grey for noise-floor variants."""
    import altair as alt

    from .render import charts

    cands = list(dict.fromkeys(r["candidate"] for r in rows))
    floors = {r["candidate"] for r in rows if r["role"] == "noise_floor"}
    palette = iter(charts.CANDIDATE_COLOURS * 4)
    colours = [charts.FLOOR_COLOUR if c in floors else next(palette) for c in cands]
    base = alt.Chart(alt.Data(values=rows)).encode(
        x=alt.X("release:O", sort=[r.name for r in releases], title="release",
                axis=alt.Axis(labelAngle=0)),
        y=alt.Y("value:Q", title=metric),
        color=alt.Color("candidate:N", scale=alt.Scale(domain=cands, range=colours),
                        title="model"),
        tooltip=[alt.Tooltip("release:N"), alt.Tooltip("candidate:N", title="model"),
                 alt.Tooltip("value:Q", format=".4g"), alt.Tooltip("created:N")],
    )
    chart = alt.layer(base.mark_line(strokeWidth=2), base.mark_point(filled=True, size=60))
    return (chart.properties(width=charts.WIDTH, height=220, title=metric)
            .configure(font=charts.FONT).configure_view(stroke=None))


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
