"""Weight drift of one (base, candidate) pair, read from the checkpoint files: no forward pass.

An adapter candidate's weights are merged from its files (``merge_and_unload`` semantics); the
int8/int4 noise floor is the base's tensors rounded as the variant was, in the dtype it loads
in. What cannot be reproduced from the files makes the family "not available", with why.
"""

from __future__ import annotations

from typing import Any

from reportgen.core.family import PairContext, PairResult
from reportgen.core.records import MetricValue


def quantize_transform(bits: int, dtype: str = "float32"):
    """The weight round-trip of :func:`reportgen.capture.loading.quantize_roundtrip`, applied
    to a
    tensor as stored in safetensors: every 2-D ``.weight``; GPT-2 ``Conv1D`` weights are
    stored (in, out), so their output channels are columns (absmax over dim 0).

    The variant rounds the weights as loaded, in the spec's ``dtype``, so the round-trip runs
    in that dtype too (a bfloat16 checkpoint loaded as float32, or the reverse, rounds
    differently), and the stored tensor is moved by exactly what it changed: the drift is
    the rounding noise alone, never the dtype conversion."""
    import torch

    from reportgen.capture.loading import DTYPES, absmax_roundtrip

    load = DTYPES[dtype]

    conv1d = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight",
              "mlp.c_proj.weight", "crossattention.c_attn.weight",
              "crossattention.c_proj.weight", "crossattention.q_attn.weight")

    def transform(name: str, w: torch.Tensor) -> torch.Tensor:
        if w.ndim != 2 or not name.endswith("weight"):
            return w
        dim = 0 if name.endswith(conv1d) else 1
        loaded = w.to(load)
        moved = absmax_roundtrip(loaded, bits, dim).double() - loaded.double()
        return w.double() + moved

    return transform

def _weights(base_model: Any, m: Any
             ) -> tuple[dict[str, MetricValue], dict[str, list[dict]], str | None]:
    """Weight drift of ``m`` against the base, each as loaded (an adapter merged)."""
    from reportgen.core.errors import ModelError
    from reportgen.families.weights.adapters import NotReproduced, model_source
    from reportgen.families.weights.metrics import not_available, weight_drift_metrics

    if base_model.path is None or m.path is None:
        return {}, {}, f"{m.name}: weight drift skipped (no local checkpoint folder)"
    transform = quantize_transform(m.bits, m.options.dtype) if m.bits else None
    try:
        sources = []
        for x in (base_model, m):
            try:
                sources.append(model_source(x.path, x.adapter_path, x.kind,
                                            x.options.trust_remote_code))
            except NotReproduced as e:
                raise NotReproduced(f"the adapter of {x.name} cannot be merged from its "
                                    f"files: {e}") from None
        wm, wt = weight_drift_metrics(*sources, transform)
    except NotReproduced as e:
        return not_available(str(e)), {}, f"{m.name}: weight drift not available: {e}."
    except ModelError as e:
        return {}, {}, f"{m.name}: weight drift skipped ({e})"
    return wm, wt, None


def analyse(ctx: PairContext) -> PairResult | None:
    if not ctx.spec.analysis.weights:
        return None
    metrics, tables, warning = _weights(ctx.base_model, ctx.model)
    return PairResult(metrics, tables, [warning] if warning else [])
