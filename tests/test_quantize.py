"""The int8/int4 noise floor: a per-output-channel absmax round-trip, Conv1D included."""

from __future__ import annotations

import numpy as np
import torch
from transformers.pytorch_utils import Conv1D

from reportgen.capture.loading import quantize_roundtrip


def _reference(w: np.ndarray, bits: int, axis: int) -> np.ndarray:
    qmax = 2 ** (bits - 1) - 1
    scale = np.abs(w).max(axis=axis, keepdims=True) / qmax
    return np.clip(np.round(w / scale), -qmax, qmax) * scale


def test_linear_embedding_and_conv1d_are_all_rounded() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Embedding(20, 8), torch.nn.Linear(8, 6), Conv1D(5, 6))
    before = [m.weight.detach().numpy().copy() for m in model]
    quantize_roundtrip(model, 8)
    after = [m.weight.detach().numpy() for m in model]
    np.testing.assert_allclose(after[0], _reference(before[0], 8, axis=1), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(after[1], _reference(before[1], 8, axis=1), rtol=1e-5, atol=1e-7)
    # Conv1D stores (in, out): its output channels are columns
    np.testing.assert_allclose(after[2], _reference(before[2], 8, axis=0), rtol=1e-5, atol=1e-7)
    for b, a in zip(before, after, strict=True):
        assert not np.array_equal(a, b)
        assert np.abs(a - b).max() <= np.abs(b).max() / 127 / 2 + 1e-6


def test_int4_is_coarser_than_int8() -> None:
    torch.manual_seed(1)
    lin8, lin4 = torch.nn.Linear(32, 32), torch.nn.Linear(32, 32)
    lin4.load_state_dict(lin8.state_dict())
    w = lin8.weight.detach().clone()
    quantize_roundtrip(lin8, 8)
    quantize_roundtrip(lin4, 4)
    assert (lin4.weight - w).abs().mean() > (lin8.weight - w).abs().mean()
