"""Every (base, candidate) pair through every family, from the captures alone (no model loads
here, but for the weights family, which reads the checkpoint files tensor by tensor).

The loop knows no family: it asks each, in page order, for its pair analysis, then for its
audit-level analysis over all variants. A family writes only the tables it declares; the
noise floor's own ratios are marked as such, since a floor compared with itself says nothing.
"""

from __future__ import annotations

from typing import Any

from reportgen.core.family import AuditContext, Family, PairContext, PairResult
from reportgen.core.progress import Progress
from reportgen.core.records import Comparison
from reportgen.families import families


def compare_all(spec: Any, models: list, caps: dict, probe: Any,
                prog: Progress | None = None, device: str | None = None, pairs: Any = None
                ) -> tuple[list[Comparison], list[str], dict[str, Any]]:
    """One Comparison per candidate; noise-floor ratios use the first noise-floor variant.
    ``device``: where the families run their matmul-heavy analysis (core.accel; None: the
    CPU's default path).

    Returns the comparisons, the warnings, and the certificate's ``analysis`` entries the
    families recorded (``analysis[family]``). ``pairs`` (an ``analysis.cache.PairCache``)
    stores each pair's result, so a new candidate (a series' new step) is the only pair
    computed when the rest of the audit is unchanged."""
    prog = prog or Progress(False)
    warnings: list[str] = []
    floors = [m for m in models[1:] if m.role == "noise_floor"]
    if len(floors) > 1:
        warnings.append(f"Several noise-floor variants; ratios use the first, "
                        f"{floors[0].name!r}.")
    floor = floors[0] if floors else None
    shared: dict[Any, Any] = {}
    extra: dict[str, Any] = {}
    comparisons = []
    for m in models[1:]:
        own_floor = floor if floor is not None and m.name != floor.name else None
        hit = pairs.load(m, own_floor) if pairs is not None else None
        if hit is not None:
            comp, pair_warnings, pair_extra = hit
        else:
            prog.say(f"{m.name}: comparing with the base")
            ctx = PairContext(spec, probe, caps["base"], caps[m.name], m,
                              caps[own_floor.name] if own_floor else None, models[0],
                              own_floor, shared, prog, device)
            comp, pair_warnings, pair_extra = Comparison("base", m.name, m.role), [], {}
            for fam in families():
                if fam.pair is not None:
                    _merge(fam, fam.pair(ctx), comp, pair_warnings, pair_extra)
            if pairs is not None:
                pairs.save(m, own_floor, (comp, pair_warnings, pair_extra))
        warnings.extend(pair_warnings)
        for name, entries in pair_extra.items():
            extra.setdefault(name, {}).update(entries)
        if m is floor:
            for name, mv in comp.metrics.items():
                if "noise_floor" in name:  # ratios and shares against the floor
                    mv.error = f"{m.name} is the noise floor itself"
        comparisons.append(comp)
    actx = AuditContext(spec, probe, models, caps, shared, prog, device)
    for fam in families():
        res = fam.audit(actx) if fam.audit is not None else None
        if res is not None:
            warnings.extend(res.warnings)
            if res.analysis:
                extra.setdefault(fam.name, {}).update(res.analysis)
    return comparisons, warnings, extra


def _merge(fam: Family, res: PairResult | None, comp: Comparison, warnings: list[str],
           extra: dict[str, Any]) -> None:
    if res is None:
        return
    foreign = sorted(set(res.tables) - set(fam.tables))
    if foreign:  # a programming error: the table contract is declared on the Family
        raise RuntimeError(f"family {fam.name!r} wrote undeclared tables: {', '.join(foreign)}")
    comp.metrics.update(res.metrics)
    comp.tables.update(res.tables)
    warnings.extend(res.warnings)
    if res.analysis:
        extra.setdefault(fam.name, {}).update(res.analysis)
