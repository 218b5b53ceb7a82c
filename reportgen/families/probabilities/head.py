"""The base model's LM head, carried from the base's capture to the candidates'.

Why: a next-token distribution is V numbers, but it is a fixed function of d numbers: the
final hidden state that the LM head reads. The base's capture therefore stores its hidden
states (d floats per scored position, :mod:`reportgen.families.probabilities.store`) and,
once, its head: the affine map (weight V × d, optional bias) plus the logit transforms the
model applies after it (Cohere's ``logit_scale``, Granite's ``logits_scaling``, Gemma 2's
``final_logit_softcapping``). A candidate's collector applies that head to the stored states
during its own pass, so both distributions meet in memory block by block and nothing
V-sized per position is ever written. Disk and I/O grow with d; the V-sized work is the two
heads and the fused statistics, as in a bare forward of both models.

The head is taken as the model applies it: a plain ``nn.Linear`` gives its weight and bias;
anything else (an adapter's LoRA on the head, a ``modules_to_save`` copy) is read out by
applying the module to the identity and to zero, so the stored map is what the module
computes. The collector then checks the stored head against the model's own
log-probabilities (:meth:`ProbabilityCollector._head_check`); a head that is not affine, or
a transform reportgen does not reproduce, makes the distributions "not available".

Stored as ``.npy`` (weight float32, bias float32), the transform in the capture's facts; the
SHA-256 of the weight and bias files joins the hidden store's digest in the key of every
candidate's capture, so a changed base head never reuses a stale comparison.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from reportgen.core.blobs import sha_file

#: rows of the identity pushed through a non-Linear head at a time (bounds the temporary)
_EYE_ROWS = 256


def logit_transform(config: Any) -> dict[str, float]:
    """What the model's forward does to the head's output, as numbers (JSON-able)."""
    out: dict[str, float] = {}
    for key, test in (("logit_scale", lambda v: v != 1), ("logits_scaling", lambda v: v != 1),
                      ("final_logit_softcapping", lambda v: v > 0)):
        v = getattr(config, key, None)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and test(v):
            out[key] = float(v)
    return out


def apply_transform(logits: Any, t: dict[str, float]) -> Any:
    """Scale, divide, soft-cap: in the order the models' forwards apply them."""
    import torch

    if "logit_scale" in t:
        logits = logits * t["logit_scale"]
    if "logits_scaling" in t:
        logits = logits / t["logits_scaling"]
    if "final_logit_softcapping" in t:
        cap = t["final_logit_softcapping"]
        logits = torch.tanh(logits / cap) * cap
    return logits


def affine_of(head: Any) -> tuple[Any, Any | None]:
    """(weight V × d, bias V or None) of the head as the module computes it, float32 CPU.
    An offloaded head (``device: auto``) is read where accelerate keeps it."""
    import torch

    from reportgen.capture.offload import execution_device, value

    w = getattr(head, "weight", None)
    if type(head) is torch.nn.Linear and w is not None:
        b = None if head.bias is None else value(head, "bias")
        return (value(head, "weight").detach().float().cpu().clone(),
                None if b is None else b.detach().float().cpu().clone())
    ref = next(head.parameters())
    dev = execution_device(head)
    d = int(w.shape[1]) if w is not None and w.ndim == 2 else int(ref.shape[-1])
    with torch.inference_mode():
        zero = head(torch.zeros(1, d, dtype=ref.dtype, device=dev)).float().cpu()[0]
        cols = [(head(torch.eye(d, dtype=ref.dtype, device=dev)[s:s + _EYE_ROWS])
                 .float().cpu() - zero) for s in range(0, d, _EYE_ROWS)]
    weight = torch.cat(cols).T.contiguous()
    return weight, (zero if bool(zero.abs().max() > 0) else None)


def save_head(weight: Any, bias: Any | None, folder: Path) -> tuple[dict[str, Path], str]:
    """Write the head's weight (and bias) as .npy under ``folder``; (files, digest)."""
    files = {"head_weight": folder / "head_weight.npy"}
    np.save(files["head_weight"], weight.numpy(), allow_pickle=False)
    if bias is not None:
        files["head_bias"] = folder / "head_bias.npy"
        np.save(files["head_bias"], bias.numpy(), allow_pickle=False)
    return files, head_digest(files)


def head_digest(files: dict[str, Path]) -> str:
    """One digest over the head's named arrays (a bias present or not changes it)."""
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + bytes.fromhex(sha_file(files[name])))
    return h.hexdigest()


class StoredHead:
    """The base's head as stored: the logits of hidden states, without the base model."""

    def __init__(self, weight: Any, bias: Any | None, transform: dict[str, float],
                 device: Any = None, dtype: Any = None) -> None:
        # the model's own dtype: a bfloat16 base's logits are computed as it computes them
        self.weight = weight.to(device=device, dtype=dtype or weight.dtype)
        self.bias = None if bias is None else bias.to(device=device, dtype=self.weight.dtype)
        self.transform = dict(transform)
        self.vocab, self.width = (int(n) for n in weight.shape)

    @classmethod
    def load(cls, files: dict[str, Path], transform: dict[str, float], device: Any = None,
             dtype: Any = None) -> StoredHead:
        import torch

        w = torch.from_numpy(np.load(files["head_weight"], allow_pickle=False))
        b = files.get("head_bias")
        bias = torch.from_numpy(np.load(b, allow_pickle=False)) if b is not None else None
        return cls(w, bias, transform, device, dtype)

    def logits(self, hidden: Any) -> Any:
        import torch

        x = hidden.to(device=self.weight.device, dtype=self.weight.dtype)
        return apply_transform(torch.nn.functional.linear(x, self.weight, self.bias),
                               self.transform)
