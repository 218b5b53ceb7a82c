"""A series as its readers see it: the concept explorer's drift by step and the series
section's small multiples of the most moved concepts, both from the certificate alone."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from cdp import Browser, chromium

from reportgen.api import Certificate
from reportgen.views.html import page_context, render_html
from reportgen.views.trajectory import concept_figure

_CHART = re.compile(r'<script type="application/json" data-chart="chart-([^"]+)">(.*?)</script>',
                    re.S)
_EXPLORER = re.compile(r'<script type="application/json" id="explorer-data">(.*?)</script>',
                       re.S)


def _payload(page: str) -> dict[str, Any]:
    return json.loads(_EXPLORER.search(page).group(1))


def _four(v: float | None) -> float | None:
    """The explorer's rounding, written out: four significant digits."""
    return None if v is None else float(f"{v:.4g}")


def test_explorer_holds_each_concepts_drift_by_step(series_cert, series_page) -> None:
    block = series_cert["series"][0]
    payload = _payload(series_page)
    assert [(s["name"], s["steps"]) for s in payload["series"]] == [("run", [100, 200, 300])]
    by_term = {c["term"]: c for c in payload["concepts"]}
    listed = {c["term"] for c in block["concepts"]}
    assert len(listed) == 3
    for c in block["concepts"]:  # the series block's own numbers
        assert by_term[c["term"]]["series"] == [[_four(v) for v in c["values"]]]
    steps = [next(x for x in series_cert["comparisons"] if x["candidate"] == f"run@{s}")
             for s in (100, 200, 300)]
    for term, entry in by_term.items():  # every other concept: each step's own row
        rows = [next(r for r in c["tables"]["concepts"] if r["term"] == term) for c in steps]
        assert entry["series"] == [[_four(r["cosine_distance"]) for r in rows]], term
    assert set(by_term) - listed  # the explorer reaches beyond the block's most moved


def test_explorer_without_a_series_is_unchanged(series_cert) -> None:
    old = {k: v for k, v in series_cert.items() if k != "series"}
    payload = _payload(render_html(Certificate(old)))
    assert "series" not in payload
    assert not any("series" in c for c in payload["concepts"])


@pytest.mark.browser
def test_series_page_in_chromium(series_cert, series_page, tmp_path) -> None:
    """Every series chart draws (no console warning: no empty layer), and the explorer
    draws a concept's drift at each step next to a table of the same numbers."""
    if chromium() is None:
        pytest.skip("chromium is not installed")
    path = tmp_path / "certificate.html"
    path.write_text(series_page, encoding="utf-8")
    term = series_cert["series"][0]["concepts"][0]["term"]
    values = series_cert["series"][0]["concepts"][0]["values"]
    result = "document.getElementById('explorer-result').innerText"
    drawn = """Array.from(document.querySelectorAll('#series .chart-canvas')).map(function (c) {
      var svg = c.querySelector('svg.marks');
      return svg ? svg.querySelectorAll('path, line, text').length : 0; })"""
    ctx = page_context(series_cert, mode="html")
    n = len([f for sv in ctx["series"] for f in sv.figures]) + len(ctx["trajectories"])
    with Browser(tmp_path / "profile") as b:
        b.open(path.as_uri(), 1000)
        counts = b.wait_for(f"(function(){{var d = {drawn}; return d.length === {n} && "
                            "d.every(function (x) { return x > 0; }) && d;})()")
        assert counts, b.eval(drawn)
        assert b.problems() == []
        b.type_into("#explorer-input", term)
        text = b.wait_for(f"{result}.indexOf('Drift by training step') >= 0 && {result}")
        assert text, b.eval(result)
        table = text[text.index("Cosine distance at each step of run"):]
        shown = re.findall(r"\n(\d+)\t(\S+)", table)[:3]
        assert [int(s) for s, _ in shown] == [100, 200, 300]
        assert [float(v) for _, v in shown] == pytest.approx(values, rel=1e-3)
        steps_svg = "document.querySelectorAll('#explorer-result .explorer-steps svg circle')"
        assert b.eval(f"{steps_svg}.length") == 3
        assert b.problems() == [] and b.requests() == []


def test_small_multiples_are_the_blocks_concepts(series_cert) -> None:
    block = series_cert["series"][0]
    fig = concept_figure(block, ["animals", "money"])
    spec = fig.spec()
    rows = spec["data"]["values"]
    assert [(r["term"], r["step"], r["cosine_distance"]) for r in rows] == [
        (c["term"], s, v) for c in block["concepts"]
        for s, v in zip((100, 200, 300), c["values"], strict=True)]
    assert spec["facet"]["field"] == "term" and spec["columns"] == 4
    assert spec["facet"]["sort"] == [c["term"] for c in block["concepts"]]
    assert "resolve" not in spec  # one x and one y scale for every panel
    assert spec["spec"]["encoding"]["x"]["field"] == "step"
    assert concept_figure({**block, "concepts": []}, []) is None


def test_every_series_chart_is_embedded(series_cert, series_page) -> None:
    """Each series figure's spec is in the page (a figure the page's chart list missed was
    once written as the text 'None' and drawn as an error)."""
    embedded = {fid: text for fid, text in _CHART.findall(series_page)}
    series = [f for sv in page_context(series_cert, mode="html")["series"]
              for f in sv.figures]
    assert "series-run-concept-steps" in {f.id for f in series}
    for f in series:
        assert json.loads(embedded[f.id]) == json.loads(json.dumps(f.spec())), f.id


def test_archive_trends_and_series_share_one_chart(series_cert, monkeypatch) -> None:
    """Both callers draw through trajectory.metric_chart: x is the release (ordinal, in filing
    order) or the step (a number), y the value, colour the model; thresholds as rules."""
    from certfactory import make_certificate

    from reportgen.views import archive_index, trajectory
    from reportgen.views.series import headline

    calls: list[tuple[str, dict[str, Any]]] = []
    real = trajectory.metric_chart

    def spy(rows: list, along: trajectory.Along, *a: Any, **k: Any) -> Any:
        chart = real(rows, along, *a, **k)
        calls.append((along.field, chart.to_dict()))
        return chart

    monkeypatch.setattr(trajectory, "metric_chart", spy)
    releases = []
    for i, name in enumerate(("v1", "v2")):
        data = make_certificate(seed=i)
        data["audit"].update(release=name, created=f"2025-0{i + 1}-01T00:00:00Z")
        releases.append(archive_index.Release(name, data, str(i), ()))
    rows = archive_index.trend_series(releases)["concepts.cosine_distance.mean"]
    archive_index.trend_chart("concepts.cosine_distance.mean", rows, releases)
    trajectory.trajectory_figures([series_cert["series"][0]], headline)
    fields = [f for f, _ in calls]
    assert fields[0] == "release" and set(fields[1:]) == {"step"}
    (_, trend), (_, step) = calls[0], calls[1]
    for spec, x, kind in ((trend, "release", "ordinal"), (step, "step", "quantitative")):
        line = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "line")
        enc = line["encoding"]
        assert (enc["x"]["field"], enc["x"]["type"]) == (x, kind)
        assert (enc["y"]["field"], enc["color"]["field"]) == ("value", "candidate")
    assert trend["layer"][0]["encoding"]["x"]["sort"] == ["v1", "v2"]
    rules = next(layer["data"]["values"] for layer in trend["layer"]
                 if layer["mark"]["type"] == "rule")
    checks = [c for c in releases[-1].data["checks"]
              if c["metric"] == "concepts.cosine_distance.mean"]
    assert {(r["kind"], r["threshold"]) for r in rules} == {
        (k, float(c[f"{k}_if"].split()[1])) for c in checks for k in ("warn", "fail")
        if c.get(f"{k}_if")}
    assert [r["value"] for r in trend["data"]["values"]] == [r["value"] for r in rows]


def test_a_far_threshold_is_named_not_drawn() -> None:
    from reportgen.views.trajectory import Limit, by_step, metric_chart

    rows = [{"step": s, "candidate": "run", "value": v} for s, v in ((1, 0.01), (2, 0.02))]
    spec = metric_chart(rows, by_step([1, 2]), (["run"], ["#000"]), title="m",
                        limits=[Limit("warn", "> 0.015", 0.015), Limit("fail", "> 0.5", 0.5)]
                        ).to_dict()
    texts = [layer for layer in spec["layer"] if layer["mark"]["type"] == "text"]
    labels = {r["label"]: r["edge"] for r in texts[0]["data"]["values"]}
    assert labels == {"warn > 0.015": "in", "\u2191 fail > 0.5": "off"}
    inside = {"field": "threshold", "type": "quantitative"}  # a halo, then the label
    assert [t["encoding"].get("y") for t in texts] == [inside, inside, {"value": 0}]
    assert [t["transform"] for t in texts] == [[{"filter": "(datum.edge === 'in')"}]] * 2 + [
        [{"filter": "(datum.edge === 'off')"}]]
    rule = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "rule")
    assert rule["transform"] == texts[0]["transform"]  # only the near one is drawn


def test_every_series_is_a_line_in_one_chart_per_family(series_cert) -> None:
    """Two runs compare in one picture: a chart per family, a line per series (its own
    numbers), both series' thresholds labelled with their series."""
    import copy

    from reportgen.views import trajectory
    from reportgen.views.series import headline

    one = series_cert["series"][0]
    two = copy.deepcopy(one)
    two["name"] = "run2"
    for m in two["metrics"].values():
        m["values"] = [None if v is None else v * 2 for v in m["values"]]
    single = trajectory.trajectory_figures([one], headline)
    both = trajectory.trajectory_figures([one, two], headline)
    assert [f.family for f in both] == [f.family for f in single]
    spec = both[0].spec()
    panel = spec["concat"][0]
    metric = panel["title"]["text"]
    rows = panel["data"]["values"]
    for block in (one, two):
        values = block["metrics"][metric]["values"]
        want = [(s["step"], v) for s, v in zip(block["steps"], values, strict=True)
                if v is not None]
        assert [(r["step"], r["value"]) for r in rows if r["candidate"] == block["name"]] == want
    labels = json.dumps(spec)
    if one["metrics"][metric]["thresholds"]:
        assert "(run, run2)" in labels


def test_notebook_draws_the_series_trajectories(series_cert) -> None:
    """In Jupyter a series shows its trajectories too (the PDF's choice of families)."""
    from reportgen.views.html import figures
    from reportgen.views.notebook import notebook_html
    from reportgen.views.series import series_figures

    frag = notebook_html(Certificate(series_cert))
    trajectories = series_figures(series_cert, "pdf")
    assert trajectories
    images = frag.count('src="data:image/svg+xml;base64,')
    assert images == len(figures(series_cert)) + len(trajectories)
    assert all(f.caption.split(".")[0] in frag for f in trajectories)
