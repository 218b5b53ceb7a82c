"""What the page draws matches the certificate's numbers: shared histogram bins from 0, no
"top movers" made of tokens that did not move, a note where nothing moved."""

from __future__ import annotations

import re

import numpy as np
import pytest
from certfactory import make_builder

from reportgen.api import Certificate
from reportgen.families.concepts.view_charts import _layer_category_rows, layer_category_heatmap
from reportgen.families.embeddings.metrics import drift_histogram, embedding_metrics
from reportgen.families.embeddings.view import token_tables
from reportgen.families.embeddings.view_charts import (
    no_token_moved,
    shared_token_histogram,
    token_histogram_chart,
)
from reportgen.families.neighbors.view import tables as neighbour_tables
from reportgen.families.weights.view import tables as weight_tables
from reportgen.families.weights.view_charts import weights_chart
from reportgen.views import charts
from reportgen.views.html import chart_svg, page_context, render_html
from reportgen.views.html import figures as page_figures
from reportgen.views.summary import candidate_line

BAR = re.compile(r'<path aria-label="([^"]*)" role="graphics-symbol" '
                 r'aria-roledescription="bar" d="M([-\d.e]+),([-\d.e]+)h([-\d.e]+)v([-\d.e]+)')


def test_drift_histogram_bins_start_at_zero_and_nest() -> None:
    rng = np.random.default_rng(0)
    small, large = rng.gamma(2.0, 1e-4, 5000), rng.gamma(2.0, 3e-2, 5000)
    hs, hl = drift_histogram(small), drift_histogram(large)
    for h, d in ((hs, small), (hl, large)):
        edges = [h[0]["bin_start"]] + [r["bin_end"] for r in h]
        assert edges[0] == 0.0 and edges[-1] >= d.max()
        width = edges[1] - edges[0]
        assert np.log2(width) == round(np.log2(width))  # a power of two
        assert 20 <= len(h) <= 40
        counts, _ = np.histogram(d, bins=np.asarray(edges))
        assert [r["count"] for r in h] == counts.tolist()
    wide, narrow = hl[0]["bin_end"], hs[0]["bin_end"]
    assert (wide / narrow).is_integer()
    assert drift_histogram(np.zeros(7)) == [{"bin_start": 0.0, "bin_end": 0.0, "count": 7}]


def _still(builder, name: str = "lora") -> dict:
    """The builder's certificate with ``name``'s token embeddings left exactly as the base's
    (an adapter that touches no embedding), measured by the real metric code."""
    comp = next(c for c in builder.comparisons if c.candidate == name)
    n = sum(r["count"] for r in comp.tables["token_histogram"])
    from reportgen.families.embeddings.metrics import Alignment

    tokens = [f"tok{i}" for i in range(n)]
    align = Alignment(tokens, np.arange(n), np.arange(n), [])
    m, t = embedding_metrics(np.zeros(n), None, align, top=50, n_boot=0, seed=0)
    comp.metrics.update(m)
    comp.tables.update(t)
    comp.tables["neighbors_tokens"] = [
        {"token": "[PAD]", "cosine_distance": 0.0, "jaccard": 1.0, "shared": 10,
         "base_neighbours": [{"label": "[unused0]", "similarity": 1.0}],
         "candidate_neighbours": [{"label": "[unused0]", "similarity": 1.0}]}]
    return builder.build()


@pytest.fixture(scope="module")
def raw() -> dict[str, np.ndarray]:
    """Per-token drift of each compared model, spread like a fine-tune, a lighter one and an
    int8 floor (10,000 times smaller): the case whose floor panel used to be empty."""
    rng = np.random.default_rng(3)
    return {"finetuned": rng.gamma(1.5, 0.02, 3000), "lora": rng.gamma(1.5, 0.004, 3000),
            "base-int8": rng.gamma(1.5, 2e-6, 3000)}


@pytest.fixture(scope="module")
def data(raw) -> dict:
    from reportgen.families.embeddings.metrics import Alignment

    builder = make_builder()
    for comp in builder.comparisons:
        d = raw[comp.candidate]
        align = Alignment([f"t{i}" for i in range(len(d))], np.arange(len(d)),
                          np.arange(len(d)), [])
        m, t = embedding_metrics(d, None, align, top=50, n_boot=0, seed=0)
        comp.metrics.update(m)
        comp.tables.update(t)
    return builder.build()


def test_histogram_axis_starts_at_zero_and_every_panel_is_drawn(data, raw) -> None:
    """The shared x axis runs from 0 to the largest drift; every model's counts sit on the
    same bins (checked against numpy on the raw distances) and each panel's bars are drawn
    wide enough to see, the noise floor's included."""
    spec = token_histogram_chart(data).to_dict()
    top = max(float(d.max()) for d in raw.values())
    domain = spec["encoding"]["x"]["scale"]["domain"]
    assert domain[0] == 0.0 and top <= domain[1]
    rows, end = shared_token_histogram(data)
    width = rows[0]["bin_end"] - rows[0]["bin_start"]
    assert end - width < top <= end and domain[1] == end
    edges = np.arange(round(end / width) + 1) * width
    drawn = spec["data"]["values"]
    for name, d in raw.items():
        counts = [r["count"] for r in drawn if r["candidate"] == name]
        assert counts == np.histogram(d, bins=edges)[0].tolist(), name
    bars: dict[str, list[float]] = {}
    for label, _x, _y, w, h in BAR.findall(chart_svg(spec)):
        name = re.search(r"candidate: ([^;]+)", label).group(1)
        count = int(re.search(r"count: ([\d,]+)", label).group(1).replace(",", ""))
        if count:
            assert float(h) > 0
            bars.setdefault(name, []).append(float(w))
    assert set(bars) == set(raw)
    assert all(min(w) >= 5 for w in bars.values()), bars


def test_a_candidate_with_no_token_drift_says_so(raw) -> None:
    data = _still(make_builder())
    lora = charts.comparison(data, "lora")
    assert lora["tables"]["tokens"] == []
    assert no_token_moved(lora)
    ids = [f.id for f in page_figures(data)]
    assert "token-movers-lora" not in ids and "token-movers-finetuned" in ids
    spec = token_histogram_chart(data).to_dict()
    assert "lora" not in {r["candidate"] for r in spec["data"]["values"]}
    assert "No token moved in lora" in spec["title"]["subtitle"]
    assert spec["encoding"]["x"]["scale"]["domain"][0] == 0.0
    tables, notes = token_tables(data)
    assert "token-movers-lora" not in tables
    assert ("lora: no token moved (every shared token's input embedding is the base's), so "
            "there are no token movers to list.") in notes
    charts.comparison(data, "finetuned")["tables"]["neighbors_tokens"] = [
        {"token": "Ġbank", "cosine_distance": 0.3, "jaccard": 0.5, "shared": 7,
         "base_neighbours": [{"label": "Ġloan", "similarity": 0.9}],
         "candidate_neighbours": [{"label": "Ġbet", "similarity": 0.8}]}]
    tables, notes = neighbour_tables(data)
    shown = [t.caption for ts in tables.values() for t in ts]
    assert shown == ["Neighbourhoods of the top token movers: finetuned"]
    assert "lora: no token moved, so no token neighbourhood is listed." in notes
    assert "no token embedding moved" in candidate_line(lora)
    assert "[PAD]" not in candidate_line(lora)


def test_no_top_n_of_zeros_anywhere_on_the_page() -> None:
    """Siblings: a candidate whose weights did not change gets a note, not a blank heatmap;
    a neighbourhood table lists only concepts that were rewired."""
    builder = make_builder()
    comp = next(c for c in builder.comparisons if c.candidate == "lora")
    from reportgen.core.records import MetricValue

    comp.metrics["weights.relative_drift.max"] = MetricValue(0.0, "d")
    comp.tables["weights_blocks"] = [{"block": 0, "module": "attention", "tensors": 1,
                                      "parameters": 10, "relative_drift": 0.0}]
    comp.tables["rewired_concepts"] = [
        {"rank": 1, "term": "bank", "category": "finance", "jaccard": 1.0, "shared": 10,
         "base_neighbours": [], "candidate_neighbours": []}]
    data = builder.build()
    ids = [f.id for f in page_figures(data)]
    assert "weights-lora" not in ids
    _, notes = weight_tables(data)
    assert "lora: no weight changed (every compared tensor equals the base's)." in notes
    tables, notes = neighbour_tables(data)
    assert ("lora: every concept kept all of its nearest neighbours (Jaccard 1), so no "
            "concept was rewired.") in notes
    # the table behind a left-out chart still reaches the page (HTML: collapsed)
    ctx = page_context(Certificate(data), "html")
    weights = next(s for s in ctx["sections"] if s.family == "weights")
    assert "weights-lora" in weights.tables and not weights.figures
    html = render_html(Certificate(data))
    assert "Weight drift by block and module type: lora (1 row)" in html


def test_definitions_are_listed_under_their_registered_pattern() -> None:
    """Grouped definitions use the registry's placeholder (weights.block.{block}, not a name
    derived from the metric's dotted parts) so the name and its definition agree; a metric
    listed alone (one SAE layer) reads its definition with its own layer."""
    from reportgen.core.names import definition
    from reportgen.views.html import _definition_groups, _pattern

    one = "sae.layer.2.fvu.base"
    comps = [{"metrics": {one: {"definition": definition(one), "unit": ""}}}]
    assert _definition_groups(comps, [one]) == [(one, definition(one).replace(
        "{layer}", "2"), "")]
    assert "at layer 2:" in _definition_groups(comps, [one])[0][1]

    assert _pattern(["weights.block.0.relative_drift", "weights.block.1.relative_drift"]) == \
        "weights.block.{block}.relative_drift"
    assert _pattern(["domains.finance.cosine_distance.mean",
                     "domains.legal.cosine_distance.mean"]) == \
        "domains.{domain}.cosine_distance.mean"


def test_per_candidate_heatmaps_share_one_colour_scale_from_zero() -> None:
    """A noise floor's weight heatmap must not look as dark as a fine-tune's: every
    candidate's heatmap (weights; concept drift by layer and category) and domain chart is
    drawn on one scale from 0 to the largest value of any of them."""
    builder = make_builder()
    tops = {"finetuned": 0.3, "lora": 0.05, "base-int8": 0.002}
    for comp in builder.comparisons:
        comp.tables["weights_blocks"] = [
            {"block": b, "module": "mlp", "tensors": 2, "parameters": 10,
             "relative_drift": tops[comp.candidate] * (b + 1) / 3} for b in range(3)]
    data = builder.build()
    for name in tops:
        scale = weights_chart(data, name).to_dict()["encoding"]["color"]["scale"]
        assert scale["domain"] == [0.0, pytest.approx(0.3)], name
    means = [r["mean"] for c in charts.comparisons(data) if c["role"] != "noise_floor"
             for r in _layer_category_rows(data, c)]
    for name in ("finetuned", "lora"):
        spec = layer_category_heatmap(data, name).to_dict()
        assert spec["encoding"]["color"]["scale"]["domain"] == [0.0, max(means)]
