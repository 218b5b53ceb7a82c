"""The certificate PDF as PDF/A-3 carrying its own JSON (and signature) as attachments.

Why: an auditor is often handed one file. PDF/A-3 is the archival PDF flavour that allows
embedded files, so the PDF can carry ``certificate.json`` (relationship ``Source``: the PDF is
rendered from it) and, when signed, ``certificate.sig.json``; ``reportgen verify cert.pdf``
then checks the PDF alone.

Writing is WeasyPrint's job (:func:`pdf_options` gives the ``write_pdf`` arguments). Reading
uses a small extractor instead of a PDF library: it only has to find embedded-file streams,
including the file specifications WeasyPrint puts inside compressed object streams. It reads
the objects in file order (a later definition wins, as in an incrementally updated PDF) and
caps every decompressed stream, so a hostile PDF cannot exhaust memory.
"""

from __future__ import annotations

import datetime as dt
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .certificate import Certificate
from .errors import InputError
from .signing import SIGNATURE_FILENAME

PDF_VARIANT = "pdf/a-3b"
JSON_NAME = "certificate.json"
MAX_STREAM = 256 * 1024 * 1024

_OBJ = re.compile(rb"(\d+)\s+\d+\s+obj\b")
_STREAM = re.compile(rb">>\s*stream(?:\r\n|\n|\r)")
_LENGTH = re.compile(rb"/Length\s+(\d+)(\s+\d+\s+R)?")
_FILESPEC = re.compile(rb"/Type\s*/Filespec\b")
_EF = re.compile(rb"/EF\s*<<[^>]*?/(?:UF|F)\s+(\d+)\s+\d+\s+R")
_STRING = rb"(\((?:\\.|[^\\)])*\)|<[0-9A-Fa-f\s]*>)"
_UF = re.compile(rb"/UF\s*" + _STRING, re.S)
_F = re.compile(rb"/F\s*" + _STRING, re.S)


class AttachmentError(InputError):
    """A PDF without the attachment asked for, or one that cannot be read."""


# ------------------------------------------------------------------------------ writing


def pdf_options(cert: Certificate, signature: bytes | None = None) -> dict[str, Any]:
    """Keyword arguments for ``weasyprint.Document.write_pdf``: PDF/A-3b plus attachments.

    The attachments' dates are the certificate's ``created`` time (not now), so the same
    certificate gives the same PDF bytes.
    """
    return {"pdf_variant": PDF_VARIANT, "attachments": attachments(cert, signature)}


def attachments(cert: Certificate, signature: bytes | None = None) -> list[Any]:
    """``weasyprint.Attachment`` objects for the JSON and, when given, its signature."""
    import weasyprint

    when = created_time(cert)
    files = [(JSON_NAME, cert.to_json().encode("utf-8"),
              "The alignment certificate (JSON) this PDF was rendered from", "Source")]
    if signature is not None:
        files.append((SIGNATURE_FILENAME, signature,
                      "DSSE envelope: in-toto statement signing certificate.json",
                      "Supplement"))
    return [weasyprint.Attachment(string=data, name=name, description=desc, created=when,
                                  modified=when, relationship=rel)
            for name, data, desc, rel in files]


def created_time(cert: Certificate) -> dt.datetime:
    """The certificate's ``audit.created`` as a UTC datetime (the epoch when unreadable)."""
    raw = str((cert.data.get("audit") or {}).get("created") or "")
    try:
        t = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


# ------------------------------------------------------------------------------ reading


def extract_json(pdf_path: Path) -> bytes:
    """The certificate JSON attached to a reportgen PDF, byte for byte."""
    found = read_attachments(pdf_path)
    if JSON_NAME not in found:
        raise AttachmentError(f"{pdf_path}: no {JSON_NAME} is attached to this PDF "
                              "(re-render it with 'reportgen render' to attach it)")
    return found[JSON_NAME]


def read_attachments(pdf_path: Path) -> dict[str, bytes]:
    """Every embedded file in the PDF, by file name."""
    try:
        pdf = Path(pdf_path).read_bytes()
    except OSError as e:
        raise AttachmentError(f"{pdf_path}: cannot read the PDF ({e.strerror})") from None
    if not pdf.startswith(b"%PDF-"):
        raise AttachmentError(f"{pdf_path}: not a PDF file")
    try:
        return embedded_files(pdf)
    except (zlib.error, ValueError) as e:
        raise AttachmentError(f"{pdf_path}: cannot read the PDF's attachments ({e})") from None


def embedded_files(pdf: bytes) -> dict[str, bytes]:
    """File name → content for each file specification whose stream can be decoded."""
    objects = _all_objects(pdf)
    out: dict[str, bytes] = {}
    for body, _ in objects.values():
        if not _FILESPEC.search(body):
            continue
        ef, name = _EF.search(body), _UF.search(body) or _F.search(body)
        target = objects.get(int(ef.group(1))) if ef else None
        if name and target and target[1] is not None:
            out[decode_string(name.group(1))] = _decode_stream(target[0], target[1])
    return out


def pdf_objects(pdf: bytes) -> dict[int, tuple[bytes, bytes | None]]:
    """Object number → (dictionary text, raw stream data or None), as read for attachments."""
    return _all_objects(pdf)


def _all_objects(pdf: bytes) -> dict[int, tuple[bytes, bytes | None]]:
    """Object number → (dictionary text, raw stream data or None), objects streams unpacked."""
    objects: dict[int, tuple[bytes, bytes | None]] = {}
    for num, body, stream in _top_level(pdf):
        objects[num] = (body, stream)
        if stream is not None and re.search(rb"/Type\s*/ObjStm\b", body):
            for inner, text in _object_stream(_decode_stream(body, stream), body):
                objects[inner] = (text, None)
    return objects


def _top_level(pdf: bytes) -> Iterator[tuple[int, bytes, bytes | None]]:
    """Each ``N G obj … endobj`` in file order, stepping over stream data by its length."""
    pos = 0
    while m := _OBJ.search(pdf, pos):
        start = m.end()
        end = pdf.find(b"endobj", start)
        end = len(pdf) if end < 0 else end
        s = _STREAM.search(pdf, start, end)
        if s is None:
            yield int(m.group(1)), pdf[start:end], None
            pos = end + 6
            continue
        body, data_start = pdf[start:s.start() + 2], s.end()
        length = _LENGTH.search(body)
        if length and not length.group(2):
            data_end = data_start + int(length.group(1))
        else:  # an indirect /Length: fall back to the keyword
            data_end = pdf.find(b"endstream", data_start)
            data_end = len(pdf) if data_end < 0 else data_end
        yield int(m.group(1)), body, pdf[data_start:data_end]
        pos = max(data_end, start)


def _object_stream(text: bytes, body: bytes) -> Iterator[tuple[int, bytes]]:
    """The objects packed in an object stream (PDF 1.5+), each as (number, text)."""
    n = re.search(rb"/N\s+(\d+)", body)
    first = re.search(rb"/First\s+(\d+)", body)
    if not n or not first:
        raise ValueError("an object stream without /N or /First")
    head = [int(x) for x in text[:int(first.group(1))].split()]
    pairs = list(zip(head[0::2], head[1::2], strict=False))[:int(n.group(1))]
    base = int(first.group(1))
    for i, (num, offset) in enumerate(pairs):
        stop = pairs[i + 1][1] if i + 1 < len(pairs) else len(text) - base
        yield num, text[base + offset:base + stop]


def _decode_stream(body: bytes, data: bytes) -> bytes:
    """Stream data with FlateDecode undone (the only filter WeasyPrint uses for these)."""
    filters = re.findall(rb"/(\w+Decode)\b", body)
    if not filters:
        return data
    if filters != [b"FlateDecode"] or b"/DecodeParms" in body:
        raise ValueError(f"unsupported stream filter {b' '.join(filters).decode()}")
    inflater = zlib.decompressobj()
    out = inflater.decompress(data, MAX_STREAM)
    if inflater.unconsumed_tail:
        raise ValueError(f"a stream inflates to more than {MAX_STREAM // 2**20} MiB")
    return out


def decode_string(token: bytes) -> str:
    """A PDF string token, ``(literal)`` or ``<hex>``, as text (UTF-16 when it has a BOM)."""
    if token.startswith(b"<"):
        raw = bytes.fromhex(re.sub(rb"\s", b"", token[1:-1]).decode("ascii"))
    else:
        raw = _unescape(token[1:-1])
    if raw.startswith(b"\xfe\xff"):
        return raw[2:].decode("utf-16-be", errors="replace")
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8", errors="replace")
    return raw.decode("latin-1")


_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}


def _unescape(s: bytes) -> bytes:
    def one(m: re.Match[bytes]) -> bytes:
        esc = m.group(1)
        if esc[:1].isdigit():
            return bytes([int(esc, 8) & 0xFF])
        if esc[:1] in b"\r\n":
            return b""  # a line continuation
        return _ESCAPES.get(esc, esc)

    return re.sub(rb"\\([0-7]{1,3}|\r\n|.)", one, s, flags=re.S)
