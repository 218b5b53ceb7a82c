"""The signature appended to the certificate PDF as an incremental update, and checked there.

Why an incremental update: the signed statement names the PDF's digest so that ``verify``
can vouch for the pages a reader sees, and the PDF carries that signature so that it can be
verified alone. A file cannot hold a signature over its own final bytes; PDF's answer, the
one PDF digital signatures use, is an incremental update. The PDF is rendered (with
``certificate.json`` attached) and hashed, the statement naming that digest is signed, and
:func:`append_signature` appends a section that adds one attachment, ``certificate.sig.json``,
and changes nothing else.

:func:`signed_pdf_problem` checks it the other way round: it finds the section of the file
whose digest was signed, rebuilds the appended section from it and the signature with the
same code, and requires the whole file to match byte for byte. So nothing but the signature
was added after signing (an update that redrew a page would not match), and nothing of the
signed section can change without changing its digest. It parses only a section whose
digest was signed; the rest of a hostile file is hashed and compared, never interpreted.
"""

from __future__ import annotations

import hashlib
import re

from reportgen.release.pdfattach import AttachmentError, pdf_objects
from reportgen.release.signing import SIGNATURE_FILENAME

_STARTXREF = re.compile(rb"startxref\s+(\d+)\s+%%EOF\s*\Z")
_EOF = re.compile(rb"%%EOF(?:\r\n|\r|\n)?")
_REF = rb"(\d+)\s+(\d+)\s+R"
_ID = rb"/ID\s*\[[^\]]*\]"
_MODDATE = re.compile(rb"/ModDate\s*\((D:[^)]*)\)")
_NAMES = re.compile(rb"(/Names\s*\[)([^\]]*)(\])")
_AF = re.compile(rb"/AF\s*\[([^\]]*)\]")
DESCRIPTION = b"DSSE envelope: in-toto statement signing certificate.json"


def append_signature(pdf: bytes, signature: bytes) -> bytes:
    """``pdf`` (a reportgen PDF with ``certificate.json`` attached) with ``signature``
    appended as ``certificate.sig.json`` in one incremental update.

    Deterministic: the same PDF and signature give the same bytes (the attachment's date is
    the one the JSON attachment already has). Raises ValueError for a PDF this code did not
    render (no trailer it can read, no embedded-file name tree).
    """
    trailer, classic = _trailer(pdf)
    size = _int(rb"/Size\s+(\d+)", trailer)
    root = re.search(rb"/Root\s+" + _REF, trailer)
    if root is None:
        raise ValueError("the trailer names no /Root")
    objects = pdf_objects(pdf)
    catalog_num = int(root.group(1))
    catalog = _body(objects, catalog_num)
    ef, fs = size, size + 1
    changed = {ef: _embedded_file(signature, _date(objects)), fs: _filespec(ef)}
    tree = re.search(rb"/EmbeddedFiles\s+" + _REF, catalog)
    if tree is not None:
        changed[int(tree.group(1))] = _add_name(_body(objects, int(tree.group(1))), fs)
    elif re.search(rb"/EmbeddedFiles\s*<<", catalog):
        catalog = _add_name(catalog, fs)
    else:
        raise ValueError("the catalog has no embedded-file name tree")
    changed[catalog_num] = _add_af(catalog, fs)
    return _write_update(pdf, trailer, classic, changed, size)


def signed_pdf_problem(pdf: bytes, signature: bytes | None, digest: str) -> str | None:
    """None when ``pdf`` is the PDF whose SHA-256 is ``digest``, as signed, followed by
    nothing or by exactly :func:`append_signature` of ``signature``; otherwise what differs."""
    ends = [m.end() for m in _EOF.finditer(pdf)][-3:]
    for end in reversed(ends):
        if hashlib.sha256(pdf[:end]).hexdigest() != digest:
            continue
        if end == len(pdf):
            return None
        try:
            expected = append_signature(pdf[:end], signature) if signature else None
        except (ValueError, AttachmentError):
            expected = None
        if expected == pdf:
            return None
        return (f"its signed pages are followed by {len(pdf) - end} bytes that are not just "
                "the signature (an update appended after signing can redraw any page)")
    return (f"its pages are not the ones signed: no part of the file has the signed SHA-256 "
            f"{digest} (the PDF was changed or re-rendered after signing)")


# ---------------------------------------------------------------------------- internals


def _trailer(pdf: bytes) -> tuple[bytes, bool]:
    """The last trailer dictionary (classic ``trailer`` or cross-reference stream), and
    whether it is classic."""
    m = _STARTXREF.search(pdf, max(0, len(pdf) - 64))
    if m is None:
        raise ValueError("the PDF does not end with startxref and %%EOF")
    at = int(m.group(1))
    if pdf.startswith(b"xref", at):
        t = re.compile(rb"trailer\s*(<<.*?>>)\s*startxref", re.S).search(pdf, at)
        if t is None:
            raise ValueError("no trailer after the cross-reference table")
        return t.group(1), True
    s = re.compile(rb"\d+\s+\d+\s+obj\s*(<<.*?>>)\s*stream", re.S).match(pdf, at)
    if s is None or b"/XRef" not in s.group(1):
        raise ValueError("startxref points at no cross-reference stream")
    return s.group(1), False


def _int(pattern: bytes, text: bytes) -> int:
    m = re.search(pattern, text)
    if m is None:
        raise ValueError(f"the trailer has no {pattern[:5].decode()}")
    return int(m.group(1))


def _body(objects: dict[int, tuple[bytes, bytes | None]], num: int) -> bytes:
    if num not in objects or objects[num][1] is not None:
        raise ValueError(f"object {num} is missing or a stream")
    return objects[num][0].strip()


def _date(objects: dict[int, tuple[bytes, bytes | None]]) -> bytes:
    """The modification date of the PDF's first embedded file (the JSON's)."""
    for body, _ in objects.values():
        if b"/EmbeddedFile" in body and (m := _MODDATE.search(body)):
            return m.group(1)
    return b"D:19700101000000Z"


def _embedded_file(data: bytes, date: bytes) -> bytes:
    md5 = hashlib.md5(data, usedforsecurity=False).hexdigest().encode()
    return (b"<</Type /EmbeddedFile/Subtype /application#2Fjson/Params <</Size %d/CreationDate "
            b"(%s)/ModDate (%s)/CheckSum <%s>>>/Length %d>>\nstream\n%s\nendstream"
            % (len(data), date, date, md5, len(data), data))


def _filespec(ef: int) -> bytes:
    name = SIGNATURE_FILENAME.encode()
    return (b"<</Type /Filespec/F (%s)/UF (%s)/EF <</F %d 0 R/UF %d 0 R>>/Desc (%s)"
            b"/AFRelationship /Supplement>>" % (name, name, ef, ef, DESCRIPTION))


def _add_name(text: bytes, fs: int) -> bytes:
    """``text`` with ``(certificate.sig.json) fs 0 R`` appended to its first /Names array
    (after ``certificate.json``, so the name tree stays sorted)."""
    entry = b"(%s) %d 0 R" % (SIGNATURE_FILENAME.encode(), fs)
    anchor = text.find(b"/EmbeddedFiles")
    m = _NAMES.search(text, max(anchor, 0))
    if m is None or b"/Kids" in text[max(anchor, 0):m.start()]:
        raise ValueError("the embedded-file name tree is not one flat /Names array")
    return text[:m.end(2)] + b" " + entry + text[m.start(3):]


def _add_af(catalog: bytes, fs: int) -> bytes:
    """The catalog with the new file specification added to its /AF (associated files)."""
    m = _AF.search(catalog)
    if m is not None:
        return catalog[:m.end(1)] + b" %d 0 R" % fs + catalog[m.end(1):]
    end = catalog.rfind(b">>")
    return catalog[:end] + b"/AF [%d 0 R]" % fs + catalog[end:]


def _write_update(pdf: bytes, trailer: bytes, classic: bool, changed: dict[int, bytes],
                  size: int) -> bytes:
    """``pdf`` + the objects in ``changed`` + a cross-reference section of the same kind as
    the PDF's own, chained to it with /Prev and carrying its /Root, /Info and /ID."""
    prev = _STARTXREF.search(pdf, max(0, len(pdf) - 64))
    if prev is None:
        raise ValueError("the PDF does not end with startxref and %%EOF")
    out = bytearray(pdf if pdf.endswith(b"\n") else pdf + b"\n")
    offsets = {}
    for num in sorted(changed):
        offsets[num] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (num, changed[num])
    carried = [re.search(p, trailer) for p in (rb"/Root\s+" + _REF, rb"/Info\s+" + _REF, _ID)]
    keys = b"".join(m.group(0) for m in carried if m) + b"/Prev %s" % prev.group(1)
    write = _classic_xref if classic else _xref_stream
    return bytes(out) + write(len(out), offsets, size + 2, keys)


def _subsections(nums: list[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for n in nums:
        if runs and runs[-1][-1] == n - 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return runs


def _classic_xref(at: int, offsets: dict[int, int], size: int, keys: bytes) -> bytes:
    table = b"xref\n"
    for run in _subsections(sorted(offsets)):
        table += b"%d %d\n" % (run[0], len(run))
        table += b"".join(b"%010d 00000 n\r\n" % offsets[n] for n in run)
    return table + b"trailer\n<</Size %d%s>>\nstartxref\n%d\n%%%%EOF\n" % (size, keys, at)


def _xref_stream(at: int, offsets: dict[int, int], size: int, keys: bytes) -> bytes:
    """A cross-reference stream (object ``size``), listing itself too."""
    offsets = {**offsets, size: at}
    runs = _subsections(sorted(offsets))
    index = b" ".join(b"%d %d" % (r[0], len(r)) for r in runs)
    rows = b"".join(b"\x01" + offsets[n].to_bytes(4, "big") + b"\x00\x00"
                    for r in runs for n in r)
    return (b"%d 0 obj\n<</Type /XRef/Size %d%s/Index [%s]/W [1 4 2]/Length %d>>\nstream\n"
            b"%s\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n"
            % (size, size + 1, keys, index, len(rows), rows, at))
