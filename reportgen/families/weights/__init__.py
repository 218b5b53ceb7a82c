"""Weight drift per tensor, block and module type, read from the checkpoint files."""

from __future__ import annotations

from reportgen.core.family import Family, headline, lazy
from reportgen.families.weights import metrics as _metrics  # noqa: F401  (metric names)

FAMILY = Family(
    name="weights",
    title="Weight drift",
    intro=("Read straight from the checkpoint files, without running the models: for each weight "
           "tensor, the Frobenius norm of its change divided by the norm of the base tensor, and "
           "the same over each block and module type."),
    tables=("weights_tensors", "weights_blocks", "weights_unmatched"),
    pair=lazy(f"{__name__}.pair", "analyse"),
    view=lazy(f"{__name__}.view", "view"),
    headline=headline("weights.relative_drift.global", "relative weight change",
                      vs_floor=True),
    keywords=("weight drift", "weight tensor", "safetensors"),
    glossary=(("Weight drift", "‖W_candidate − W_base‖ / ‖W_base‖ for a weight tensor (Frobenius "
               "norm): the size of the change relative to the size of the weights."),),
)
