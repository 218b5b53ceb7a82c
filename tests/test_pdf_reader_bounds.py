"""The PDF attachment reader on crafted input: linear work, a cap on everything it inflates.

Bounds are asserted on what the reader counts (bytes searched, bytes inflated), never on a
clock: each crafted file below once took minutes or a gigabyte.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import pytest

from reportgen.cli import commands as cli
from reportgen.release import pdfattach
from reportgen.release.pdfattach import ReadStats, embedded_files

MB = 1_000_000


def _pdf(*objects: bytes) -> bytes:
    """A minimal PDF made of the given ``N 0 obj … endobj`` bodies, numbered from 1."""
    out = b"%PDF-1.7\n"
    for i, body in enumerate(objects, start=1):
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    return out + b"trailer\n<< /Root 1 0 R >>\n%%EOF\n"


def _stream(data: bytes, flate: bool = True) -> bytes:
    packed = zlib.compress(data, 9) if flate else data
    kind = b" /Filter /FlateDecode" if flate else b""
    return (b"<< /Type /EmbeddedFile /Length %d%s >>\nstream\n" % (len(packed), kind)
            + packed + b"\nendstream")


def _filespec(name: bytes, stream_obj: int) -> bytes:
    return (b"<< /Type /Filespec /F (%s) /UF (%s) /EF << /F %d 0 R /UF %d 0 R >> >>"
            % (name, name, stream_obj, stream_obj))


def test_a_handmade_pdf_reads_back() -> None:
    """The crafted files below are built the same way as this one, which reads correctly."""
    pdf = _pdf(_filespec(b"certificate.json", 2), _stream(b'{"a": 1}'),
               _filespec(b"notes.txt", 4), _stream(b"plain", flate=False))
    assert embedded_files(pdf) == {"certificate.json": b'{"a": 1}', "notes.txt": b"plain"}


CRAFTED = {
    "a megabyte of digits": b"%PDF-1.7\n" + b"7" * MB,
    "digits and spaces": b"%PDF-1.7\n" + b"1 " * (MB // 2),
    "objects hidden in stream data": _pdf(b"<< /Length 0 >>\nstream\n" + b"1 0 obj " * (MB // 8)),
    "objects without endobj": b"%PDF-1.7\n" + b"1 0 obj << " * (MB // 11),
    "a file spec of /EF<<": _pdf(b"<< /Type /Filespec " + b"/EF<<" * (MB // 5)),
    "small file specs of /EF<<": b"".join(
        _pdf(b"<< /Type /Filespec " + b"/EF<<" * 2000) for _ in range(MB // 10_100)),
    "a file spec of /UF(": _pdf(b"<< /Type /Filespec " + b"/UF(" * (MB // 4)),
    "small file specs of /F(": b"".join(
        _pdf(b"<< /Type /Filespec " + b"/F(" * 3000) for _ in range(MB // 9_100)),
    "indirect lengths without endstream": b"%PDF-1.7\n"
    + b"1 0 obj << /Length 9 0 R >>\nstream\n" * (MB // 36),
}


@pytest.mark.parametrize("name", list(CRAFTED))
def test_crafted_input_is_read_in_linear_work(name: str) -> None:
    pdf = CRAFTED[name]
    stats = ReadStats()
    assert embedded_files(pdf, stats) == {}
    assert len(pdf) <= stats.scanned <= 5 * len(pdf)  # each byte searched a few times
    assert stats.inflated == 0


def test_three_small_streams_stop_at_the_inflate_budget(monkeypatch, tmp_path: Path,
                                                        capsys) -> None:
    """Three attachments of ~1 kB that inflate to 600 kB each, against a 1 MiB budget (the
    real one is 128 MiB): the third is refused and no more than the budget is inflated."""
    monkeypatch.setattr(pdfattach, "MAX_INFLATED", 2**20)
    bomb = _stream(b"\0" * 600_000)
    assert len(bomb) < 1_000
    objects = []
    for i, name in enumerate((b"a", b"b", b"certificate.json")):
        objects += [_filespec(name, 2 * i + 2), bomb]
    pdf = _pdf(*objects)
    stats = ReadStats()
    with pytest.raises(ValueError, match="its streams inflate to more than 1 MiB in all"):
        embedded_files(pdf, stats)
    assert stats.inflated <= 2**20 + 1
    path = tmp_path / "certificate.pdf"
    path.write_bytes(pdf)
    assert cli.main(["verify", str(path)]) == 2
    assert capsys.readouterr().err == (f"error: {path}: cannot read the PDF's attachments (its "
                                       "streams inflate to more than 1 MiB in all)\n")


def test_object_streams_are_inflated_within_the_budget(monkeypatch) -> None:
    """A file spec packed in an object stream reads; an object stream that inflates past the
    budget, or whose offsets go backwards, is refused."""
    monkeypatch.setattr(pdfattach, "MAX_INFLATED", 2**20)
    doc = json.dumps({"a": 1}).encode()
    stream_obj = b"2 0 obj\n" + _stream(doc) + b"\nendobj\n"

    def objstm(header: bytes, objects: bytes, n: int) -> bytes:
        packed = zlib.compress(header + objects)
        return (b"%%PDF-1.7\n3 0 obj\n<< /Type /ObjStm /N %d /First %d /Length %d /Filter "
                b"/FlateDecode >>\nstream\n" % (n, len(header), len(packed)) + packed
                + b"\nendstream\nendobj\n" + stream_obj)

    spec = _filespec(b"certificate.json", 2)
    assert embedded_files(objstm(b"1 0 ", spec, 1)) == {"certificate.json": doc}
    stats = ReadStats()
    with pytest.raises(ValueError, match="its streams inflate to more than 1 MiB in all"):
        embedded_files(objstm(b"1 0 ", spec + b" " * (2 * 2**20), 1), stats)
    assert stats.inflated <= 2**20 + 1
    with pytest.raises(ValueError, match="an object stream whose offsets do not increase"):
        embedded_files(objstm(b"1 10 4 0 ", spec, 2))
