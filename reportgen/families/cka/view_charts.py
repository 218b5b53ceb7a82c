"""The CKA chart: linear CKA per layer, one line per compared model."""

from __future__ import annotations

from typing import Any

from reportgen.views.charts import ChartLike, comparisons, line_by_candidate, table


def cka_chart(data: dict[str, Any]) -> ChartLike:
    rows = [{**r, "candidate": c["candidate"]} for c in comparisons(data)
            for r in table(c, "cka") if r.get("cka") is not None]
    return line_by_candidate(
        rows, "cka", "linear CKA", "Representation similarity by layer (linear CKA)",
        "Concept prompts, last-token states; 1 = same geometry as the base", data, "pick_cka")
