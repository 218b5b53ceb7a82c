"""Linear CKA between base and candidate at every layer: where in the network the space moved.

Centred kernel alignment (Kornblith, Norouzi, Lee & Hinton 2019, "Similarity of Neural
Network Representations Revisited", ICML) compares two representations of the same n items
as a whole: invariant to orthogonal transforms and isotropic scaling, but not to arbitrary
invertible linear maps, so it tracks the geometry a fine-tune changes. 1 = same geometry.
"""

from __future__ import annotations

import numpy as np

from reportgen.core.names import MetricInfo, lookup, register
from reportgen.core.records import MetricValue

CKA = ("linear CKA (Kornblith et al. 2019): columns centred, ‖YᵀX‖_F² / (‖XᵀX‖_F ‖YᵀY‖_F), "
       "X, Y = base and candidate representations of the same items")
register(
    "cka.concepts.layer.{layer}",
    f"{CKA}; last-token hidden states of the concept prompts after block {{layer}} "
    "(0 = embedding output).", higher_is_worse=False,
)
register("cka.concepts.mean", "Mean over captured layers of the concepts' linear CKA.",
         higher_is_worse=False)
register("cka.concepts.min", "Lowest linear CKA of the concepts over captured layers.",
         higher_is_worse=False)


def _placeholder_supported(name: str) -> bool:
    """Whether the registry can match a pattern with this name's placeholders."""
    try:
        MetricInfo(name, "", "").pattern  # noqa: B018 (compiling is the check)
    except KeyError:
        return False
    return True


# Domain probes: one pattern per domain name; registered once the registry knows {domain}.
if _placeholder_supported("cka.domains.{domain}.layer.{layer}"):
    register(
        "cka.domains.{domain}.layer.{layer}",
        f"{CKA}; mean-pooled hidden states of the texts of domain {{domain}} after block "
        "{layer} (0 = embedding output).",
        higher_is_worse=False,
    )
    register("cka.domains.{domain}.mean",
             "Mean over captured layers of the linear CKA of domain {domain}.",
             higher_is_worse=False)
    register("cka.domains.{domain}.min",
             "Lowest linear CKA of domain {domain} over captured layers.",
             higher_is_worse=False)


def _centred(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"expected (items, features), got shape {x.shape}")
    return x - x.mean(axis=0, keepdims=True)


def _mm(a: np.ndarray, b: np.ndarray, device: str | None) -> np.ndarray:
    """``a @ b`` in float64 on the CPU (``device`` None), else on ``device`` in float32 with
    float32 accumulation (:func:`reportgen.core.accel.matmul`): the O(n²d) products are
    the heavy part; centring and the final sums stay float64 on the CPU."""
    if device is None:
        return a @ b
    from reportgen.core.accel import matmul

    return matmul(a, b, device)


def linear_cka(x: np.ndarray, y: np.ndarray, device: str | None = None) -> float:
    """Linear CKA of two (n, d) representations of the same n items (d may differ).

    Kornblith et al. 2019, eq. for the linear kernel: with column-centred X and Y,
    ``‖YᵀX‖_F² / (‖XᵀX‖_F ‖YᵀY‖_F)``. When n is smaller than the features it uses the
    equal Gram form ``⟨XXᵀ, YYᵀ⟩_F / (‖XXᵀ‖_F ‖YYᵀ‖_F)`` (n × n instead of d × d).
    NaN when either side has no variance (all rows equal): CKA is undefined there.
    ``device``: where the matrix products run (:func:`_mm`).
    """
    xc, yc = _centred(x), _centred(y)
    if xc.shape[0] != yc.shape[0]:
        raise ValueError(f"different item counts: {xc.shape[0]} vs {yc.shape[0]}")
    if xc.shape[0] < max(xc.shape[1], yc.shape[1]):
        k, l_ = _mm(xc, xc.T, device), _mm(yc, yc.T, device)
        num, den = np.sum(k * l_), np.linalg.norm(k) * np.linalg.norm(l_)
    else:
        num = np.linalg.norm(_mm(yc.T, xc, device)) ** 2
        den = np.linalg.norm(_mm(xc.T, xc, device)) * np.linalg.norm(_mm(yc.T, yc, device))
    return float(num / den) if den > 0 else float("nan")


def _hsic_weighted(a: np.ndarray, b: np.ndarray, wa: np.ndarray, wb: np.ndarray,
                   w: np.ndarray, wab: np.ndarray | None = None,
                   device: str | None = None) -> np.ndarray:
    """⟨H A_s H, B_s⟩ for every resample s at once, from item multiplicities ``w`` (R, n).

    A resample's Gram matrix is A indexed by its items; with multiplicities the three sums
    of ``⟨HAH, B⟩ = Σ A∘B − (2/n) 1ᵀAB1 + (1ᵀA1)(1ᵀB1)/n²`` become weighted sums over the
    original items (``wa = w @ A``), so no resampled n × n matrix is ever built. ``wab``
    is ``w @ (A∘B)`` when the caller has it.
    """
    n = a.shape[0]
    ab = np.einsum("rj,rj->r", _mm(w, a * b, device) if wab is None else wab, w)
    cross = np.einsum("rj,rj,rj->r", wa, wb, w)
    sa, sb = np.einsum("rj,rj->r", wa, w), np.einsum("rj,rj->r", wb, w)
    return ab - 2.0 * cross / n + sa * sb / n**2


def _weighted_gram(x: np.ndarray, w: np.ndarray, device: str | None = None) -> np.ndarray:
    """``w @ (x xᵀ)``: through the (n, d) rows when that is cheaper than the n × n Gram."""
    if 2 * x.shape[1] < x.shape[0]:
        return _mm(_mm(w, x, device), x.T, device)
    return _mm(w, _mm(x, x.T, device), device)


#: Per-side terms of the base's resamples, reused by every candidate compared with the same
#: base rows, resample count and seed (the base side is half of the bootstrap's work). Kept
#: as centred rows (not the n × n Gram, recomputed cheaply) and bounded in bytes, so many
#: probe sets or large ones cannot grow memory without limit.
_BASE_TERMS: dict[tuple, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
_BASE_TERMS_BYTES = 512 * 2**20


def _side_terms(x: np.ndarray, w: np.ndarray, device: str | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One side's Gram matrix, ``w @ Gram`` and resampled HSIC with itself."""
    xc = _centred(x)  # centring is exact here (a shift of all items) and avoids cancellation
    k = _mm(xc, xc.T, device)
    wk = _weighted_gram(xc, w, device)
    return k, wk, _hsic_weighted(k, k, wk, wk, w, device=device)


def _base_terms(base: np.ndarray, w: np.ndarray, n_resamples: int, seed: int,
                device: str | None = None) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    import hashlib

    arr = np.ascontiguousarray(base)
    key = (hashlib.blake2b(arr.tobytes(), digest_size=16).hexdigest(), arr.shape,
           str(arr.dtype), n_resamples, seed, device)
    hit = _BASE_TERMS.get(key)
    if hit is None:
        hit = []
        for b in arr:
            k, wk, kk = _side_terms(b, w, device)
            hit.append((_centred(b), wk, kk))
        _BASE_TERMS[key] = hit
        while len(_BASE_TERMS) > 1 and _memo_bytes() > _BASE_TERMS_BYTES:
            _BASE_TERMS.pop(next(iter(_BASE_TERMS)))
        if _memo_bytes() > _BASE_TERMS_BYTES:
            _BASE_TERMS.clear()
    return hit


def _memo_bytes() -> int:
    return sum(a.nbytes for terms in _BASE_TERMS.values() for t in terms for a in t)


def bootstrap_cka(
    base: np.ndarray, cand: np.ndarray, n_resamples: int, seed: int, level: float = 0.95,
    device: str | None = None,
) -> tuple[list[float] | None, list[float] | None]:
    """Percentile intervals of the layer-mean and layer-min CKA, resampling items.

    Each resample draws n items with replacement (the same items at every layer); its CKA
    equals :func:`linear_cka` on the resampled rows, computed from the Gram matrices and the
    items' multiplicities. Duplicated items bias CKA slightly upwards, as for any bootstrap
    of a similarity index; the interval shows sampling spread, not that bias. The base's
    side is memoised, so comparing several candidates with one base computes it once.
    ``device``: where the matrix products run (:func:`_mm`).
    """
    n_layers, n = base.shape[:2]
    if n_resamples <= 0 or n < 3:
        return None, None
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_resamples, n))
    flat = (np.arange(n_resamples)[:, None] * n + idx).ravel()  # multiplicities per row
    w = np.bincount(flat, minlength=n_resamples * n).reshape(n_resamples, n).astype(np.float64)
    base_terms = _base_terms(base, w, n_resamples, seed, device)
    vals = np.empty((n_resamples, n_layers))
    for j in range(n_layers):
        xc, wk, kk = base_terms[j]
        k = _mm(xc, xc.T, device)
        l_, wl, ll = _side_terms(cand[j], w, device)
        kl = _hsic_weighted(k, l_, wk, wl, w, device=device)
        with np.errstate(invalid="ignore", divide="ignore"):
            vals[:, j] = kl / np.sqrt(kk * ll)
    alpha = (1.0 - level) / 2.0

    def interval(v: np.ndarray) -> list[float] | None:
        v = v[np.isfinite(v)]
        return None if v.size < 2 else [float(q) for q in np.quantile(v, [alpha, 1 - alpha])]

    return interval(vals.mean(axis=1)), interval(vals.min(axis=1))


def _mv(name: str, value: float | None, ci: list[float] | None = None,
        error: str = "undefined: a representation has no variance") -> MetricValue:
    info = lookup(name)
    if info is None:
        raise KeyError(f"metric {name!r} is not registered (is its placeholder known to "
                       "reportgen.core.names?)")
    ok = value is not None and np.isfinite(value)
    return MetricValue(value if ok else None, info.definition, info.unit, ci if ok else None,
                       None if ok else error)


def cka_by_layer(
    base: np.ndarray, cand: np.ndarray, layer_ids: list[int], *, probe: str = "concepts",
    n_boot: int = 0, seed: int = 0, device: str | None = None,
) -> tuple[dict[str, MetricValue], list[dict]]:
    """Linear CKA per layer for one probe set; arrays are (n_layers, n_items, d).

    Metrics ``cka.{probe}.layer.{layer}``, ``cka.{probe}.mean`` (with a bootstrap interval
    over items), ``cka.{probe}.min``; ``probe`` is ``"concepts"`` or ``"domains.<name>"``.
    Table rows: ``{probe, layer, cka}``. A layer where every item has the same representation
    on either side (GPT-2's embedding output at a template's shared last token) has no CKA:
    it is reported as undefined and left out of the mean and minimum. ``device``: where the
    matrix products run (None: float64 on the CPU; see :func:`_mm`).
    """
    if base.shape[:2] != cand.shape[:2] or base.shape[0] != len(layer_ids):
        raise ValueError(f"shapes {base.shape} and {cand.shape} do not match "
                         f"{len(layer_ids)} layers of the same items")
    keep = [j for j in range(len(layer_ids)) if not (_constant(base[j]) or _constant(cand[j]))]
    vals = {j: linear_cka(base[j], cand[j], device) for j in keep}
    m: dict[str, MetricValue] = {}
    for j, layer in enumerate(layer_ids):
        name = f"cka.{probe}.layer.{layer}"
        m[name] = _mv(name, vals[j]) if j in vals else _mv(name, None, error=CONSTANT_LAYER)
    if keep:
        v = list(vals.values())
        ci_mean, ci_min = (bootstrap_cka(base[keep], cand[keep], n_boot, seed, device=device)
                           if all(np.isfinite(v)) else (None, None))
        m[f"cka.{probe}.mean"] = _mv(f"cka.{probe}.mean", float(np.mean(v)), ci_mean)
        m[f"cka.{probe}.min"] = _mv(f"cka.{probe}.min", float(np.min(v)), ci_min)
    rows = [{"probe": probe, "layer": layer,
             "cka": vals[j] if j in vals and np.isfinite(vals[j]) else None}
            for j, layer in enumerate(layer_ids)]
    return m, rows


CONSTANT_LAYER = ("undefined: every item has the same representation at this layer "
                  "(left out of the mean and minimum)")


def _constant(x: np.ndarray) -> bool:
    """All rows (nearly) equal: e.g. GPT-2's layer 0 at the last token of a shared template."""
    spread = np.abs(x - x[:1]).max() if len(x) else 0.0
    return bool(spread <= 1e-6 * max(1.0, float(np.abs(x).max())))
