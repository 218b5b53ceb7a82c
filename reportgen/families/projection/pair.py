"""The joint projection: one UMAP fitted on every variant's concept states at once (an
audit-level analysis: it needs all models' captures together)."""

from __future__ import annotations

from typing import Any

from reportgen.core.family import AuditContext, AuditResult

PROJECTION_METHOD = ("UMAP (McInnes et al. 2018), 2-D, cosine metric, seeded, fitted once on "
                     "every variant's last-layer last-token concept states stacked")

def projection(models: list, caps: dict, sl: slice, probe, seed: int) -> dict[str, Any]:
    from reportgen.families.projection.metrics import concept_projection

    reps = {m.name: caps[m.name].last[-1, sl] for m in models}
    _, rows = concept_projection(reps, probe.terms, probe.categories, seed=seed)
    return {"method": PROJECTION_METHOD, "variants": [m.name for m in models], "rows": rows}


def analyse_audit(ctx: AuditContext) -> AuditResult | None:
    sl = ctx.probe.slices().get("concepts")
    if not ctx.spec.analysis.umap or sl is None:
        return None
    if ctx.progress is not None:
        ctx.progress.say("joint UMAP of the concept representations")
    try:
        rows = projection(ctx.models, ctx.captures, sl, ctx.probe, ctx.spec.analysis.seed)
        return AuditResult(rows)
    except ValueError as e:
        return AuditResult(warnings=[f"UMAP projection skipped: {e}"])
