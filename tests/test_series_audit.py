"""A series audit: each step equals a separate audit of its checkpoint, the trajectory and its
onsets follow from the per-step values, checks judge the steps, a new step runs one capture."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest
from seriesfactory import METRIC, audit_spec
from test_forward_calls import forward_log  # noqa: F401  (a fixture)

import reportgen
from reportgen.analysis.series import first_crossing, floor_onset
from reportgen.core import numfmt


def _comparison(data: dict, name: str) -> dict:
    return next(c for c in data["comparisons"] if c["candidate"] == name)


def test_each_step_equals_a_separate_audit(series_cert, tiny_models, tiny_series,
                                           tmp_path) -> None:
    """Same numbers, same tables, same digests as auditing the checkpoint on its own."""
    assert [s["step"] for s in series_cert["series"][0]["steps"]] == [100, 200, 300]
    for step in (100, 200, 300):
        folder = tiny_series / f"checkpoint-{step}"
        alone = reportgen.audit(audit_spec(tmp_path, tiny_models["tiny-gpt2"],
                                      {"name": "ft", "path": str(folder)}), progress=False).data
        mine, theirs = _comparison(series_cert, f"run@{step}"), _comparison(alone, "ft")
        assert mine["metrics"] == theirs["metrics"]
        assert mine["tables"] == theirs["tables"]
        digest = {m["name"]: m["digest"] for m in series_cert["models"]}
        assert digest[f"run@{step}"] == next(m["digest"] for m in alone["models"]
                                             if m["name"] == "ft")
        assert series_cert["series"][0]["metrics"][METRIC]["values"][(step // 100) - 1] == \
            theirs["metrics"][METRIC]["value"]


def test_onsets_by_hand(series_cert) -> None:
    block = series_cert["series"][0]
    values = [_comparison(series_cert, f"run@{s}")["metrics"][METRIC]["value"]
              for s in (100, 200, 300)]
    floor = _comparison(series_cert, "int8")["metrics"][METRIC]["value"]
    entry = block["metrics"][METRIC]
    assert entry["values"] == values and entry["floor"] == floor
    by_hand = next(({"step": s, "value": v} for s, v in zip((100, 200, 300), values, strict=True)
                    if v > 0.001 or v > 0.01 or v > 0.5), None)
    assert entry["onset"]["threshold"] == by_hand
    over = [(s, v) for s, v in zip((100, 200, 300), values, strict=True) if v >= 3 * floor]
    assert entry["onset"]["floor"] == ({"step": over[0][0], "value": over[0][1],
                                        "ratio": pytest.approx(over[0][1] / floor, rel=1e-5)}
                                       if over else None)
    assert block["floor"] == {"candidate": "int8", "multiple": 3.0}
    assert {"check": "every", "kind": "warn", "condition": "> 0.001"} in entry["thresholds"]


def test_onset_functions_on_hand_numbers() -> None:
    steps = [10, 20, 30, 40]
    assert first_crossing(steps, [0.0, 0.1, 0.3, 0.1], ["> 0.2"]) == {"step": 30, "value": 0.3}
    # a step without a value before any crossing: the onset may lie there, so it is unknown
    assert first_crossing(steps, [0.0, None, 0.3, 0.1], ["> 0.2"]) == {"unknown_from": 20}
    assert floor_onset(steps, [None, 0.1, 0.9, 0.9], 0.1, 3.0) == {"unknown_from": 10}
    assert first_crossing(steps, [0.3, None, 0.3, 0.1], ["> 0.2"]) == {"step": 10, "value": 0.3}
    assert first_crossing(steps, [0.3, None, 0.3, 0.1], []) is None
    assert first_crossing(steps, [0.0, 0.25, 0.3, 0.1], ["> 0.5", ">= 0.25"]) == {
        "step": 20, "value": 0.25}
    assert first_crossing(steps, [0.0, 0.1, 0.1, 0.1], ["> 0.5"]) is None
    assert floor_onset(steps, [0.1, 0.49, 0.5, 0.9], 0.125, 4.0) == {
        "step": 30, "value": 0.5, "ratio": 4.0}  # reaching the multiple counts
    assert floor_onset(steps, [0.1, 0.2, 0.3, 0.4], 0.0, 3.0) is None  # no multiple of zero


def test_concepts_and_features_follow_the_final_steps_movers(series_cert) -> None:
    block = series_cert["series"][0]
    tables = [_comparison(series_cert, f"run@{s}")["tables"] for s in (100, 200, 300)]
    final = sorted(tables[-1]["concepts"], key=lambda r: -r["cosine_distance"])[:3]
    assert [c["term"] for c in block["concepts"]] == [r["term"] for r in final]
    for c in block["concepts"]:
        assert c["values"] == [next(r["cosine_distance"] for r in t["concepts"]
                                    if r["term"] == c["term"]) for t in tables]
    moved = [r for r in tables[-1]["sae_moved"] if r["layer"] == 1][:2]
    assert [(f["layer"], f["feature"]) for f in block["features"]] == [
        (1, r["feature"]) for r in moved]
    for f in block["features"]:
        listed = [{(r["layer"], r["feature"]): r["mean_abs_change"] for r in t["sae_moved"]}
                  for t in tables]
        assert f["values"] == [d.get((1, f["feature"])) for d in listed]
        assert f["first_step"] == next(s for s, v in zip((100, 200, 300), f["values"], strict=True)
                                       if v is not None)


def test_series_checks_messages(series_cert) -> None:
    v = {s: _comparison(series_cert, f"run@{s}")["metrics"][METRIC]["value"]
         for s in (100, 200, 300)}
    assert v[100] <= 0.001 < v[200] <= 0.01 < v[300] < 0.5  # the fixture's growing drift
    got = {c["id"]: (c["status"], c["message"], c["candidate"]) for c in series_cert["checks"]}
    assert got["every"] == ("FAIL", f"step 300: {METRIC} = {v[300]:.4g}, fails because it is "
                            "> 0.01 (worst of 3 steps: 100 PASS, 200 WARN, 300 FAIL)", "run")
    assert got["final"] == ("PASS", f"step 300: {METRIC} = {v[300]:.4g}, passes (not > 0.5)",
                            "run")
    assert got["early"] == ("FAIL", f"{METRIC} is first > 0.001 at step 200 ({v[200]:.4g}), "
                            "fails because that is before step 300", "run")
    assert got["late"] == ("PASS", f"{METRIC} is first > 0.001 at step 200 ({v[200]:.4g}), "
                           "passes (not before step 200)", "run")
    assert got["never"] == ("PASS", f"{METRIC} is never > 0.5 in 3 steps (100–300), passes",
                            "run")
    # every step passes: the latest step is shown (how close the run ended), not the first
    assert got["calm"] == ("PASS", f"step 300: {METRIC} = {v[300]:.4g}, passes (not > 0.5) "
                           "(worst of 3 steps: 100 PASS, 200 PASS, 300 PASS)", "run")
    assert series_cert["verdict"] == "FAIL"
    assert series_cert["schema_version"] == "1.1"


def test_a_new_checkpoint_runs_one_capture(tiny_models, tiny_series, tmp_path, monkeypatch,
                                           forward_log) -> None:  # noqa: F811
    """And one pair analysis: the other pairs' results come from the analysis cache."""
    from reportgen.analysis import compare

    pairs: list[str] = []
    real = compare.PairContext

    def counting(*a: Any, **k: Any) -> Any:
        ctx = real(*a, **k)
        pairs.append(ctx.model.name)
        return ctx

    monkeypatch.setattr(compare, "PairContext", counting)
    run = tmp_path / "out"
    for step in (100, 200):
        shutil.copytree(tiny_series / f"checkpoint-{step}", run / f"checkpoint-{step}")
    spec = audit_spec(tmp_path, tiny_models["tiny-gpt2"],
                 {"name": "run", "series": str(run / "checkpoint-*")})
    reportgen.audit(spec, progress=False)
    assert forward_log.loads == ["base", "run@100", "run@200"]
    assert forward_log.alive_at_load == [0, 0, 0]  # one model in memory at a time
    assert pairs == ["run@100", "run@200", "int8"]
    pairs.clear()
    forward_log.loads.clear()
    forward_log.batches.clear()
    shutil.copytree(tiny_series / "checkpoint-300", run / "checkpoint-300")
    cert = reportgen.audit(spec, progress=False)
    assert forward_log.loads == ["run@300"]
    assert len(forward_log.batches) == 1  # one capture: the new step's
    assert pairs == ["run@300"]  # one pair analysis: the new step's
    assert [s["step"] for s in cert.data["series"][0]["steps"]] == [100, 200, 300]


def test_page_and_summary_show_the_series(series_cert, series_page) -> None:
    from reportgen.api import Certificate
    from reportgen.certificate.schema import certificate_problems

    assert certificate_problems(series_cert) == []
    v200 = series_cert["series"][0]["metrics"][METRIC]["values"][1]
    summary = Certificate(series_cert).summary().splitlines()
    assert summary[1] == (f"Series run (3 steps, 100–300): {METRIC} first crosses warn > 0.001 "
                          f"at step 200 ({numfmt.num(v200, 3)}).")
    page = series_page
    assert '<h2 id="series-title">Checkpoint series</h2>' in page
    assert "run: headline metrics at each step" in page
    section = page[page.index('id="series"'):page.index('id="family-')]
    assert section.count("<tr>") >= 4  # the header and a row per headline metric
    assert "warn &gt; 0.001 or fail &gt; 0.01 or fail &gt; 0.5" in section


def test_a_certificate_without_series_renders_as_before(series_cert) -> None:
    """A 1.0 document (no series block) is still read and rendered; nothing of a series."""
    from reportgen.api import Certificate
    from reportgen.certificate.schema import certificate_problems
    from reportgen.views.html import render_html

    old = {k: v for k, v in series_cert.items() if k != "series"}
    old["schema_version"] = "1.0"
    assert certificate_problems(old) == []
    page = render_html(Certificate(old))
    assert 'id="series"' not in page and "Series run" not in Certificate(old).summary()


def test_trajectory_chart_is_the_series_block(series_cert) -> None:
    """The chart's data is the block's values, floor band and thresholds, nothing else."""
    from reportgen.views.series import headline
    from reportgen.views.trajectory import MAX_METRICS, trajectory_figures

    block = series_cert["series"][0]
    figs = {f.id: f for f in trajectory_figures([block], headline)}
    panels = figs["series-run-concepts"].spec()["concat"]
    names = [p["title"]["text"] for p in panels]
    assert names[0] == METRIC and len(names) <= MAX_METRICS  # the thresholded one first
    m = block["metrics"][METRIC]
    panel = panels[0]
    assert [(r["step"], r["value"]) for r in panel["data"]["values"]] == list(
        zip((100, 200, 300), m["values"], strict=True))
    own = [layer["data"]["values"] for layer in panel["layer"] if "data" in layer]
    band = next(rows[0] for rows in own if "high" in rows[0])
    assert (band["low"], band["high"]) == (0.0, m["floor"] * 3.0)
    rules = next(rows for rows in own if "threshold" in rows[0])
    assert sorted((r["kind"], r["threshold"]) for r in rules) == sorted(  # each one once
        {(t["kind"], float(t["condition"].split()[1])) for t in m["thresholds"]})
    assert all(f.family == "series" for f in figs.values())


def test_pdf_has_the_series_section(series_cert, tmp_path) -> None:
    """The table and the trajectory charts (static SVG) in the PDF, before the families."""
    from reportgen.api import Certificate
    from reportgen.views.pdf import render_pdf

    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    small = {**series_cert, "comparisons": [_comparison(series_cert, "run@300")]}  # faster
    (tmp_path / "c.pdf").write_bytes(render_pdf(Certificate(small)))
    text = subprocess.run(["pdftotext", "-raw", str(tmp_path / "c.pdf"), "-"], check=True,
                          capture_output=True, text=True).stdout
    start = text.index("run: headline metrics at each step")
    trajectory = text.index("run: concepts metrics by training step")
    assert start < trajectory < text.index("Concept drift", trajectory)


def test_every_trajectory_chart_reaches_the_page(series_cert, series_page) -> None:
    """The series' charts are among the figures the HTML embeds and the PDF draws (a merge once
    dropped them: the page said "the chart could not be drawn")."""
    from reportgen.views.html import page_context

    for mode in ("html", "pdf"):
        ids = [f.id for f in page_context(series_cert, mode=mode)["figures"]]
        assert "series-run-concepts" in ids, mode
    section = series_page.split('id="series"')[1].split('id="family-')[0]
    script = section.split('data-chart="chart-series-run-concepts">')[1].split("</script>")[0]
    assert script.strip() not in ("", "None") and '"$schema"' in script


def test_findings_row_of_a_series_carries_its_checks(series_cert) -> None:
    """The findings table lists a series by its last step, and a check on the series judges
    that row (coloured by the worst of the checks); the noise floor's row has none."""
    from reportgen.views.findings import findings

    family = METRIC.split(".")[0]
    table = findings(series_cert)
    want = tuple((c["id"], c["status"]) for c in series_cert["checks"])
    rows = {r.candidate: r for r in table.rows}
    assert set(rows) == {"run@300", "int8"}
    cell = rows["run@300"].cells[family]
    assert cell.checks == want and cell.status == "FAIL"
    assert rows["int8"].cells[family].checks == ()


def test_an_onset_the_tool_could_not_see_is_unknown(series_cert) -> None:
    """A metric without a value at a step before its crossing: the page and the summary say
    the onset is unknown (never a later step as if it were the first)."""
    import copy

    from reportgen.certificate.schema import certificate_problems
    from reportgen.views.series import metric_table, series_lines

    data = copy.deepcopy(series_cert)
    m = data["series"][0]["metrics"][METRIC]
    m["values"][0] = None
    m["onset"]["threshold"] = first_crossing([100, 200, 300], m["values"],
                                             [t["condition"] for t in m["thresholds"]])
    assert m["onset"]["threshold"] == {"unknown_from": 100}
    assert certificate_problems(data) == []
    assert (f"{METRIC} has no value at step 100, so when it first crosses "
            in series_lines(data)[0])
    row = next(r for r in metric_table(data["series"][0]).rows if r["metric"] == METRIC)
    assert row["threshold_onset"] == "unknown (no value at step 100)"


def test_no_floor_multiple_for_a_metric_that_is_not_zero_when_nothing_changed(series_cert):
    """The candidate's pairwise cosine is the base's (about 0.5 here) when nothing changed: 3
    times the floor's value is no measure of change, so neither floor nor floor onset."""
    from reportgen.core.names import lookup

    metrics = series_cert["series"][0]["metrics"]
    name = "concepts.pairwise_cosine.candidate"
    assert not lookup(name).zero_when_unchanged
    assert metrics[name]["floor"] is None and metrics[name]["onset"]["floor"] is None
    assert metrics[name]["values"] and all(v > 0.1 for v in metrics[name]["values"])
    assert metrics[METRIC]["floor"] is not None  # a distance from 0 keeps its floor
    assert [i.name for i in (lookup("sae.layer.1.fvu.ratio"), lookup("sae.layer.1.fvu.base"),
                             lookup("sae.layer.1.fvu.candidate")) if i.zero_when_unchanged] == []
