"""Load a resolved model and its tokenizer into memory (torch), one model at a time."""

from __future__ import annotations

from typing import Any

import torch

from .errors import ModelError
from .models import ResolvedModel


def load(rm: ResolvedModel) -> tuple[Any, Any]:
    """(model in eval mode, tokenizer). Derived variants are built from their source."""
    import transformers as tf

    tf.utils.logging.set_verbosity_error()
    tf.utils.logging.disable_progress_bar()
    cls = {
        "causal-lm": tf.AutoModelForCausalLM,
        "masked-lm": tf.AutoModelForMaskedLM,
        "encoder": tf.AutoModel,
    }[rm.kind]
    try:
        model = cls.from_pretrained(
            str(rm.path), local_files_only=True, trust_remote_code=False,
            use_safetensors=True, dtype=torch.float32,
        )
        tok = tf.AutoTokenizer.from_pretrained(
            str(rm.path), local_files_only=True, trust_remote_code=False
        )
    except (OSError, ValueError, RuntimeError, KeyError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelError(f"{rm.field}: cannot load {rm.source!r}: {first}") from None
    model.eval()
    if rm.bits:
        quantize_roundtrip(model, rm.bits)
    _check_finite(model, rm)
    return model, tok


def _check_finite(model: Any, rm: ResolvedModel) -> None:
    for n, p in model.named_parameters():
        if not torch.isfinite(p).all():
            raise ModelError(f"{rm.field}: weights of {rm.source!r} contain NaN or Inf ({n})")


@torch.no_grad()
def quantize_roundtrip(model: Any, bits: int) -> None:
    """Per-output-channel absmax round-trip to ``bits`` and back, on every weight matrix.

    Unlike ``torch.ao.quantization.quantize_dynamic`` this also covers GPT-2's ``Conv1D``
    (whose weight is stored (in, out), so its output channels are columns) and embeddings.
    """
    qmax = 2 ** (bits - 1) - 1
    done: set[int] = set()
    for module in model.modules():
        w = getattr(module, "weight", None)
        if not isinstance(w, torch.nn.Parameter) or w.ndim != 2 or id(w) in done:
            continue
        done.add(id(w))
        dim = 0 if type(module).__name__ == "Conv1D" else 1
        scale = w.abs().amax(dim=dim, keepdim=True).clamp_min(1e-12) / qmax
        w.copy_(torch.clamp(torch.round(w / scale), -qmax, qmax) * scale)
