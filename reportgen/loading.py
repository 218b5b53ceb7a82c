"""Load a resolved model and its tokenizer into memory (torch), one model at a time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .errors import ModelError
from .loadfiles import sealed_view
from .models import ResolvedModel

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_LOAD_ERRORS = (OSError, ValueError, RuntimeError, KeyError, TypeError, AttributeError,
                ImportError)


def load(rm: ResolvedModel) -> tuple[Any, Any]:
    """(model in eval mode, tokenizer). Derived variants are built from their source; an
    adapter is applied and merged, so callers see a plain transformers model."""
    import transformers as tf

    tf.utils.logging.set_verbosity_error()
    tf.utils.logging.disable_progress_bar()
    cls = {
        "causal-lm": tf.AutoModelForCausalLM,
        "masked-lm": tf.AutoModelForMaskedLM,
        "encoder": tf.AutoModel,
    }[rm.kind]
    path = _readable(rm)
    try:
        model = cls.from_pretrained(str(path), **_load_kwargs(rm))
        tok = tf.AutoTokenizer.from_pretrained(
            str(path), local_files_only=True, trust_remote_code=rm.options.trust_remote_code
        )
    except _LOAD_ERRORS as e:
        why = _first_line(e).replace(str(path), rm.source)
        raise ModelError(f"{rm.field}: cannot load {rm.source!r}: {why}") from None
    if rm.adapter_path is not None:
        model = apply_adapter(model, rm)
    model.eval()
    if rm.bits:
        derive_in_place(model, rm)
    else:
        _check_finite(model, rm)
    return model, tok


def _readable(rm: ResolvedModel) -> Path:
    """The folder the loader reads: only the files the digest hashed (see loadfiles)."""
    if rm.path is None:
        raise ValueError(f"{rm.name} has no folder to load")
    return sealed_view(rm.path, rm.files)


def derive_in_place(model: Any, rm: ResolvedModel) -> None:
    """Turn ``model``, loaded as ``rm``'s source, into ``rm`` (the same as :func:`load`
    would give): its weights rounded in place."""
    if not rm.bits:
        raise ValueError(f"{rm.name} is not a derived variant")
    quantize_roundtrip(model, rm.bits)
    _check_finite(model, rm)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _load_kwargs(rm: ResolvedModel) -> dict[str, Any]:
    """from_pretrained arguments: offline, dtype, placement, pickle and remote-code consent."""
    has_safetensors = rm.path is not None and any(rm.path.glob("*.safetensors"))
    kwargs: dict[str, Any] = {
        "local_files_only": True, "trust_remote_code": rm.options.trust_remote_code,
        "use_safetensors": has_safetensors or not rm.options.allow_pickle,
        "dtype": DTYPES[rm.options.dtype],
    }
    if rm.options.device == "auto":  # layers beyond GPU and RAM go to disk, not to an error
        import atexit
        import shutil
        import tempfile

        kwargs["device_map"] = "auto"
        kwargs["offload_folder"] = tempfile.mkdtemp(prefix="reportgen-offload-")
        atexit.register(shutil.rmtree, kwargs["offload_folder"], True)
    elif rm.options.device == "cuda":
        kwargs["device_map"] = {"": "cuda"}
    return kwargs


def apply_adapter(model: Any, rm: ResolvedModel) -> Any:
    """The PEFT adapter at ``rm.adapter_path`` applied to ``model`` and merged into it."""
    try:
        from peft import PeftModel
    except ImportError:
        raise ModelError(f"{_adapter_field(rm)}: applying an adapter needs the peft package "
                         "(pip install peft)") from None
    try:
        folder = rm.adapter_path
        if rm.adapter_digest is not None and folder is not None:
            folder = sealed_view(folder, [f.name for f in rm.adapter_digest.files])
        peft_model = PeftModel.from_pretrained(model, str(folder), is_trainable=False)
        return peft_model.merge_and_unload()
    except _LOAD_ERRORS as e:
        raise ModelError(f"{_adapter_field(rm)}: cannot apply adapter {rm.options.adapter!r} to "
                         f"{rm.source!r}: {_first_line(e)}") from None


def _adapter_field(rm: ResolvedModel) -> str:
    base = rm.field[: -len(".path")] if rm.field.endswith(".path") else rm.field
    return f"{base}.adapter"


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
    done: set[int] = set()
    for module in model.modules():
        w = getattr(module, "weight", None)
        if not isinstance(w, torch.nn.Parameter) or w.ndim != 2 or id(w) in done:
            continue
        done.add(id(w))
        dim = 0 if type(module).__name__ == "Conv1D" else 1
        w.copy_(absmax_roundtrip(w, bits, dim))


def absmax_roundtrip(w: torch.Tensor, bits: int, dim: int) -> torch.Tensor:
    """``w`` rounded to ``bits``-bit integers with one absmax scale per slice along ``dim``
    (``dim`` is reduced: 1 for rows as output channels, 0 for columns), then scaled back."""
    qmax = 2 ** (bits - 1) - 1
    scale = w.abs().amax(dim=dim, keepdim=True).clamp_min(1e-12) / qmax
    return torch.clamp(torch.round(w / scale), -qmax, qmax) * scale
