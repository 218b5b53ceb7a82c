"""Capture every model of an audit, one loaded at a time, through the capture cache.

The base goes first (a candidate's collectors may depend on the base's capture, e.g. a
dictionary trained on it). A derived variant (the int8 noise floor) is captured right after
its source, from the source's weights still in memory, rounded in place: one load instead of
two, and never two models in memory at once.
"""

from __future__ import annotations

import gc
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reportgen.core.errors import InputError, ModelError
from reportgen.core.family import CollectorContext, Factory
from reportgen.core.progress import Progress

if TYPE_CHECKING:
    from reportgen.spec.load import LoadedSpec
    from reportgen.spec.probeset import ProbeSet


def capture_all(loaded: LoadedSpec, models: list, probe: ProbeSet, prog: Progress,
                keys: dict[str, str] | None = None,
                factories: Sequence[Factory] = (), device: str | None = None) -> dict:
    """Each model's capture, from the cache when it holds one. ``keys``, when given,
    receives each model's capture-cache key (the analysis cache builds on them).
    ``factories``: the families' collector factories, asked per model before it loads;
    ``device``: the analysis device they are told (core.accel; None: the CPU's path)."""
    from reportgen.capture import cache
    from reportgen.capture.forward import CapturePlan

    a = loaded.spec.analysis
    caps: dict = {}
    held: tuple[str, Any, Any] | None = None  # a captured source kept for its derived variant
    for m in capture_order(models):
        ctx = CollectorContext(loaded, probe, m, caps.get("base"), device)
        collectors = [c for f in factories if (c := f(ctx)) is not None]
        plan = CapturePlan(None if a.layers == "all" else tuple(a.layers), a.max_length,
                           a.batch_size, tuple((c.name, c.settings()) for c in collectors))
        key = cache.cache_key(m.capture_identity, probe.capture_digest, plan.key())
        if keys is not None:
            keys[m.name] = key
        source = held[1:] if held is not None and m.derived_from == held[0] else None
        held = None
        cap = cache.load(key)
        if cap is not None:
            prog.say(f"{m.name}: capture found in cache")
        else:
            keep = any(d.derived_from == m.name for d in models)
            cap, kept = _capture_cached(m, probe, plan, prog, collectors, key, source, keep)
            held = (m.name, *kept) if kept is not None else None
            del kept
        source = collectors = None  # collectors hold the model too
        caps[m.name] = cap
        if held is None:
            gc.collect()  # the model just captured goes before the next one loads
    _check_tokenizers(models, caps)
    return caps


def capture_order(models: list) -> list:
    """Base and candidates in spec order, each derived variant right after its source."""
    derived = [m for m in models if m.derived_from]
    out = []
    for m in (m for m in models if not m.derived_from):
        out += [m, *(d for d in derived if d.derived_from == m.name)]
    return out + [d for d in derived if d not in out]


def _capture_cached(m: Any, probe: ProbeSet, plan: Any, prog: Progress, collectors: list,
                    key: str, source: tuple[Any, Any] | None, keep: bool) -> tuple[Any, Any]:
    """Capture ``m`` into the cache; with ``keep``, also return its (model, tokenizer)."""
    from reportgen.capture import cache

    work = cache.work_folder(key)
    cap = None
    try:
        cap, kept = _capture_one(m, probe, plan, prog, collectors, work, source, keep)
        cache.save(key, cap)
    finally:
        if cap is None or _files_outside(cap, work):
            shutil.rmtree(work, ignore_errors=True)
        else:  # the cache could not take the files: they live until we exit
            import atexit

            atexit.register(shutil.rmtree, work, True)
    return cap, kept


def _files_outside(cap: Any, work: Path) -> bool:
    """True when every extra file now lives outside ``work`` (the cache took it)."""
    return all(work not in p.parents for e in cap.extras.values() for p in e.files.values())


def _capture_one(m: Any, probe: ProbeSet, plan: Any, prog: Progress, collectors: list,
                 work: Path, source: tuple[Any, Any] | None, keep: bool) -> tuple[Any, Any]:
    """(capture, (model, tokenizer) when ``keep`` else None). A derived variant given its
    ``source`` in memory rounds those weights in place instead of loading them again."""
    from reportgen.capture import loading
    from reportgen.capture.forward import capture

    if source is not None:
        prog.say(f"{m.name}: {m.recipe}, from {m.derived_from} in memory")
        model, tok = source
        loading.derive_in_place(model, m)
    else:
        prog.say(f"{m.name}: loading {m.architecture} ({m.kind})")
        model, tok = loading.load(m)
        if getattr(model, "hf_device_map", None) and m.options.device == "auto":
            prog.say(f"{m.name}: {loading.placement_summary(model.hf_device_map)}")
    n_layers = int(getattr(model.config, "num_hidden_layers", 0)
                   or getattr(model.config, "n_layer", 0))
    if plan.layers is not None and max(plan.layers) > n_layers:
        raise InputError(
            f"analysis.layers: layer {max(plan.layers)} is out of range; "
            f"{m.name} has layers 0..{n_layers}"
        )
    cap = capture(model, tok, probe.all_texts, plan, prog, m.name, collectors, work)
    return cap, ((model, tok) if keep else None)


def _check_tokenizers(models: list, caps: dict) -> None:
    """Candidates may grow the base vocabulary; vocabularies that barely overlap are refused."""
    base = {t for t in caps["base"].vocab if t is not None}
    for m in models[1:]:
        cand = {t for t in caps[m.name].vocab if t is not None}
        shared = len(base & cand) / max(1, len(base))
        if shared < 0.9:
            raise ModelError(
                f"{m.field}: the tokenizer of {m.name!r} shares only {shared:.0%} of the base "
                "vocabulary; tokens cannot be aligned"
            )


