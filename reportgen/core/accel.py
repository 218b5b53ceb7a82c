"""Where the matmul-heavy analysis runs: the CPU's default path, or a torch device.

An audit whose models run on a GPU (``device: cuda``, or ``auto`` placing them on one) runs
its full-vocabulary k-NN, CKA and SAE encoding and training there too. The audit resolves
one analysis device from the models' placement (:func:`reportgen.capture.loading.
analysis_device`) and passes it down: ``None`` means the CPU's default path (exactly the
numbers of a CPU-only audit), a device string (``"cuda"``, or ``"cpu"`` in the tests, the same
code path as on a GPU) means torch on that device in float32 with float32 accumulation
(TF32 and reduced-precision reductions off, so a GPU does not trade digits for speed).

torch is imported inside the functions: core must not load a model library on import.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def exact_float32() -> Iterator[None]:
    """float32 matrix products accumulated in float32 (no TF32, no reduced-precision
    reductions) inside the block; the caller's settings come back afterwards."""
    import torch

    before = torch.get_float32_matmul_precision()
    reduced = torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction
    torch.set_float32_matmul_precision("highest")
    torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = False
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(before)
        torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = reduced


def matmul(a: Any, b: Any, device: str) -> Any:
    """``a @ b`` of two float64 numpy arrays, computed on ``device`` in float32 with float32
    accumulation; returned as float64 numpy. Inputs are expected centred or normalised
    already (done in float64 by the caller), so float32 keeps ~7 significant digits."""
    import numpy as np
    import torch

    with exact_float32(), torch.inference_mode():
        ta = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(device)
        tb = torch.from_numpy(np.ascontiguousarray(b, dtype=np.float32)).to(device)
        return (ta @ tb).cpu().numpy().astype(np.float64)
