"""Load a resolved model and its tokenizer into memory (torch), one model at a time."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

from reportgen.core.errors import ModelError
from reportgen.spec.loadfiles import sealed_view
from reportgen.spec.resolve import ResolvedModel, auto_class, check_adapter_weights

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_LOAD_ERRORS = (OSError, ValueError, RuntimeError, KeyError, TypeError, AttributeError,
                ImportError)


def load(rm: ResolvedModel) -> tuple[Any, Any]:
    """(model in eval mode, tokenizer). Derived variants are built from their source; an
    adapter is applied and merged, so callers see a plain transformers model."""
    import transformers as tf

    tf.utils.logging.set_verbosity_error()
    tf.utils.logging.disable_progress_bar()
    cls = auto_class(rm.kind)
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


def analysis_device(models: list[ResolvedModel]) -> str | None:
    """Where the audit's matmul-heavy analysis runs (see :mod:`reportgen.core.accel`):
    ``"cuda"`` when a model runs on a GPU (``device: cuda``, or ``auto`` with one present),
    else None, the CPU's default path. Resolved once, so every family and every model's
    sparse-feature encoding use the same device."""
    on_gpu = any(m.options.device == "cuda"
                 or (m.options.device == "auto" and torch.cuda.is_available()) for m in models)
    return "cuda" if on_gpu else None


def placement_summary(device_map: dict[str, Any]) -> str:
    """Where accelerate put a model's modules (its ``hf_device_map``), as one line: GPUs
    first, then the CPU, then the disk, whose modules are read back on every forward."""
    counts: dict[str, int] = {}
    for where in device_map.values():
        key = f"cuda:{where}" if isinstance(where, int) else str(where)
        counts[key] = counts.get(key, 0) + 1
    order = sorted(counts, key=lambda k: ({"cpu": 1, "disk": 2}.get(k, 0), k))
    parts = [f"{k} {counts[k]} module{'s' if counts[k] != 1 else ''}" for k in order]
    slow = " (modules on disk are read back on every forward: slow)" if "disk" in counts else ""
    return "placed by accelerate: " + ", ".join(parts) + slow


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
        if rm.options.max_memory:  # accelerate names a GPU by its index
            from reportgen.spec.types import memory_bytes

            kwargs["max_memory"] = {int(k[5:]) if k.startswith("cuda:") else k: memory_bytes(v)
                                    for k, v in rm.options.max_memory.items()}
    elif rm.options.device == "cuda":
        kwargs["device_map"] = {"": "cuda"}
    return kwargs


def apply_adapter(model: Any, rm: ResolvedModel) -> Any:
    """The PEFT adapter at ``rm.adapter_path`` applied to ``model`` and merged into it.

    The weights are checked again right before PEFT reads them: it unpickles
    ``adapter_model.bin`` whenever ``adapter_model.safetensors`` is missing."""
    field = _adapter_field(rm)
    check_adapter_weights(rm.adapter_path, field, str(rm.options.adapter),
                          rm.options.allow_pickle, field[: -len("adapter")] + "allow_pickle")
    try:
        from peft import PeftModel
    except ImportError:
        raise ModelError(f"{field}: applying an adapter needs the peft package "
                         "(pip install peft)") from None
    try:
        folder = rm.adapter_path
        if rm.adapter_digest is not None and folder is not None:
            folder = sealed_view(folder, [f.name for f in rm.adapter_digest.files])
        with warnings.catch_warnings():  # PEFT's advice on training; what matters is checked
            warnings.simplefilter("ignore")
            peft_model = PeftModel.from_pretrained(model, str(folder), is_trainable=False)
            unused, missing = adapter_fit(peft_model, folder)
            if not unused and not missing:
                return peft_model.merge_and_unload()
    except _LOAD_ERRORS as e:
        raise ModelError(f"{field}: cannot apply adapter {rm.options.adapter!r} to "
                         f"{rm.source!r}: {_first_line(e)}") from None
    what = (f"{len(unused)} of its tensors match no module of the model (e.g. "
            f"{unused[0]})" if unused else
            f"{len(missing)} of the model's adapter tensors are not in its file (e.g. "
            f"{missing[0]})")
    raise ModelError(f"{field}: adapter {rm.options.adapter!r} does not fit {rm.source!r} "
                     f"({rm.architecture}): {what}, so PEFT would apply it only in part, "
                     "without an error")


def adapter_fit(peft_model: Any, folder: Any) -> tuple[list[str], list[str]]:
    """(adapter tensors PEFT did not load, adapter parameters it left at their initial
    values): PEFT only warns about the second and ignores the first, so an adapter saved
    for another model class (``h.0…`` for ``transformer.h.0…``) would change nothing."""
    from peft.utils import get_peft_model_state_dict
    from safetensors import safe_open

    from reportgen.spec.resolve import ADAPTER_WEIGHTS

    path = folder / ADAPTER_WEIGHTS
    if not path.is_file():  # pickle weights the spec allowed: no check without unpickling
        return [], []
    with safe_open(str(path), framework="pt") as h:
        saved = set(h.keys())  # noqa: SIM118 (not a dict)
    # a base layer's own tensors are saved or not depending on save_embedding_layers
    state = get_peft_model_state_dict(peft_model, save_embedding_layers=False)
    expected = {k for k in state if ".base_layer." not in k}
    saved = {k for k in saved if ".base_layer." not in k}
    return sorted(saved - expected), sorted(expected - saved)


def _adapter_field(rm: ResolvedModel) -> str:
    base = rm.field[: -len(".path")] if rm.field.endswith(".path") else rm.field
    return f"{base}.adapter"


def _check_finite(model: Any, rm: ResolvedModel) -> None:
    from reportgen.capture.offload import named_values

    for n, p in named_values(model):  # offloaded weights too, read where they live
        if not torch.isfinite(p).all():
            raise ModelError(f"{rm.field}: weights of {rm.source!r} contain NaN or Inf ({n})")


@torch.no_grad()
def quantize_roundtrip(model: Any, bits: int) -> None:
    """Per-output-channel absmax round-trip to ``bits`` and back, on every weight matrix.

    Unlike ``torch.ao.quantization.quantize_dynamic`` this also covers GPT-2's ``Conv1D``
    (whose weight is stored (in, out), so its output channels are columns) and embeddings.
    """
    from reportgen.capture import offload

    done: set[int] = set()
    for module in model.modules():
        w = getattr(module, "weight", None)
        if not isinstance(w, torch.nn.Parameter) or w.ndim != 2 or id(w) in done:
            continue
        done.add(id(w))
        dim = 0 if type(module).__name__ == "Conv1D" else 1
        # an offloaded weight (meta, its value in accelerate's weights map) is rounded there
        offload.write(module, "weight", absmax_roundtrip(offload.value(module, "weight"),
                                                         bits, dim))


def absmax_roundtrip(w: torch.Tensor, bits: int, dim: int) -> torch.Tensor:
    """``w`` rounded to ``bits``-bit integers with one absmax scale per slice along ``dim``
    (``dim`` is reduced: 1 for rows as output channels, 0 for columns), then scaled back."""
    qmax = 2 ** (bits - 1) - 1
    scale = w.abs().amax(dim=dim, keepdim=True).clamp_min(1e-12) / qmax
    return torch.clamp(torch.round(w / scale), -qmax, qmax) * scale
