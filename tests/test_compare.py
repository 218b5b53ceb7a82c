"""Compare in one picture: per-candidate charts become one chart of panels on shared scales,
each panel drawn from its own candidate's rows."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import vl_convert

from reportgen.views.compare import Comparative, compare
from reportgen.views.html import figures, page_context, vegalite_version

GOLDEN = Path(__file__).parent / "golden" / "tiny-gpt2.json.gz"


def golden() -> dict:
    return json.loads(gzip.decompress(GOLDEN.read_bytes()))


def mark_sources(vega: dict) -> list[str]:
    out = []
    for m in vega.get("marks", []):
        if (m.get("from") or {}).get("data"):
            out.append(m["from"]["data"])
        out += mark_sources(m)
    return out


def test_each_panel_is_its_own_candidate_on_shared_scales() -> None:
    data = golden()
    figs = figures(data)
    merged, _ = compare(figs)
    comps = [f for f in merged if isinstance(f, Comparative)]
    assert comps, "the tiny audit draws per-candidate charts"
    alone = [f for f in merged if f.candidate is not None]  # no other candidate has it
    for f in alone:
        assert [g for g in figs if (g.family, g.heading) == (f.family, f.heading)
                and g.candidate is not None] == [f]
    per_candidate = [f for f in figs if f.candidate is not None]
    assert sum(len(c.members) for c in comps) + len(alone) == len(per_candidate)
    for c in comps:
        spec = c.spec()
        assert len(spec["vconcat"]) == len(c.members)
        for panel, member in zip(spec["vconcat"], c.members, strict=True):
            own = member.spec()
            assert panel.get("data") == own.get("data")  # the member's own rows
            assert panel.get("title") == own.get("title")
        if c.id.startswith(("top-concepts-", "layer-heatmap-", "weights-")):
            assert spec["resolve"]["scale"]["color"] == "shared", c.id  # one colour scale
        vega = vl_convert.vegalite_to_vega(spec, vl_version=vegalite_version())
        # Altair names views alike in every panel; renamed, each panel keeps its own data
        sources = mark_sources(vega)
        datas = [p.get("data") for p in spec["vconcat"]]
        if all(d is not None for d in datas) and len({json.dumps(d) for d in datas}) > 1:
            assert len(set(sources)) >= len(spec["vconcat"]), c.id


def test_bars_share_their_length_scale_but_not_their_labels() -> None:
    figs = figures(golden())
    merged, _ = compare(figs)
    top = next(f for f in merged if f.id.startswith("top-concepts-"))
    assert top.spec()["resolve"]["scale"] == {"x": "shared", "y": "independent",
                                              "color": "shared"}


def test_per_candidate_tables_fold_under_the_picture() -> None:
    ctx = page_context(golden(), mode="html")
    section = next(s for s in ctx["sections"] if s.family == "concepts")
    top = next(f for f in section.figures if f.id.startswith("top-concepts-"))
    tables = section.tables[top.id]
    assert tables and all(t.collapsed for t in tables)
    assert {m.candidate for m in top.members} <= {t.caption.rsplit(": ", 1)[-1]
                                                  for t in tables}


def test_the_pdf_lays_panels_two_a_row_on_the_same_scales() -> None:
    from certfactory import make_certificate

    ctx = page_context(make_certificate(), mode="pdf")  # two candidates beside the floor
    merged = [f for f in ctx["figures"] if isinstance(f, Comparative)]
    assert merged
    for f in merged:
        spec = f.spec()
        assert spec["columns"] == 2 and len(spec["concat"]) == len(f.members)
        assert "vconcat" not in spec
        assert spec["resolve"] == compare(list(f.members))[0][0].spec()["resolve"]
