"""The audit's size before it runs (``reportgen plan``), from configs and tokenizers alone.

Per model: parameters (built on the meta device: :mod:`reportgen.capture.sizes`), the tokens
it reads, the positions whose next-token distributions are compared, the capture it writes
to the cache, the probabilities store (the base's only: its hidden states, sized by the store's
own :func:`~reportgen.families.probabilities.store.store_bytes`, and its LM head, V×d float32
written once), and the V×V work of the full-vocabulary neighbourhoods. The peak memory is an
estimate, stated as its parts: the largest model's weights, one batch's hidden states of every
layer, one LM-head block of logits, the stored base head (a float32 copy and one in the
model's dtype), and the capture's pooled arrays; the analysis after capture holds no model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
FLOAT = 4  # captured arrays are float32


@dataclass(frozen=True)
class ModelCost:
    name: str
    kind: str
    parameters: int
    weight_bytes: int
    tokens: int
    scored_positions: int
    capture_bytes: int
    store_bytes: int
    knn_flops: int
    peak_bytes: int


@dataclass(frozen=True)
class AuditPlan:
    models: tuple[ModelCost, ...]

    @property
    def disk_bytes(self) -> int:
        return sum(m.capture_bytes + m.store_bytes for m in self.models)

    @property
    def knn_flops(self) -> int:
        return sum(m.knn_flops for m in self.models)

    @property
    def peak_bytes(self) -> int:
        """Models load one at a time: the largest one's capture sets the peak."""
        return max((m.peak_bytes for m in self.models), default=0)

    def lines(self) -> list[str]:
        head = (f"{'model':<16}{'kind':<11}{'parameters':>14}{'weights':>11}{'tokens':>10}"
                f"{'scored':>10}{'capture':>11}{'store':>11}{'V×V work':>12}")
        rows = [f"{m.name[:15]:<16}{m.kind:<11}{m.parameters:>14,}{size(m.weight_bytes):>11}"
                f"{m.tokens:>10,}{m.scored_positions:>10,}{size(m.capture_bytes):>11}"
                f"{size(m.store_bytes):>11}{flops(m.knn_flops):>12}" for m in self.models]
        return [head, *rows,
                f"disk: {size(self.disk_bytes)} (capture cache and probabilities store); "
                f"V×V work: {flops(self.knn_flops)}; expected peak memory: "
                f"{size(self.peak_bytes)} (the largest model's weights, one batch's hidden "
                "states of every layer, one LM-head block, the stored base head, the pooled "
                "arrays)"]


def size(n: int) -> str:
    """Bytes in binary units: '512 B', '1.5 KiB', '3.8 GiB'."""
    v, unit = float(n), "B"
    for u in ("KiB", "MiB", "GiB", "TiB"):
        if v < 1024:
            break
        v, unit = v / 1024, u
    return f"{int(v)} B" if unit == "B" else f"{v:.1f} {unit}"


def flops(n: int) -> str:
    """FLOPs with an SI prefix: '0 FLOP', '2.1 GFLOP', '134.6 TFLOP'."""
    v, unit = float(n), "FLOP"
    for u in ("kFLOP", "MFLOP", "GFLOP", "TFLOP", "PFLOP"):
        if v < 1000:
            break
        v, unit = v / 1000, u
    return f"{int(v)} FLOP" if unit == "FLOP" else f"{v:.1f} {unit}"


def plan_audit(loaded: Any, probe: Any) -> AuditPlan:
    """The plan of a spec loaded with its models (``load_spec(..., models=True)``)."""
    from reportgen.capture.sizes import model_sizes

    a, spec = loaded.spec.analysis, loaded.spec
    dtypes = {"base": spec.models.base.dtype, **{c.name: c.dtype for c in spec.models.candidates}}
    out: list[ModelCost] = []
    for m in loaded.facts.models:
        s = model_sizes(m.folder, m.kind, probe.all_texts, a.max_length, m.trust_remote_code)
        out.append(model_cost(m.name, m.kind, dtypes.get(m.name, "float32"), s, probe, a,
                              is_base=m.at == ("models", "base")))
    for c in loaded.spec.models.candidates:  # a derived variant costs what its source does
        if c.derive is not None:
            src = next((x for x in out if x.name == c.derive.from_), None)
            if src is not None:
                out.append(ModelCost(c.name, src.kind, *_as_candidate(src)))
    return AuditPlan(tuple(out))


def _as_candidate(src: ModelCost) -> tuple[Any, ...]:
    return (src.parameters, src.weight_bytes, src.tokens, src.scored_positions,
            src.capture_bytes, 0, src.knn_flops, src.peak_bytes)


def model_cost(name: str, kind: str, dtype: str, s: Any, probe: Any, a: Any,
               is_base: bool) -> ModelCost:
    from reportgen.families.neighbors.knn import auto_chunk
    from reportgen.families.probabilities.collect import BLOCK_ROWS
    from reportgen.families.probabilities.shared import scored_groups
    from reportgen.families.probabilities.store import store_bytes

    rows = sorted(scored_groups(probe)) if s.head_rows else []
    if kind == "masked-lm":
        scored = sum(min(a.behavior.masked_positions, s.maskable_counts[r]) for r in rows)
    else:
        scored = sum(s.token_counts[r] for r in rows)
    layers = s.n_layers + 1 if a.layers == "all" else len(a.layers)
    pooled = 2 * layers * len(s.token_counts) * s.hidden_size * FLOAT
    capture = pooled + s.embedding_rows * s.hidden_size * FLOAT
    head = (s.head_rows * s.hidden_size + (s.head_rows if s.head_bias else 0)) * FLOAT
    store = store_bytes(scored, s.head_rows, s.hidden_size) + head if is_base and rows else 0
    v = s.embedding_rows
    full = a.neighborhoods.tokens == "full-vocabulary"
    knn = 2 * v * v * s.hidden_size if full else 0
    weights = s.parameters * DTYPE_BYTES[dtype]
    longest = max(s.token_counts, default=0)
    batch = min(a.batch_size, len(s.token_counts)) * longest * s.hidden_size * (
        s.n_layers + 1) * DTYPE_BYTES[dtype]
    head_block = BLOCK_ROWS * s.head_rows * FLOAT * 2  # logits and log-softmax of a block
    analysis = auto_chunk(v) * v * FLOAT if full else 0
    # the stored head: read as float32 on the CPU, then held on the model's device in its dtype
    stored_head = head + s.head_rows * s.hidden_size * DTYPE_BYTES[dtype] if rows else 0
    peak = weights + batch + head_block + stored_head + capture + analysis
    return ModelCost(name, kind, s.parameters, weights, sum(s.token_counts), scored, capture,
                     store, knn, peak)
