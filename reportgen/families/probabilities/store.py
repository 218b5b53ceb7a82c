"""A disk-backed stream of per-position rows, written and read block by block.

Why: comparing two models' next-token distributions needs both at every position, but a
50k-token vocabulary over 20,000 positions is 4 GB per model in float32. The base's capture
therefore streams what determines its distributions, its final hidden states (``kind:
hidden``, d floats per position; see :mod:`reportgen.families.probabilities.head`), and a
candidate's forward pass reads them back in the same order, block by block, so memory stays
near one block (plus one model and one LM head). The same format holds full
log-probability rows (``kind: logprobs``), which the tests use as the plain reference.

Layout: ``PATH`` holds the raw row-major blocks, back to back, and ``PATH.json`` a small
header (vocabulary size, dtype, rows per block, a SHA-256 per block and over the whole file).
Both are written under temporary names and renamed on ``close()``: a store whose header
exists is complete; a crash leaves only ``*.tmp`` files, never a half store that looks whole.
The reader checks each block's digest before handing it out, so corruption surfaces as
``StoreCorruptError`` instead of wrong metrics.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from reportgen.core.errors import ReportgenError

FORMAT = "reportgen-logprobs"
VERSION = 1
_DTYPES = {"float16": np.float16, "float32": np.float32}


class StoreError(ReportgenError):
    """A row store is missing, incomplete or used the wrong way."""


class StoreCorruptError(StoreError):
    """A store's bytes no longer match the digests written with it."""


def header_path(path: str | os.PathLike[str]) -> Path:
    return Path(f"{os.fspath(path)}.json")


class RowWriter:
    """Appends ``(n_positions, vocab_size)`` blocks; ``close()`` makes the store visible.

    Use as a context manager: an exception inside the ``with`` removes the temporary files,
    so an interrupted capture is never mistaken for a finished one.
    """

    def __init__(self, path: str | os.PathLike[str], vocab_size: int,
                 dtype: Any = np.float32, kind: str = "logprobs",
                 meta: dict[str, Any] | None = None) -> None:
        name = np.dtype(dtype).name
        if name not in _DTYPES:
            raise StoreError(f"dtype must be float16 or float32, not {name}")
        if vocab_size <= 0:
            raise StoreError(f"vocab_size must be positive, not {vocab_size}")
        self.path = Path(path)
        self.vocab_size = int(vocab_size)
        self.dtype = np.dtype(name)
        self.kind = kind
        self.meta = dict(meta or {})
        self._tmp = Path(f"{self.path}.tmp")
        self._file: Any = open(self._tmp, "wb")  # noqa: SIM115 (closed in close/abort)
        self._total = hashlib.sha256()
        self._rows: list[int] = []
        self._digests: list[str] = []

    def append(self, block: np.ndarray) -> None:
        """Write one block; rows are positions, columns the vocabulary."""
        if self._file is None:
            raise StoreError(f"{self.path}: writer already closed")
        arr = np.asarray(block)
        if arr.ndim != 2 or arr.shape[1] != self.vocab_size:
            raise StoreError(f"block shape {arr.shape} does not match (n, {self.vocab_size})")
        data = np.ascontiguousarray(arr, dtype=self.dtype).data
        self._file.write(data)
        self._total.update(data)
        self._digests.append(hashlib.sha256(data).hexdigest())
        self._rows.append(int(arr.shape[0]))

    def close(self) -> Path:
        """Flush, write the header, rename both into place; returns the data path."""
        if self._file is None:
            return self.path
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        header = {
            "format": FORMAT, "version": VERSION, "kind": self.kind,
            "vocab_size": self.vocab_size, "dtype": self.dtype.name,
            "block_rows": self._rows, "block_sha256": self._digests,
            "n_positions": sum(self._rows), "sha256": self._total.hexdigest(),
            "meta": self.meta,
        }
        hdr_tmp = Path(f"{header_path(self.path)}.tmp")
        hdr_tmp.write_text(json.dumps(header, indent=1), encoding="utf-8")
        os.replace(self._tmp, self.path)
        os.replace(hdr_tmp, header_path(self.path))  # last: its presence means complete
        return self.path

    def abort(self) -> None:
        """Drop everything written so far."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> RowWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class RowReader:
    """Iterates a finished store's blocks in write order, one block in memory at a time."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        hdr = header_path(self.path)
        if not hdr.is_file() or not self.path.is_file():
            raise StoreError(f"{self.path}: no complete row store here "
                             "(missing data or header; an interrupted capture leaves *.tmp)")
        try:
            h = json.loads(hdr.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise StoreCorruptError(f"{hdr}: unreadable header ({e})") from None
        if h.get("format") != FORMAT or h.get("version") != VERSION:
            raise StoreError(f"{hdr}: not a {FORMAT} v{VERSION} header")
        self.header: dict[str, Any] = h
        self.vocab_size = int(h["vocab_size"])
        self.dtype = np.dtype(h["dtype"])
        self.block_rows: list[int] = [int(r) for r in h["block_rows"]]
        self.kind: str = h.get("kind", "logprobs")
        self.meta: dict[str, Any] = h.get("meta", {})
        expected = self.n_positions * self.vocab_size * self.dtype.itemsize
        actual = self.path.stat().st_size
        if actual != expected:
            raise StoreCorruptError(f"{self.path}: {actual} bytes on disk, header says "
                                    f"{expected} (truncated or overwritten)")

    @property
    def n_positions(self) -> int:
        return sum(self.block_rows)

    @property
    def n_blocks(self) -> int:
        return len(self.block_rows)

    def __len__(self) -> int:
        return self.n_blocks

    def __iter__(self) -> Iterator[np.ndarray]:
        row_bytes = self.vocab_size * self.dtype.itemsize
        with open(self.path, "rb") as f:
            for i, rows in enumerate(self.block_rows):
                buf = bytearray(rows * row_bytes)
                if f.readinto(buf) != len(buf):
                    raise StoreCorruptError(f"{self.path}: block {i} is short")
                self._check(i, buf)
                yield np.frombuffer(buf, dtype=self.dtype).reshape(rows, self.vocab_size)

    def verify(self) -> None:
        """Re-hash the whole file (streaming); raises StoreCorruptError on a mismatch."""
        total = hashlib.sha256()
        with open(self.path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 24), b""):
                total.update(chunk)
        if total.hexdigest() != self.header["sha256"]:
            raise StoreCorruptError(f"{self.path}: SHA-256 does not match its header")

    def _check(self, i: int, buf: bytearray) -> None:
        if hashlib.sha256(buf).hexdigest() != self.header["block_sha256"][i]:
            raise StoreCorruptError(f"{self.path}: block {i} does not match its SHA-256 "
                                    "(the file was corrupted after it was written)")


def paired_blocks(base: Iterable[np.ndarray],
                  candidate: Iterable[np.ndarray]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Zip two block streams, refusing streams whose blocks do not line up position by position.

    Why: a silent misalignment (a different probe order or batch size between the two passes)
    would compare unrelated positions and still produce plausible-looking numbers.
    """
    it_b, it_c = iter(base), iter(candidate)
    for i, b in enumerate(it_b):
        c = next(it_c, None)
        if c is None:
            raise StoreError(f"candidate stream ended at block {i}; base has more blocks")
        if b.shape != c.shape:
            raise StoreError(f"block {i}: base shape {b.shape} != candidate shape {c.shape}")
        yield b, c
    if next(it_c, None) is not None:
        raise StoreError("candidate stream has more blocks than the base store")


def head_logits(model: Any, head: Any, hidden: Any) -> Any:
    """The model's own next-token logits from its last hidden states: the LM head, then what
    the model's forward does after it. Gemma 2 soft-caps (``final_logit_softcapping``),
    Cohere multiplies by ``logit_scale``, Granite divides by ``logits_scaling``; without
    these, the log-probabilities of such models would be silently wrong."""
    from reportgen.families.probabilities.head import apply_transform, logit_transform

    return apply_transform(head(hidden), logit_transform(model.config))


def model_logprob_blocks(model: Any, batches: Iterable[tuple[Any, Any]],
                         block_rows: int = 256) -> Iterator[np.ndarray]:
    """Next-token log-probabilities at every non-padding position of a causal LM, in blocks.

    ``batches`` yields ``(input_ids, attention_mask)`` tensors. The LM head is applied to at
    most ``block_rows`` positions at a time, so the (batch × length × vocab) logits tensor is
    never materialised: that tensor, not the model, is what would blow memory at a 50k vocab.
    Blocks are float32 ``(rows, V)``; the same batches give the same block boundaries.
    """
    import torch

    from reportgen.capture.forward import backbone

    head = model.get_output_embeddings()
    body = backbone(model)
    with torch.inference_mode():
        for ids, mask in batches:
            hidden = body(input_ids=ids, attention_mask=mask).last_hidden_state
            rows = hidden[mask.bool()]  # (n_valid, d), row-major over (text, position)
            for s in range(0, rows.shape[0], block_rows):
                logits = head_logits(model, head, rows[s:s + block_rows]).float()
                yield torch.log_softmax(logits, dim=-1).numpy()


def store_bytes(positions: int, vocab_size: int, hidden_size: int) -> int:
    """Bytes the base's store writes for ``positions`` scored positions of a model whose
    LM head scores ``vocab_size`` tokens from ``hidden_size`` wide states (the data file; its
    JSON header, under a kilobyte per block, is not counted). ``reportgen plan`` reads the
    store's size from here, so whoever changes the layout changes this with it; a test checks
    it against the file an audit writes. The base's final hidden states, d float32 per
    position (the head, V×d float32, is written once beside it and not counted here)."""
    del vocab_size  # bytes per position grow with the width, not the vocabulary
    return int(positions) * int(hidden_size) * 4
