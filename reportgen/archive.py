"""The release archive: every release's certificate filed, and an index with trends.

Layout: ``ARCHIVE/releases/<release>/`` holds that release's certificate files (JSON,
signature, and the HTML, PDF and model card), ``ARCHIVE/replaced/<release>-<sha>/`` keeps a
filing that ``--replace`` superseded, and ``ARCHIVE/index.html`` (:mod:`.archive_index`)
lists every release, charts each headline metric across releases and says what changed.

Why filing reads nothing as it comes: the certificate folder is often a vendor's. Its
``certificate.json`` is read as a regular file and validated against the schema before
anything is written; its signature is filed as it is (a regular JSON file); the HTML, PDF and
model card are rendered here from the validated JSON, never copied (a vendor's HTML can carry
a script, and a symbolic link can point at any local file, so links are refused).

Why filing is all or nothing: the release is staged in a folder beside its place and the new
index is rendered from the filed releases plus the staged one before anything moves; then
the staged folder is renamed into place and the index renamed over the old one, and a failure
between the two puts the earlier filing back. A filed certificate that is not valid is left
out of the index and named, so it can never make the index unbuildable.

Why two adds may run at once: each holds an exclusive ``fcntl`` lock on
``ARCHIVE/.archive.lock`` while it files its release and rebuilds the index.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .archive_index import (
    INDEX,
    RELEASES,
    by_date,
    release_of,
    render_index,
    scan_releases,
    write_index,
)
from .certificate import Certificate, attachments_beside, dictionary_files
from .certschema import MAX_BYTES, load_certificate
from .errors import InputError
from .render import SIGNATURE_FILE, render_outputs
from .untrusted import BadJSON, copy_regular, parse_json, read_json_beside, read_regular
from .untrusted import symlink_error as _symlink_error

LOCK = ".archive.lock"
REPLACED = "replaced"
LOCK_TIMEOUT_S = 300.0
VIEWS = {"certificate.html": "html", "certificate.pdf": "pdf", "model-card.md": "model-card"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class ArchiveError(InputError):
    """An archive or certificate folder that cannot be read, filed or written."""


@dataclass(frozen=True)
class Added:
    release: str
    path: Path  # the release's folder in the archive
    index: Path
    unchanged: bool = False  # the same certificate was filed already: nothing was written
    moved_to: Path | None = None  # where the filing it replaced was kept (--replace)
    missing: list[str] = field(default_factory=list)  # listed by the certificate, not found
    skipped: list[str] = field(default_factory=list)  # filed releases left out of the index

    def lines(self) -> list[str]:
        """What was done, for the reader."""
        if self.unchanged:
            done = (f"{self.release}: already filed in {self.path} (the same certificate); "
                    "nothing changed")
        else:
            done = f"{self.release}: filed in {self.path}"
        moved = ([f"{self.release}: the earlier filing was moved to {self.moved_to}"]
                 if self.moved_to is not None else [])
        return [done, *moved, f"index: {self.index}"]

    def warnings(self, where: str) -> list[str]:
        return ([f"warning: left out of the index: {why}" for why in self.skipped]
                + [f"warning: {f} is named by the certificate but not in {where}; filed "
                   "without it" for f in self.missing])


@dataclass(frozen=True)
class Incoming:
    """A certificate folder to file, read and checked, with nothing written yet."""

    source: Path
    raw: bytes  # certificate.json exactly as read (the signature covers these bytes)
    cert: Certificate
    signature: bytes | None
    views: tuple[str, ...]  # the formats to render for the archive
    dictionaries: dict[str, Path]
    missing: list[str]


# ------------------------------------------------------------------------------- adding


def add(archive_dir: Path, cert_dir: Path, replace: bool = False) -> Added:
    """File the certificate in ``cert_dir`` under its release and rebuild the index.

    A release already filed from another certificate is refused unless ``replace``; then the
    earlier filing is moved to ``ARCHIVE/replaced/``, never deleted.
    """
    archive_dir = Path(archive_dir)
    incoming = read_incoming(Path(cert_dir))
    release = _release_name(incoming)
    slug = release_slug(release)
    views = render_outputs(incoming.cert, list(incoming.views), incoming.signature)
    releases = archive_dir / RELEASES
    try:
        releases.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ArchiveError(f"{archive_dir}: cannot create the archive ({e.strerror})") from None
    _warm_up_renderer()  # the slow part of rendering the index, done before taking the lock
    with archive_lock(archive_dir):
        target = releases / slug
        if (target.exists() or target.is_symlink()) and _already_filed(
                archive_dir, target, release, incoming, replace):
            filed, skipped = scan_releases(archive_dir)
            index = write_index(archive_dir, render_index(filed))
            return Added(release, target, index, unchanged=True,
                         skipped=[why for _, why in skipped])
        moved, skipped = _file(archive_dir, target, incoming, views)
    return Added(release, target, archive_dir / INDEX, moved_to=moved,
                 missing=incoming.missing, skipped=skipped)


def check_not_filed(archive_dir: Path, release: str) -> None:
    """Refuse early (before an audit runs) when ``release`` is already filed."""
    target = Path(archive_dir) / RELEASES / release_slug(release)
    if release and (target.exists() or target.is_symlink()):
        raise ArchiveError(f"{target}: release {release!r} is already filed; pass --replace "
                           "to file the new certificate instead (the earlier filing is then "
                           f"kept in {Path(archive_dir) / REPLACED})")


def read_incoming(cert_dir: Path) -> Incoming:
    """Read and check everything filing needs from a certificate folder (no symlinks)."""
    source = _source_folder(cert_dir)
    raw, data = load_certificate(source / "certificate.json")
    views = []
    for name, fmt in VIEWS.items():
        path = source / name
        if path.is_symlink():
            raise _symlink_error(path)
        if path.exists():
            views.append(fmt)
    found = attachments_beside(source, data)
    dictionaries = {rel: p for rel, p in found.items() if isinstance(p, Path)}
    missing = [rel for rel in dictionary_files(data) if rel not in found]
    return Incoming(source, raw, Certificate(data), read_json_beside(source / SIGNATURE_FILE),
                    tuple(views), dictionaries, missing)


def _warm_up_renderer() -> None:
    from .render.html import js_bundle

    js_bundle()


def release_slug(release: str) -> str:
    """A folder and URL-safe name for a release ('v1.3' stays 'v1.3')."""
    slug = _UNSAFE.sub("-", release).strip("-.") or "release"
    return slug[:100]


def _source_folder(cert_dir: Path) -> Path:
    if cert_dir.name == "certificate.json" and not cert_dir.is_dir():
        return cert_dir.parent
    if not cert_dir.is_dir():
        raise ArchiveError(f"{cert_dir}: not a folder; expected an audit's output folder")
    return cert_dir


def _release_name(incoming: Incoming) -> str:
    release = (incoming.cert.data.get("audit") or {}).get("release")
    if not isinstance(release, str) or not release.strip():
        raise ArchiveError(f"{incoming.source / 'certificate.json'}: audit.release is empty; "
                           "set audit.release in the spec to file the certificate in an "
                           "archive")
    return release


def _already_filed(archive_dir: Path, target: Path, release: str, incoming: Incoming,
                   replace: bool) -> bool:
    """True when ``target`` holds this very certificate (and signature); raise when it holds
    another release, or another certificate of this release without ``replace``."""
    earlier = _read_or_none(target / "certificate.json", MAX_BYTES)
    other = _release_in(earlier)
    if other is not None and other != release:
        raise ArchiveError(f"{target}: already holds release {other!r}, whose folder name "
                           f"is the same as {release!r}'s; rename one of the releases")
    if earlier == incoming.raw and _read_or_none(target / SIGNATURE_FILE, 2**20) == \
            incoming.signature:
        return True
    if not replace:
        what = (f"from another certificate (sha256 {_sha(earlier)[:16]}…)" if earlier
                else "but holds no readable certificate.json")
        raise ArchiveError(f"{target}: release {release!r} is already filed {what}; pass "
                           "--replace to file this certificate instead (the earlier filing "
                           f"is then kept in {archive_dir / REPLACED})")
    return False


def _read_or_none(path: Path, limit: int) -> bytes | None:
    try:
        return read_regular(path, limit)
    except (FileNotFoundError, InputError):
        return None


def _release_in(raw: bytes | None) -> str | None:
    try:
        release = (parse_json(raw or b"").get("audit") or {}).get("release")
    except (BadJSON, AttributeError):
        return None
    return release if isinstance(release, str) else None


def _sha(raw: bytes | None) -> str:
    return hashlib.sha256(raw or b"").hexdigest()


def _file(archive_dir: Path, target: Path, incoming: Incoming, views: dict[str, bytes]
          ) -> tuple[Path | None, list[str]]:
    """Stage the release, render the index that includes it, then move both into place."""
    stage = Path(tempfile.mkdtemp(prefix=f".stage-{target.name}-", dir=target.parent))
    try:
        _fill(stage, incoming, views)
        filed, skipped = scan_releases(archive_dir)
        others = [r for r in filed if r.slug != target.name]
        html = render_index(by_date([*others, release_of(stage, incoming.cert.data,
                                                         target.name)]))
        moved = _swap_in(stage, target, archive_dir)
        try:
            write_index(archive_dir, html)
        except BaseException:
            _swap_back(stage, target, moved)
            raise
    except OSError as e:
        raise ArchiveError(f"{target}: cannot file the release ({e.strerror or e})") from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return moved, [why for slug, why in skipped if slug != target.name]


def _fill(stage: Path, incoming: Incoming, views: dict[str, bytes]) -> None:
    """Write the JSON as read, the signature, the rendered views and the dictionaries."""
    files = {"certificate.json": incoming.raw, SIGNATURE_FILE: incoming.signature,
             **{name: views.get(fmt) for name, fmt in VIEWS.items()}}
    for name, data in files.items():
        if data is not None:
            _write(stage / name, data)
    for rel, src in incoming.dictionaries.items():
        (stage / rel).parent.mkdir(parents=True, exist_ok=True)
        copy_regular(src, stage / rel)
    os.chmod(stage, 0o755)


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _swap_in(stage: Path, target: Path, archive_dir: Path) -> Path | None:
    """Rename ``stage`` to ``target``; an earlier filing there moves to ``replaced/``."""
    moved = None
    if target.exists() or target.is_symlink():
        moved = _aside(target, archive_dir / REPLACED)
        os.replace(target, moved)
    try:
        os.replace(stage, target)
    except BaseException:
        if moved is not None:
            os.replace(moved, target)
        raise
    return moved


def _swap_back(stage: Path, target: Path, moved: Path | None) -> None:
    with contextlib.suppress(OSError):
        os.replace(target, stage)
        if moved is not None:
            os.replace(moved, target)


def _aside(target: Path, folder: Path) -> Path:
    """A free name in ``folder`` for the earlier filing of ``target``: release and digest."""
    folder.mkdir(exist_ok=True)
    stem = f"{target.name}-{_sha(_read_or_none(target / 'certificate.json', MAX_BYTES))[:12]}"
    name, n = stem, 1
    while (folder / name).exists() or (folder / name).is_symlink():
        n += 1
        name = f"{stem}-{n}"
    return folder / name


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
