"""The domain section: per domain, mean-pooled drift and linear CKA by layer."""

from __future__ import annotations

from typing import Any

from reportgen.core.family import View
from reportgen.families.domains.view_charts import domains_chart
from reportgen.views import charts
from reportgen.views.charts import Figure, comparisons, slug, table
from reportgen.views.family_tables import per_candidate
from reportgen.views.tables import Column, Table


def figures(data: dict[str, Any]) -> list[Figure]:
    out = []
    for c in comparisons(data):
        if table(c, "domains"):
            name = c["candidate"]
            out.append(Figure(
                f"domains-{slug(name)}", "domains", f"Domain drift by layer: {name}",
                "Each line follows one domain's texts through the network: the mean cosine "
                "distance of their mean-pooled hidden states between base and candidate.",
                f"Line chart of per-domain drift by layer for {name}; the table below adds "
                "linear CKA.", domains_chart(data, name), name, "Domains by layer"))
    return out


def view() -> View:
    return View(figures=figures, tables=tables, headline=lambda n: ".layer." not in n)


def tables(data: dict[str, Any]) -> tuple[dict[str, list[Table]], list[str]]:
    cols = [Column("domain", "domain"), Column("layer", "layer", "int"),
            Column("cosine_distance_mean", "mean drift", "num"),
            Column("cka", "linear CKA", "num")]
    return per_candidate(charts.comparisons(data), "domains", "domains", cols,
                         "Domain drift and CKA by layer"), []
