"""The certificate PDF as PDF/A-3 carrying its own JSON (and signature) as attachments.

Why: an auditor is often handed one file. PDF/A-3 is the archival PDF flavour that allows
embedded files, so the PDF can carry ``certificate.json`` (relationship ``Source``: the PDF is
rendered from it) and, when signed, ``certificate.sig.json``; ``reportgen verify cert.pdf``
then checks the PDF alone.

Writing is Typst's job (``templates/certificate.typ``, :mod:`reportgen.views.pdf`). Reading
uses a small extractor instead of a PDF library: it only has to find embedded-file streams,
including file specifications inside compressed object streams (as WeasyPrint, which wrote
the PDFs of reportgen before Typst, puts them). It reads
the objects in file order (a later definition wins, as in an incrementally updated PDF).

Why it is bounded: the PDF may be a vendor's. Every pattern has bounded repetition and every
search starts where the last one stopped (a crafted megabyte of digits or of ``/EF<<`` once
took minutes), so reading is linear in the file's size; everything it inflates, all streams
together, is capped at :data:`MAX_INFLATED` (three small streams once inflated to 1 GB).
:class:`ReadStats` counts both, so tests can check the bounds without a clock.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from reportgen.certificate.document import JSON_NAME
from reportgen.core.errors import InputError

MAX_INFLATED = 128 * 2**20  # all streams inflated while reading one PDF, together
MAX_PDF = 1024 * 2**20
MAX_FILESPEC = 64 * 1024  # a file specification dictionary is a few hundred bytes

_OBJ = re.compile(rb"(?<![0-9])([0-9]{1,10})\s{1,16}[0-9]{1,5}\s{1,16}obj\b")
_STREAM = re.compile(rb">>\s{0,16}stream(?:\r\n|\n|\r)")
_LENGTH = re.compile(rb"/Length\s{1,16}([0-9]{1,12})(\s{1,16}[0-9]{1,5}\s{1,16}R)?")
_FILESPEC = re.compile(rb"/Type\s{0,16}/Filespec\b")
_OBJSTM = re.compile(rb"/Type\s{0,16}/ObjStm\b")
_EF = re.compile(rb"/EF\s{0,16}<<")
_EF_REF = re.compile(rb"[^>]{0,256}?/(?:UF|F)\s{1,16}([0-9]{1,10})\s{1,16}[0-9]{1,5}\s{1,16}R")
_NAME = {key: re.compile(key + rb"\s{0,16}[(<]") for key in (rb"/UF", rb"/F")}
_STRING = re.compile(rb"\((?:\\.|[^\\)]){0,4096}\)|<[0-9A-Fa-f\s]{0,8192}>", re.S)


@dataclass
class ReadStats:
    """What reading one PDF cost: bytes inflated (all streams) and bytes searched."""

    inflated: int = 0
    scanned: int = 0


class AttachmentError(InputError):
    """A PDF without the attachment asked for, or one that cannot be read."""


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
        if Path(pdf_path).stat().st_size > MAX_PDF:
            raise AttachmentError(f"{pdf_path}: larger than {MAX_PDF // 2**20} MiB; not read")
        pdf = Path(pdf_path).read_bytes()
    except OSError as e:
        raise AttachmentError(f"{pdf_path}: cannot read the PDF ({e.strerror})") from None
    if not pdf.startswith(b"%PDF-"):
        raise AttachmentError(f"{pdf_path}: not a PDF file")
    try:
        return embedded_files(pdf)
    except (zlib.error, ValueError) as e:
        raise AttachmentError(f"{pdf_path}: cannot read the PDF's attachments ({e})") from None


def embedded_files(pdf: bytes, stats: ReadStats | None = None) -> dict[str, bytes]:
    """File name → content for each file specification whose stream can be decoded."""
    stats = stats if stats is not None else ReadStats()
    objects = _all_objects(pdf, stats)
    out: dict[str, bytes] = {}
    for body, _ in objects.values():
        if len(body) > MAX_FILESPEC or not _FILESPEC.search(body):
            continue
        stats.scanned += 4 * len(body)  # at most four linear searches of a small body
        ref, name = _ef_target(body), _file_name(body)
        target = objects.get(ref) if ref is not None else None
        if name is not None and target and target[1] is not None:
            out[name] = _decode_stream(target[0], target[1], stats)
    return out


def _ef_target(body: bytes) -> int | None:
    """The object number of the first /EF dictionary's file stream."""
    ef = _EF.search(body)
    ref = _EF_REF.match(body, ef.end()) if ef else None
    return int(ref.group(1)) if ref else None


def _file_name(body: bytes) -> str | None:
    """The first /UF string, else the first /F string."""
    for pattern in _NAME.values():
        m = pattern.search(body)
        token = _STRING.match(body, m.end() - 1) if m else None
        if token:
            return decode_string(token.group(0))
    return None


def pdf_objects(pdf: bytes) -> dict[int, tuple[bytes, bytes | None]]:
    """Object number → (dictionary text, raw stream data or None), as read for attachments."""
    return _all_objects(pdf, ReadStats())


def _all_objects(pdf: bytes, stats: ReadStats) -> dict[int, tuple[bytes, bytes | None]]:
    """Object number → (dictionary text, raw stream data or None), objects streams unpacked."""
    objects: dict[int, tuple[bytes, bytes | None]] = {}
    for num, body, stream in _top_level(pdf, stats):
        objects[num] = (body, stream)
        if stream is not None and _OBJSTM.search(body):
            text = _decode_stream(body, stream, stats)
            for inner, part in _object_stream(text, body):
                objects[inner] = (part, None)
    return objects


def _top_level(pdf: bytes, stats: ReadStats) -> Iterator[tuple[int, bytes, bytes | None]]:
    """Each ``N G obj … endobj`` in file order, stepping over stream data by its length.

    Linear: each search starts where the previous object ended, and the next ``endobj`` is
    looked up once and reused by every object that starts before it (objects hidden in a
    stream's data would otherwise each search to the same far ``endobj``)."""
    pos, endobj = 0, -1
    while m := _OBJ.search(pdf, pos):
        stats.scanned += m.end() - pos
        start = m.end()
        if endobj < start:
            found = pdf.find(b"endobj", start)
            endobj = len(pdf) if found < 0 else found
            stats.scanned += endobj - start
        end = endobj
        s = _STREAM.search(pdf, start, end)
        stats.scanned += (s.end() if s else end) - start
        if s is None:
            yield int(m.group(1)), pdf[start:end], None
            pos = end + 6
            continue
        body, data_start = pdf[start:s.start() + 2], s.end()
        length = _LENGTH.search(body)
        if length and not length.group(2):
            data_end = min(data_start + int(length.group(1)), len(pdf))
        else:  # an indirect /Length: fall back to the keyword
            data_end = pdf.find(b"endstream", data_start)
            data_end = len(pdf) if data_end < 0 else data_end
            stats.scanned += data_end - data_start
        yield int(m.group(1)), body, pdf[data_start:data_end]
        pos = max(data_end, start)
    stats.scanned += max(len(pdf) - pos, 0)  # the last search, which found nothing


def _object_stream(text: bytes, body: bytes) -> Iterator[tuple[int, bytes]]:
    """The objects packed in an object stream (PDF 1.5+), each as (number, text); their
    offsets must increase, so together they copy at most the stream once."""
    n = re.search(rb"/N\s{1,16}([0-9]{1,10})", body)
    first = re.search(rb"/First\s{1,16}([0-9]{1,10})", body)
    if not n or not first:
        raise ValueError("an object stream without /N or /First")
    base = int(first.group(1))
    head = [int(x) for x in text[:base].split() if x.isdigit() and len(x) <= 12]
    pairs = list(zip(head[0::2], head[1::2], strict=False))[:int(n.group(1))]
    offsets = [off for _, off in pairs] + [len(text) - base]
    if any(b < a for a, b in zip(offsets, offsets[1:], strict=False)) or offsets[-1] < 0:
        raise ValueError("an object stream whose offsets do not increase")
    for i, (num, offset) in enumerate(pairs):
        yield num, text[base + offset:base + offsets[i + 1]]


def _decode_stream(body: bytes, data: bytes, stats: ReadStats) -> bytes:
    """Stream data with FlateDecode undone (the only filter Typst and WeasyPrint use for these),
    within what is left of the :data:`MAX_INFLATED` budget."""
    filters = re.findall(rb"/(\w{1,32}Decode)\b", body)
    if not filters:
        return data
    if filters != [b"FlateDecode"] or b"/DecodeParms" in body:
        raise ValueError(f"unsupported stream filter {b' '.join(filters[:4]).decode()}")
    room = MAX_INFLATED - stats.inflated
    out = zlib.decompressobj().decompress(data, max(room, 0) + 1)
    stats.inflated += len(out)
    if len(out) > room:
        raise ValueError(f"its streams inflate to more than {MAX_INFLATED // 2**20} MiB in all")
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
