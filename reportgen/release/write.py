"""Write a certificate's views (JSON, HTML, PDF) into an output folder, all or nothing.

Every format is rendered in memory first, so a rendering failure touches no file. The bytes
are then staged in a temporary folder next to the output folder and moved into place with
``os.replace``; if a move fails, files already moved are rolled back to their previous
versions. A reader of the folder sees either the old set of files or the new one.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reportgen.certificate.document import Certificate
from reportgen.certificate.schema import CertificateError
from reportgen.core.errors import OutputError
from reportgen.core.records import STATUS_ORDER, overall_verdict
from reportgen.views import owned as owned_files

FILENAMES = {"json": "certificate.json", "html": "certificate.html", "pdf": "certificate.pdf",
             "model-card": "model-card.md"}
SIGNATURE_FILE = "certificate.sig.json"

__all__ = ["FILENAMES", "copy_synced", "render_outputs", "write_outputs"]


def write_outputs(cert: Certificate, out_dir: Path, formats: list[str],
                  signature: bytes | None = None, page_size: str = "A4",
                  attachments: dict[str, Path | bytes] | None = None,
                  owned: tuple[str, ...] = (), sign: Path | None = None) -> dict[str, Path]:
    """Render ``formats`` (json, html, pdf, model-card) and move them into ``out_dir``
    atomically; a ``signature`` (certificate.sig.json bytes) joins the same batch and is
    appended to the PDF. ``sign`` (an Ed25519 private key) makes that signature once the
    views are rendered, so that it names their digests too (see
    :func:`reportgen.release.signing.sign_certificate`). ``page_size`` (A4 or Letter) is the printed
    page size.
    ``attachments`` (``{"folder/sub/file": bytes or a file to copy}``, e.g. trained
    dictionaries) join the batch too; ``owned`` names top-level folders that belong to the
    certificate: the files an earlier save wrote there (its manifest) and this one does not
    are removed, and no other file in them is touched.

    Returns the path written per format and per attachment folder. Raises
    :class:`OutputError` when the folder cannot be created or written (permissions, a file
    in the way, a full disk).
    """
    out_dir = Path(out_dir)
    attachments = attachments or {}
    if sign is not None:
        payloads = render_outputs(cert, formats, None, page_size)
        signature = _sign(cert, payloads, sign)
    else:
        payloads = render_outputs(cert, formats, signature, page_size)
    if signature is not None:
        payloads["signature"] = signature
    folders = _check_attachments(attachments, owned)
    created = _ensure_folder(out_dir)
    try:
        _commit(payloads, out_dir, attachments, owned)
    except OSError as e:
        if created:
            _remove_if_empty(out_dir)
        raise _output_error(out_dir, e, payloads, attachments) from e
    return {**{fmt: out_dir / _filename(fmt) for fmt in payloads},
            **{name: out_dir / name for name in folders}}


def _check_attachments(attachments: dict[str, Path | bytes], owned: tuple[str, ...]
                       ) -> list[str]:
    """The top-level folders the attachments fill; a bad name is a programming error."""
    tops = []
    taken = {*FILENAMES, *FILENAMES.values(), "signature", SIGNATURE_FILE}
    for name in attachments:
        parts = Path(name).parts
        if (len(parts) < 2 or Path(name).is_absolute() or ".." in parts or parts[0] in taken
                or parts[0] not in owned):
            raise ValueError(f"attachment {name!r}: expected a relative path inside one of "
                             f"the folders {owned}")
        tops.append(parts[0])
    return list(dict.fromkeys(tops))


def _sign(cert: Certificate, payloads: dict[str, bytes], key: Path) -> bytes:
    """Sign ``cert`` and the views just rendered, then append the signature to the PDF
    (whose digest is of the PDF as rendered, before the signature: see pdfsign)."""
    from reportgen.release.pdfsign import append_signature
    from reportgen.release.signing import sign_certificate

    views = {FILENAMES[fmt]: data for fmt, data in payloads.items() if fmt != "json"}
    signature = sign_certificate(cert, key, views)
    if "pdf" in payloads:
        payloads["pdf"] = append_signature(payloads["pdf"], signature)
    return signature


def _filename(fmt: str) -> str:
    return SIGNATURE_FILE if fmt == "signature" else FILENAMES[fmt]


def render_outputs(cert: Certificate, formats: list[str],
                   signature: bytes | None = None, page_size: str = "A4") -> dict[str, bytes]:
    """Each requested format's bytes, in the order asked; nothing touches the disk."""
    unknown = [f for f in formats if f not in FILENAMES]
    if unknown:
        raise ValueError(
            f"unknown output format {unknown[0]!r}; expected one of: {', '.join(FILENAMES)}"
        )
    check_verdict(cert)
    from reportgen.core.progress import current
    from reportgen.views import rendercache
    from reportgen.views.svgpool import SvgPool

    text = cert.to_json()
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    out: dict[str, bytes] = {}
    wanted = list(dict.fromkeys(formats))
    with SvgPool() as pool, current().counter("rendering", len(wanted)) as advance:
        early = None  # the PDF's charts convert in a worker while the other views render
        if "html" in wanted and not rendercache.has_view("html", digest, page_size):
            from reportgen.views.vega import start_bundle

            start_bundle(pool)
        if "pdf" in wanted and not rendercache.has_view("pdf", digest, page_size):
            from reportgen.views.pdf import prepare_pdf

            early = prepare_pdf(cert, page_size, pool)
        for fmt in sorted(wanted, key=lambda f: f == "pdf"):
            out[fmt] = _render_one(cert, text, digest, fmt, signature, page_size, early)
            advance(1)
    return {fmt: out[fmt] for fmt in wanted}


def _render_one(cert: Certificate, text: str, digest: str, fmt: str,
                signature: bytes | None, page_size: str, early: Any = None) -> bytes:
    """One format's bytes; HTML and PDF kept per certificate digest (see views.rendercache)."""
    from reportgen.views import rendercache

    if fmt == "json":
        return text.encode("utf-8")
    if fmt == "model-card":
        from reportgen.views.modelcard import render_model_card

        return render_model_card(cert).encode("utf-8")
    view = rendercache.view(fmt, digest, page_size,
                            lambda: _render(cert, fmt, page_size, early))
    if fmt == "pdf" and signature is not None:
        from reportgen.release.pdfsign import append_signature

        view = append_signature(view, signature)
    return view


def _render(cert: Certificate, fmt: str, page_size: str, early: Any = None) -> bytes:
    if fmt == "html":
        from reportgen.views.html import render_html

        return render_html(cert, page_size).encode("utf-8")
    from reportgen.views.pdf import render_pdf

    return render_pdf(cert, page_size, early)


def check_verdict(cert: Certificate) -> None:
    """Every view shows ``verdict``: it must be the one the checks give (a banner saying PASS
    over failing checks is refused, however the certificate was made)."""
    checks = cert.data.get("checks")
    statuses = [c.get("status") for c in checks if isinstance(c, dict)] if isinstance(
        checks, list) else []
    if any(s not in STATUS_ORDER for s in statuses):
        raise CertificateError("certificate: a check has no status among "
                               f"{', '.join(STATUS_ORDER)}; refusing to render it")
    expected = overall_verdict(statuses)
    if cert.data.get("verdict") != expected:
        raise CertificateError(f"certificate: the verdict {cert.data.get('verdict')!r} is not "
                               f"the worst check status {expected!r}; refusing to render it")


# ---------------------------------------------------------------------------- internals


def _ensure_folder(out_dir: Path) -> bool:
    """Create the output folder if needed; True when this call created it."""
    if out_dir.is_dir():
        return False
    if out_dir.exists() or out_dir.is_symlink():
        raise OutputError(f"{out_dir}: output folder path is taken by a file; expected a folder")
    try:
        out_dir.mkdir(parents=True)
    except FileExistsError:
        return False
    except OSError as e:
        what = "a file in the way" if e.errno == errno.ENOTDIR else e.strerror or str(e)
        raise OutputError(f"{out_dir}: output folder cannot be created ({what})") from None
    return True


def _staging_folder(out_dir: Path) -> Path:
    """A private temp folder on the same filesystem: next to ``out_dir``, else inside it."""
    here = out_dir.resolve()
    parent = here.parent
    if parent != here and parent.stat().st_dev == here.stat().st_dev:
        try:
            return Path(tempfile.mkdtemp(prefix=f".{here.name}.reportgen-", dir=parent))
        except OSError:
            pass  # e.g. a read-only parent over a writable output folder
    return Path(tempfile.mkdtemp(prefix=".reportgen-", dir=out_dir))


def _commit(payloads: dict[str, bytes], out_dir: Path, attachments: dict[str, Path | bytes],
            owned: tuple[str, ...]) -> None:
    staging = _staging_folder(out_dir)
    try:
        staged = {_filename(fmt): _write_synced(staging / _filename(fmt), data)
                  for fmt, data in payloads.items()}
        for i, (name, data) in enumerate(attachments.items()):
            path = staging / f"attachment-{i}"
            if isinstance(data, bytes):
                _write_synced(path, data)
            else:
                copy_synced(Path(data), path)
            staged[name] = path
        remove = []
        for folder in owned:
            ours = [n for n in attachments if n.split("/", 1)[0] == folder]
            remove += [n for n in owned_files.written_before(out_dir, folder) if n not in ours]
            listing = f"{folder}/{owned_files.MANIFEST}"
            if ours:
                staged[listing] = _write_synced(staging / f"manifest-{folder}",
                                                owned_files.manifest(folder, ours))
            else:
                remove.append(listing)
        _swap_in(staged, out_dir, staging, remove)
        owned_files.prune(out_dir, remove)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_synced(path: Path, data: bytes) -> Path:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return path


def copy_synced(src: Path, dst: Path) -> None:
    """Copy the regular file ``src`` (never through a symbolic link) to ``dst`` and flush it
    to disk (before a rename makes it visible)."""
    from reportgen.core.untrusted import copy_regular

    copy_regular(src, dst)


def _swap_in(staged: dict[str, Path], out_dir: Path, staging: Path,
             remove: Sequence[str] = ()) -> None:
    """Move staged files into place (``{"trained-sae/layer2/cfg.json": staged file}``) and
    the regular files ``remove`` out of the way; on failure put every earlier one back."""
    done: list[tuple[Path, Path | None]] = []  # (target, where its previous file went)
    made: list[Path] = []
    backups = staging / ".previous"
    backups.mkdir()
    try:
        for name in remove:
            target = out_dir / name
            if target.is_file() and not target.is_symlink() and _real_parents(out_dir, name):
                done.append((target, backups / str(len(done))))
                os.replace(target, done[-1][1])
        for name, src in staged.items():
            target = out_dir / name
            made += owned_files.make_parents(out_dir, name)
            if target.is_dir() and not target.is_symlink():
                raise OutputError(f"{target}: is a folder; expected the certificate's file")
            backup = backups / str(len(done)) if target.exists() or target.is_symlink() else None
            if backup is not None:
                os.replace(target, backup)
            done.append((target, backup))
            os.replace(src, target)
    except BaseException:  # an OSError, or Ctrl-C between two moves: undo, then re-raise
        _undo(done, made)
        raise


def _real_parents(out_dir: Path, name: str) -> bool:
    here = out_dir
    for part in Path(name).parts[:-1]:
        here = here / part
        if here.is_symlink():
            return False
    return True


def _undo(done: list[tuple[Path, Path | None]], made: list[Path]) -> None:
    for target, backup in reversed(done):
        with contextlib.suppress(OSError):
            if backup is None or backup.exists() or backup.is_symlink():
                if target.exists() or target.is_symlink():
                    target.unlink()  # ours, moved in by this batch
                if backup is not None:
                    os.replace(backup, target)
    for folder in reversed(made):
        with contextlib.suppress(OSError):
            folder.rmdir()


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):
        folder.rmdir()


def _output_error(out_dir: Path, e: OSError, payloads: dict[str, bytes],
                  attachments: dict[str, Path | bytes]) -> OutputError:
    """One line naming the folder and what was expected of it."""
    reason = e.strerror or str(e)
    if e.errno == errno.ENOSPC:
        sizes = [len(b) for b in payloads.values()] + [
            len(a) if isinstance(a, bytes) else _size(a) for a in attachments.values()]
        mb = sum(sizes) / 1e6
        return OutputError(
            f"{out_dir}: no space left on the device for the certificate "
            f"(needs about {max(mb, 0.1):.1f} MB free)"
        )
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return OutputError(f"{out_dir}: output folder is not writable ({reason})")
    return OutputError(f"{out_dir}: cannot write the certificate files ({reason})")


def _size(path: Path) -> int:
    try:
        return Path(path).stat().st_size
    except OSError:
        return 0
