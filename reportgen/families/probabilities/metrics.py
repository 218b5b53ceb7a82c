"""Next-token distribution shift, base vs candidate, streamed block by block.

Why streamed: the per-position distributions of a 50k vocabulary are gigabytes, so both
models' log-probabilities exist only one block at a time, during the candidate's pass (the
base's from its stored hidden states and head, :mod:`reportgen.families.probabilities.head`);
``ShiftAccumulator`` keeps only per-position scalars, three vocabulary-sized vectors and the
top-N positions. All logs are natural (nats).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reportgen.core.names import definition, lookup, register
from reportgen.core.records import MetricValue
from reportgen.core.stats import ROUNDOFF, bootstrap_ci

POS = ("over every scored probe position (causal LMs: each non-padding position's next-token "
       "distribution; masked LMs: each masked position)")
LOGIT_SHIFT = ("mean over the vocabulary of |(l_c − mean l_c) − (l_b − mean l_b)|, l = "
               "log-probabilities (equal to logits once centred, so the softmax normaliser "
               "cancels), in nats")
register("probabilities.kl_base_candidate.mean",
         f"Mean KL(base‖candidate) = Σ p_b log(p_b/p_c) {POS}; natural log, nats.", unit="nats")
register("probabilities.kl_candidate_base.mean",
         f"Mean KL(candidate‖base) = Σ p_c log(p_c/p_b) {POS}; natural log, nats.", unit="nats")
register("probabilities.js.mean",
         f"Mean Jensen–Shannon divergence ½KL(p_b‖m) + ½KL(p_c‖m), m = (p_b+p_c)/2, {POS}; "
         "natural log (nats, at most ln 2), i.e. the square of scipy's jensenshannon distance.",
         unit="nats")
register("probabilities.entropy.base.mean",
         f"Mean entropy −Σ p_b log p_b of the base model's next-token distribution {POS}.",
         unit="nats", higher_is_worse=False)
register("probabilities.entropy.candidate.mean",
         f"Mean entropy −Σ p_c log p_c of the candidate's next-token distribution {POS}.",
         unit="nats", higher_is_worse=False)
register("probabilities.entropy_compression",
         "Base mean entropy minus candidate mean entropy; positive = the fine-tune became more "
         "confident (overconfidence when large).", unit="nats")
register("probabilities.top1_agreement",
         f"Share of positions where both models' most likely next token is the same, {POS}.",
         unit="share", higher_is_worse=False)
register("probabilities.logit_shift.mean",
         f"Mean over positions of the logit shift: {LOGIT_SHIFT}.", unit="nats")

KL_EDGES = (0.0, 1e-4, 1e-3, 1e-2, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, np.inf)
FLOOR = -1e4  # log-prob floor: keeps −inf (float16 underflow, masked tokens) out of the sums
_SUB = 128  # rows per internal step: bounds the temporaries whatever the block size
_STATS = ("kl_bc", "kl_cb", "js", "entropy_base", "entropy_candidate", "top1", "logit_shift")


@dataclass
class TopPosition:
    """One of the most affected positions: both models' top-5 next tokens (ids, probs)."""

    position: int
    group: str
    kl: float
    base_ids: list[int]
    base_probs: list[float]
    cand_ids: list[int]
    cand_probs: list[float]


def _tensor(x: Any) -> Any:
    """A torch view of ``x`` (numpy arrays are shared, not copied), in float32 or float64.

    Why torch: the streamed comparison runs once per block of a 50k vocabulary; numpy's
    float64 temporaries made it ~10× slower than the forward pass that produced the block.
    The dtype of the input is kept, so float64 callers (tests against scipy) stay exact and
    the capture's float32 blocks are compared in float32.
    """
    import torch

    t = torch.from_numpy(np.ascontiguousarray(x)) if isinstance(x, np.ndarray) else x
    if t.dtype not in (torch.float32, torch.float64):
        t = t.float()
    return t


def position_stats(base_lp: Any, cand_lp: Any) -> dict[str, np.ndarray]:
    """Per-row KL both ways, JS, entropies, top-1 agreement and logit shift (float64 out).

    Inputs are (n, V) log-probabilities (numpy or torch), processed in steps of rows so the
    temporaries stay a few tens of MB even for a 50k vocabulary.
    """
    lp_all, lq_all = _tensor(base_lp), _tensor(cand_lp)
    parts = [_step(lp_all[s:s + _SUB], lq_all[s:s + _SUB])[0]
             for s in range(0, lp_all.shape[0], _SUB)]
    if not parts:
        return {k: np.zeros(0) for k in _STATS}
    return {k: np.concatenate([p[k] for p in parts]) for k in _STATS}


def _step(lp: Any, lq: Any) -> tuple[dict[str, np.ndarray], tuple[Any, Any, Any]]:
    """Row statistics and the per-token sums (gained, net, centred shift) of one step.

    Written for few passes over the (rows × V) block: on a CPU every elementwise pass costs
    a sizeable share of the LM head that produced it. The row dot products (p and q
    against d = lp − lq, t = log σ(d), lp and lq) are one batched matmul over two stacked
    buffers; KL, entropies and JS follow from them:
    KL(p‖q) = p·d, KL(q‖p) = −q·d, H(p) = −p·lp, H(q) = −q·lq, and with
    log(p/m) = log 2 + t, log(q/m) = log 2 + t − d (m = (p + q)/2),
    JS = ½(log 2 (Σp + Σq) + p·t + q·t − q·d), every term small when p ≈ q."""
    import torch

    if lp.min() < FLOOR:
        lp = lp.clamp_min(FLOOR)
    if lq.min() < FLOOR:
        lq = lq.clamp_min(FLOOR)
    n, v = lp.shape
    pq, dtl = _buffers(n, v, lp.dtype)
    p, q = torch.exp(lp, out=pq[:, 0]), torch.exp(lq, out=pq[:, 1])
    d = torch.sub(lp, lq, out=dtl[:, 0])
    dtl[:, 1].copy_(torch.nn.functional.logsigmoid(d))  # its out= variant is slower here
    dtl[:, 2].copy_(lp)
    dtl[:, 3].copy_(lq)
    r = torch.bmm(pq, dtl.transpose(1, 2))  # (n, 2, 4): {p, q} · {d, t, lp, lq}
    sums = pq.sum(2)
    ln2 = float(np.log(2.0))
    st = {"kl_bc": r[:, 0, 0], "kl_cb": -r[:, 1, 0], "entropy_base": -r[:, 0, 2],
          "entropy_candidate": -r[:, 1, 3],
          "js": 0.5 * (ln2 * (sums[:, 0] + sums[:, 1]) + r[:, 0, 1] + r[:, 1, 1] - r[:, 1, 0]),
          "top1": (lp.argmax(1) == lq.argmax(1)).double()}
    mu = d.mean(1, keepdim=True)
    st["logit_shift"] = torch.sub(d, mu, out=dtl[:, 1]).abs_().mean(1)
    ones = torch.ones(1, n, dtype=lp.dtype)
    q.sub_(p)  # q − p: the mass each token gained at each position
    net = (ones @ q)[0]
    gained = (ones @ torch.clamp_min(q, 0.0, out=pq[:, 0]))[0]
    shift = -(ones @ d)[0] + mu.sum()  # Σ_rows of the centred (l_c − l_b)
    res = {k: v.double().numpy() for k, v in st.items()}
    for k in ("kl_bc", "kl_cb", "js"):
        res[k] = _nonneg(res[k])
    return res, (gained, net, shift)


_BUFFERS: dict[tuple[int, int, Any], tuple[Any, Any]] = {}


def _buffers(n: int, v: int, dtype: Any) -> tuple[Any, Any]:
    """The step's two stacked buffers, (n, 2, V) and (n, 4, V), kept for the next step of the
    same shape: a fresh allocation of this size is mapped and zeroed page by page by the OS
    at every step, which costs as much as a pass over it."""
    import torch

    key = (n, v, dtype)
    if key not in _BUFFERS:
        _BUFFERS.clear()  # one shape at a time: a capture's steps share one
        _BUFFERS[key] = (torch.empty(n, 2, v, dtype=dtype), torch.empty(n, 4, v, dtype=dtype))
    return _BUFFERS[key]


def _nonneg(x: np.ndarray) -> np.ndarray:
    """Divergences are ≥ 0; below float64 round-off they are reported as exactly 0."""
    return np.where(x < ROUNDOFF, 0.0, x)


@dataclass
class ShiftAccumulator:
    """Feed aligned (base, candidate) blocks; keeps what the aggregates need, nothing more."""

    vocab_size: int
    top_n: int = 20
    _stats: dict[str, list[np.ndarray]] = field(default_factory=dict)
    _groups: list[np.ndarray] = field(default_factory=list)
    gained: np.ndarray = field(init=False)
    lost: np.ndarray = field(init=False)
    shift_sum: np.ndarray = field(init=False)
    _top: list[tuple[float, int, TopPosition]] = field(default_factory=list)
    n: int = 0

    def __post_init__(self) -> None:
        self.gained = np.zeros(self.vocab_size)
        self.lost = np.zeros(self.vocab_size)
        self.shift_sum = np.zeros(self.vocab_size)  # Σ over positions of centred logit change

    def update(self, base_lp: Any, cand_lp: Any, groups: str | Sequence[str] = "all") -> None:
        """Add one block (numpy or torch); ``groups`` names the probe set of the block or of
        each row."""
        lp, lq = _tensor(base_lp), _tensor(cand_lp)
        if lp.shape != lq.shape or lp.shape[-1] != self.vocab_size:
            raise ValueError(f"blocks {tuple(lp.shape)} / {tuple(lq.shape)} do not line up "
                             f"with a vocabulary of {self.vocab_size}")
        if lp.dtype != lq.dtype:
            lp, lq = lp.double(), lq.double()
        rows = lp.shape[0]
        g = np.full(rows, groups, dtype=object) if isinstance(groups, str) else \
            np.asarray(list(groups), dtype=object)
        if g.shape != (rows,):
            raise ValueError(f"{len(g)} group labels for {rows} rows")
        parts = []
        for s in range(0, rows, _SUB):
            st_s, (gained, net, shift) = _step(lp[s:s + _SUB], lq[s:s + _SUB])
            parts.append(st_s)
            g64 = gained.double().numpy()
            self.gained += g64
            self.lost += g64 - net.double().numpy()
            self.shift_sum += shift.double().numpy()
        st = {k: np.concatenate([p[k] for p in parts]) for k in _STATS}
        for k, v in st.items():
            self._stats.setdefault(k, []).append(v)
        self._groups.append(g)
        self._keep_top(lp, lq, st["kl_bc"], g)
        self.n += rows

    def _keep_top(self, lp: Any, lq: Any, kl: np.ndarray, g: np.ndarray) -> None:
        for i in np.argsort(-kl, kind="stable")[: self.top_n]:
            pos = self.n + int(i)
            if len(self._top) >= self.top_n and kl[i] <= self._top[0][0]:
                break
            bi, bp = _top5(lp[int(i)])
            ci, cp = _top5(lq[int(i)])
            item = (float(kl[i]), -pos, TopPosition(pos, str(g[i]), float(kl[i]), bi, bp, ci, cp))
            if len(self._top) < self.top_n:
                heapq.heappush(self._top, item)
            else:
                heapq.heapreplace(self._top, item)

    def result(self) -> ProbabilityShift:
        """Freeze into per-position arrays plus the vocabulary vectors."""
        cat = {k: np.concatenate(self._stats.get(k, [np.zeros(0)])) for k in _STATS}
        groups = np.concatenate(self._groups) if self._groups else np.zeros(0, dtype=object)
        top = [t[2] for t in sorted(self._top, key=lambda t: (-t[0], -t[1]))]
        return ProbabilityShift(cat, groups, self.gained.copy(), self.lost.copy(),
                                self.shift_sum / max(self.n, 1), top)


def _top5(lp_row: Any, k: int = 5) -> tuple[list[int], list[float]]:
    row = np.asarray(_tensor(lp_row).double().numpy() if not isinstance(lp_row, np.ndarray)
                     else lp_row, dtype=np.float64)
    idx = np.argpartition(-row, k - 1)[:k] if row.size > k else np.arange(row.size)
    idx = idx[np.argsort(-row[idx], kind="stable")]
    return [int(i) for i in idx], [float(np.exp(row[i])) for i in idx]


@dataclass
class ProbabilityShift:
    """Per-position statistics (arrays of length n_positions) and per-token vectors (V)."""

    stats: dict[str, np.ndarray]
    groups: np.ndarray
    gained: np.ndarray  # Σ_positions max(p_c − p_b, 0) per token
    lost: np.ndarray  # Σ_positions max(p_b − p_c, 0) per token
    mean_logit_shift: np.ndarray  # mean over positions of the centred log-prob change
    top_positions: list[TopPosition]

    @property
    def n_positions(self) -> int:
        return int(self.stats["kl_bc"].size)


def shift_from_blocks(pairs: Iterable[tuple[np.ndarray, np.ndarray]], vocab_size: int,
                      groups: Sequence[str] | None = None, top_n: int = 20) -> ProbabilityShift:
    """Run an accumulator over ``(base, cand)`` block pairs; ``groups`` per block, optional."""
    acc = ShiftAccumulator(vocab_size, top_n)
    for i, (b, c) in enumerate(pairs):
        acc.update(b, c, "all" if groups is None else groups[i])
    return acc.result()


_HEADLINE = (
    ("probabilities.kl_base_candidate.mean", "kl_bc"),
    ("probabilities.kl_candidate_base.mean", "kl_cb"),
    ("probabilities.js.mean", "js"),
    ("probabilities.entropy.base.mean", "entropy_base"),
    ("probabilities.entropy.candidate.mean", "entropy_candidate"),
    ("probabilities.top1_agreement", "top1"),
    ("probabilities.logit_shift.mean", "logit_shift"),
)


def probability_metrics(shift: ProbabilityShift, *, n_boot: int, seed: int,
                        top_tokens: int = 25) -> tuple[dict[str, MetricValue], dict[str, list]]:
    """Headline metrics (bootstrap CIs on the means) and the tables behind them."""
    m: dict[str, MetricValue] = {}
    if shift.n_positions == 0:
        for name, _ in (*_HEADLINE, ("probabilities.entropy_compression", "")):
            m[name] = MetricValue(None, definition(name), _unit(name),
                                  error="no scored positions in the probes")
        return m, {}
    st = shift.stats
    for name, key in _HEADLINE:
        m[name] = MetricValue(float(st[key].mean()), definition(name), _unit(name),
                              bootstrap_ci(st[key], n_boot, seed))
    comp = st["entropy_base"] - st["entropy_candidate"]
    name = "probabilities.entropy_compression"
    m[name] = MetricValue(float(comp.mean()), definition(name), _unit(name),
                          bootstrap_ci(comp, n_boot, seed))
    tables = {
        "probe_sets": probe_set_rows(shift, n_boot, seed),
        "kl_histogram": kl_histogram_rows(shift),
        "entropy": entropy_rows(shift),
        "top_positions": [vars(t).copy() for t in shift.top_positions],
        "tokens_gained": token_rows(shift, top_tokens, gained=True),
        "tokens_lost": token_rows(shift, top_tokens, gained=False),
    }
    return m, tables


def _unit(name: str) -> str:
    info = lookup(name)
    return info.unit if info else ""


def _groups_with_all(shift: ProbabilityShift) -> list[tuple[str, np.ndarray]]:
    out = [("all", np.ones(shift.n_positions, dtype=bool))]
    names = sorted({str(g) for g in shift.groups})
    if names != ["all"]:
        out += [(g, shift.groups == g) for g in names]
    return out


def probe_set_rows(shift: ProbabilityShift, n_boot: int, seed: int) -> list[dict]:
    """One row per probe set (and 'all'): each statistic's mean with a bootstrap interval."""
    rows = []
    for g, sel in _groups_with_all(shift):
        row: dict = {"probe_set": g, "positions": int(sel.sum())}
        for key in _STATS:
            x = shift.stats[key][sel]
            row[key] = float(x.mean())
            row[f"{key}_ci"] = bootstrap_ci(x, n_boot, seed)
        comp = shift.stats["entropy_base"][sel] - shift.stats["entropy_candidate"][sel]
        row["entropy_compression"] = float(comp.mean())
        row["entropy_compression_ci"] = bootstrap_ci(comp, n_boot, seed)
        rows.append(row)
    return rows


def kl_histogram_rows(shift: ProbabilityShift) -> list[dict]:
    """Counts of per-position KL(base‖candidate) in log-spaced bins, per probe set."""
    rows = []
    for g, sel in _groups_with_all(shift):
        counts, _ = np.histogram(shift.stats["kl_bc"][sel], bins=np.asarray(KL_EDGES))
        total = max(int(sel.sum()), 1)
        for lo, hi, c in zip(KL_EDGES[:-1], KL_EDGES[1:], counts, strict=True):
            rows.append({"probe_set": g, "lo": float(lo), "hi": None if np.isinf(hi) else
                         float(hi), "count": int(c), "share": float(c) / total})
    return rows


def entropy_rows(shift: ProbabilityShift, width: float = 0.5) -> list[dict]:
    """Entropy before vs after: per-bin position counts of each model (bins of ``width`` nats)."""
    hb, hc = shift.stats["entropy_base"], shift.stats["entropy_candidate"]
    top = max(float(hb.max()), float(hc.max()), width)
    edges = np.arange(0.0, top + width, width)
    rows = []
    for g, sel in _groups_with_all(shift):
        cb, _ = np.histogram(hb[sel], bins=edges)
        cc, _ = np.histogram(hc[sel], bins=edges)
        for lo, hi, b, c in zip(edges[:-1], edges[1:], cb, cc, strict=True):
            rows.append({"probe_set": g, "lo": float(lo), "hi": float(hi),
                         "base": int(b), "candidate": int(c)})
    return rows


def token_rows(shift: ProbabilityShift, n: int, *, gained: bool) -> list[dict]:
    """Tokens with the most probability mass gained (or lost), summed over positions."""
    net = shift.gained - shift.lost
    order = np.argsort(-net if gained else net, kind="stable")[:n]
    return [{"token_id": int(t), "mass_gained": float(shift.gained[t]),
             "mass_lost": float(shift.lost[t]), "net_mass": float(net[t]),
             "net_mass_per_position": float(net[t]) / max(shift.n_positions, 1),
             "mean_logit_shift": float(shift.mean_logit_shift[t])} for t in order]
