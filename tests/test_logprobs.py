"""The log-probability store: round trip, atomic completion, corruption, bounded memory."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from reportgen.families.probabilities.store import (
    RowReader,
    RowWriter,
    StoreCorruptError,
    StoreError,
    header_path,
    paired_blocks,
)

SIZES = (5, 1, 17, 3)


def _blocks(v: int = 11, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(n, v)).astype(np.float32) for n in SIZES]


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_round_trip_keeps_blocks_and_order(tmp_path: Path, dtype) -> None:
    blocks = _blocks()
    with RowWriter(tmp_path / "s.bin", 11, dtype=dtype, meta={"model": "x"}) as w:
        for b in blocks:
            w.append(b)
    r = RowReader(tmp_path / "s.bin")
    assert r.block_rows == list(SIZES) and r.n_positions == sum(SIZES)
    assert r.meta == {"model": "x"} and r.dtype == np.dtype(dtype)
    got = list(r)
    for a, b in zip(got, blocks, strict=True):
        np.testing.assert_array_equal(a, b.astype(dtype))
    r.verify()


def test_interrupted_capture_leaves_no_store(tmp_path: Path) -> None:
    path = tmp_path / "s.bin"
    with pytest.raises(RuntimeError), RowWriter(path, 11) as w:
        w.append(_blocks()[0])
        raise RuntimeError("killed")
    assert not path.exists() and not header_path(path).exists()
    assert list(tmp_path.iterdir()) == []
    w2 = RowWriter(path, 11)
    w2.append(_blocks()[0])  # not closed yet: nothing visible under the final name
    assert not path.exists()
    with pytest.raises(StoreError, match="no complete"):
        RowReader(path)
    w2.close()
    assert RowReader(path).n_positions == SIZES[0]


def test_flipped_byte_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "s.bin"
    with RowWriter(path, 11) as w:
        for b in _blocks():
            w.append(b)
    raw = bytearray(path.read_bytes())
    raw[(SIZES[0] + 3) * 11 * 4 + 2] ^= 0x01  # inside block 2
    path.write_bytes(bytes(raw))
    r = RowReader(path)
    it = iter(r)
    next(it), next(it)  # blocks 0 and 1 are intact
    with pytest.raises(StoreCorruptError, match="block 2"):
        next(it)
    with pytest.raises(StoreCorruptError):
        r.verify()


def test_truncated_file_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "s.bin"
    with RowWriter(path, 11) as w:
        w.append(_blocks()[2])
    path.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(StoreCorruptError, match="bytes on disk"):
        RowReader(path)


def test_wrong_shapes_are_refused(tmp_path: Path) -> None:
    with RowWriter(tmp_path / "s.bin", 11) as w, pytest.raises(StoreError):
        w.append(np.zeros((3, 12)))
    a = [np.zeros((2, 3)), np.zeros((4, 3))]
    with pytest.raises(StoreError, match="block 1"):
        list(paired_blocks(a, [np.zeros((2, 3)), np.zeros((5, 3))]))
    with pytest.raises(StoreError, match="more blocks"):
        list(paired_blocks(a[:1], a))
    with pytest.raises(StoreError, match="ended"):
        list(paired_blocks(a, a[:1]))


def test_reading_holds_one_block_at_a_time(tmp_path: Path) -> None:
    rows, v, n = 64, 4096, 40  # 1 MiB per block, 40 MiB on disk
    path = tmp_path / "big.bin"
    block_bytes = rows * v * 4
    with RowWriter(path, v) as w:
        for i in range(n):
            w.append(np.full((rows, v), i, dtype=np.float32))
    tracemalloc.start()
    total = 0.0
    for i, block in enumerate(RowReader(path)):
        assert block[0, 0] == i
        total += float(block[-1, -1])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert total == sum(range(n))
    assert peak < 3 * block_bytes, f"peak {peak} bytes for {block_bytes}-byte blocks"
