"""Metrics for every (base, candidate) pair, from the captures alone (no model loaded).

Weight drift is the one family read from the checkpoint files (safetensors, one tensor pair
at a time) rather than from the captures; it needs no forward pass and no cache.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .certificate import Comparison, MetricValue
from .families import PairContext, pair_analyses
from .metrics.concepts import ConceptDrift, concept_drift, concept_metrics
from .metrics.embeddings import Alignment, align_vocabularies, embedding_metrics, token_drift
from .numfmt import plural
from .progress import Progress

PROJECTION_METHOD = ("UMAP (McInnes et al. 2018), 2-D, cosine metric, seeded, fitted once on "
                     "every variant's last-layer last-token concept states stacked")


def _rows(cap, sl: slice) -> tuple[np.ndarray, np.ndarray]:
    return cap.last[:, sl], cap.mean[:, sl]


def _pair_drift(base, cand, sl: slice | None
                ) -> tuple[ConceptDrift | None, np.ndarray, Alignment]:
    """Concept drift (None without concept probes), token drift and the token alignment."""
    cd = None
    if sl is not None:
        bl, bm = _rows(base, sl)
        cl, cm = _rows(cand, sl)
        cd = concept_drift(bl, cl, bm, cm, base.layer_ids)
    align = align_vocabularies(base.vocab, cand.vocab)
    td = token_drift(base.embeddings, cand.embeddings, align)
    return cd, td, align


def quantize_transform(bits: int, dtype: str = "float32"):
    """The weight round-trip of :func:`reportgen.loading.quantize_roundtrip`, applied to a
    tensor as stored in safetensors: every 2-D ``.weight``; GPT-2 ``Conv1D`` weights are
    stored (in, out), so their output channels are columns (absmax over dim 0).

    The variant rounds the weights as loaded, in the spec's ``dtype``, so the round-trip runs
    in that dtype too (a bfloat16 checkpoint loaded as float32, or the reverse, rounds
    differently), and the stored tensor is moved by exactly what it changed: the drift is
    the rounding noise alone, never the dtype conversion."""
    import torch

    from .loading import DTYPES, absmax_roundtrip

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


def _weights(base_model, m) -> tuple[dict[str, MetricValue], dict[str, list[dict]], str | None]:
    """Weight drift of ``m`` against the base, each as loaded (an adapter merged)."""
    from .errors import ModelError
    from .metrics.adapter_weights import NotReproduced, model_source
    from .metrics.weights import not_available, weight_drift_metrics

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


def compare_all(spec, models: list, caps: dict, probe, prog: Progress | None = None
                ) -> tuple[list[Comparison], list[str], dict[str, Any]]:
    """One Comparison per candidate; noise-floor ratios use the first noise-floor variant.

    Returns the comparisons, warnings, and certificate-level analysis entries (the joint
    UMAP projection, fitted once over all variants)."""
    from . import termpieces  # after the families registered their collectors (order)

    prog = prog or Progress(False)
    warnings: list[str] = []
    a = spec.analysis
    base = caps["base"]
    slices = probe.slices()
    sl = slices.get("concepts")  # None: no concept probes, so no concept family at all
    drifts = {m.name: _pair_drift(base, caps[m.name], sl) for m in models[1:]}
    floors = [m.name for m in models[1:] if m.role == "noise_floor"]
    if len(floors) > 1:
        warnings.append(f"Several noise-floor variants; ratios use the first, {floors[0]!r}.")
    floor = drifts[floors[0]] if floors else None
    base_knn: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}  # per alignment of the base rows
    comparisons = []
    extra: dict[str, Any] = {}
    for m in models[1:]:
        cand = caps[m.name]
        cd, td, align = drifts[m.name]
        own_floor = None if (floor is None or m.name == floors[0]) else floor
        cm, ctables = {}, {}
        if cd is not None:
            cm, ctables = concept_metrics(
                cd, own_floor[0] if own_floor else None, probe.terms, probe.categories,
                n_boot=a.bootstrap, seed=a.seed)
            termpieces.mark_rows(ctables["concepts"], probe.terms, base, cand)
        em, etables = embedding_metrics(
            td, own_floor[1] if own_floor else None, align, top=a.top_tokens,
            n_boot=a.bootstrap, seed=a.seed)
        if align.new_tokens:
            warnings.append(f"{m.name}: the tokenizer grew by "
                            f"{plural(len(align.new_tokens), 'token')}; they are listed, not "
                            "compared.")
        metrics = {**cm, **em}
        tables = {**ctables, **etables}
        prog.say(f"{m.name}: neighbourhoods, CKA" + (", weights" if a.weights else ""))
        rm, rt = representation_metrics(a, base, cand, sl, probe, td, align, base_knn)
        metrics.update(rm)
        tables.update(rt)
        for name, dsl in slices.items():
            if name.startswith("domains."):
                dm, drows = _domain(name.split(".", 1)[1], base, cand, dsl, a)
                metrics.update(dm)
                tables.setdefault("domains", []).extend(drows)
        if a.weights:
            wm, wt, warn = _weights(models[0], m)
            metrics.update(wm)
            tables.update(wt)
            if warn:
                warnings.append(warn)
        floor_cap = caps[floors[0]] if floors and m.name != floors[0] else None
        for family, fn in pair_analyses().items():
            res = fn(PairContext(spec, probe, base, cand, m, floor_cap))
            if res is None:
                continue
            metrics.update(res.metrics)
            tables.update(res.tables)
            warnings.extend(res.warnings)
            if res.analysis:
                extra.setdefault(family, {}).update(res.analysis)
        if floors and m.name == floors[0]:
            for name, mv in metrics.items():
                if "noise_floor" in name:  # ratios and shares against the floor
                    mv.error = f"{m.name} is the noise floor itself"
        comparisons.append(Comparison("base", m.name, m.role, metrics, tables))
    if sl is not None:
        extra["concepts"] = termpieces.tokenization(probe, models, caps)
    if a.umap and sl is not None:
        prog.say("joint UMAP of the concept representations")
        try:
            extra["projection"] = projection(models, caps, sl, probe, a.seed)
        except ValueError as e:
            warnings.append(f"UMAP projection skipped: {e}")
    return comparisons, warnings, extra


def representation_metrics(a, base, cand, sl: slice | None, probe, td: np.ndarray, align: Alignment,
                           base_knn: dict[bytes, tuple[np.ndarray, np.ndarray]] | None = None,
                           ) -> tuple[dict[str, MetricValue], dict[str, list[dict]]]:
    """Concept and token neighbourhoods and per-layer CKA over the concept prompts (``sl``,
    None without concept probes: token neighbourhoods only).

    ``base_knn`` memoises the base's whole-vocabulary k-NN by the aligned base rows, so it is
    searched once however many candidates share that alignment."""
    from .metrics.neighbors import concept_neighbour_metrics, knn, token_neighbour_metrics

    k = a.neighborhoods.k
    metrics: dict[str, MetricValue] = {}
    tables: dict[str, list[dict]] = {}
    if sl is not None and sl.stop - sl.start > k:
        nm, nt = concept_neighbour_metrics(
            base.last[-1, sl], cand.last[-1, sl], probe.terms, probe.categories, k=k,
            n_boot=a.bootstrap, seed=a.seed)
        metrics.update(nm)
        tables.update(nt)
    movers = np.argsort(-td, kind="stable")[:a.top_tokens]
    if len(align.tokens) > k:
        full = a.neighborhoods.tokens == "full-vocabulary"
        e_base = base.embeddings[align.base_rows]
        known = None
        if full:
            memo = base_knn if base_knn is not None else {}
            key = align.base_rows.tobytes()
            if key not in memo:
                memo[key] = knn(e_base, k)
            known = memo[key]
        tm, tt = token_neighbour_metrics(
            e_base, cand.embeddings[align.cand_rows], align.tokens, movers, k=k,
            full_vocabulary=full, n_boot=a.bootstrap, seed=a.seed, drift=td, base_knn=known)
        metrics.update(tm)
        tables.update(tt)
    if sl is None:
        return metrics, tables
    from .metrics.cka import cka_by_layer

    km, krows = cka_by_layer(base.last[:, sl], cand.last[:, sl], base.layer_ids,
                             probe="concepts", n_boot=a.bootstrap, seed=a.seed)
    metrics.update(km)
    tables["cka"] = krows
    return metrics, tables


def _domain(name: str, base, cand, sl: slice, a) -> tuple[dict[str, MetricValue], list[dict]]:
    from .metrics.domains import domain_metrics

    return domain_metrics(name, base.mean[:, sl], cand.mean[:, sl], base.layer_ids,
                          n_boot=a.bootstrap, seed=a.seed)


def projection(models: list, caps: dict, sl: slice, probe, seed: int) -> dict[str, Any]:
    from .metrics.projection import concept_projection

    reps = {m.name: caps[m.name].last[-1, sl] for m in models}
    _, rows = concept_projection(reps, probe.terms, probe.categories, seed=seed)
    return {"method": PROJECTION_METHOD, "variants": [m.name for m in models], "rows": rows}
