"""The release archive: filing, the index's trends and changes, concurrent adds."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import re
import shutil
import subprocess
import time
from collections import Counter
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from certfactory import make_certificate

from reportgen.api import Certificate
from reportgen.cli import commands as cli
from reportgen.release.archive import ArchiveError, add, archive_lock
from reportgen.views import archive_index
from reportgen.views.archive_index import Move, flipped_checks, moved_metrics
from reportgen.views.html import chart_svg

RELEASES = ("v1.1", "v1.2", "v1.3")
_CHART = re.compile(r'<script type="application/json" data-chart="(chart-trend-\d+)" '
                    r'data-metric="([^"]+)">(.*?)</script>', re.S)


def run_cli(argv: list[str]) -> int:
    return cli.main(argv)


def _cert_dir(root: Path, release: str, seed: int, month: int, **changes: Any) -> Path:
    data = make_certificate(seed=seed)
    data["audit"].update(release=release, created=f"2025-{month:02d}-01T00:00:00Z")
    data.update(changes)
    out = root / f"out-{release}"
    out.mkdir(parents=True)
    (out / "certificate.json").write_text(Certificate(data).to_json(), encoding="utf-8")
    (out / "model-card.md").write_text("card\n")
    return out


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An archive of three releases, filed newest first to show the order is by date."""
    root = tmp_path_factory.mktemp("archive")
    for i in (2, 0, 1):
        add(root / "archive", _cert_dir(root, RELEASES[i], seed=i, month=i + 1))
    return root / "archive"


def _charts(index: Path) -> dict[str, dict]:
    return {m.group(2): json.loads(m.group(3)) for m in _CHART.finditer(index.read_text())}


def test_trend_chart_has_three_points_per_metric(three: Path) -> None:
    charts = _charts(three / "index.html")
    assert list(charts)[:4] == [
        "concepts.cosine_distance.mean", "concepts.cosine_distance.noise_floor_ratio",
        "embeddings.cosine_distance.mean", "embeddings.cosine_distance.noise_floor_ratio"]
    for metric, spec in charts.items():
        rows = spec["data"]["values"]
        per_model = Counter(r["candidate"] for r in rows)
        assert per_model["finetuned"] == per_model["lora"] == 3, metric
        finetuned = [r for r in rows if r["candidate"] == "finetuned"]
        assert [r["release"] for r in finetuned] == list(RELEASES)
        expected = [Certificate.from_json(three / "releases" / rel).metric("finetuned", metric)
                    for rel in RELEASES]
        assert [r["value"] for r in finetuned] == expected


def test_trend_chart_draws_one_point_per_release_and_model(three: Path) -> None:
    spec = _charts(three / "index.html")["concepts.cosine_distance.mean"]
    svg = chart_svg(spec)  # Vega itself draws it: count the point marks
    group = re.search(r'<g class="mark-symbol role-mark[^"]*"[^>]*>(.*?)</g>', svg, re.S)
    assert len(re.findall(r"<path", group.group(1))) == 3 * 3  # 3 releases x 3 models


def test_index_lists_releases_newest_first_with_links(three: Path) -> None:
    html = (three / "index.html").read_text()
    table = html[html.index('id="releases"'):html.index('id="trends"')]
    assert re.findall(r"<tr><td>(v[\d.]+)</td>", table) == ["v1.3", "v1.2", "v1.1"]
    assert '<a href="releases/v1.2/certificate.json">json</a>' in table
    assert '<a href="releases/v1.2/model-card.md">md</a>' in table
    assert sorted(p.name for p in (three / "releases").iterdir()) == list(RELEASES)
    assert "default-src 'none'" in unescape(html)  # the CSP forbids every fetch


def test_index_is_a_pure_function_of_the_filed_releases(three: Path) -> None:
    before = (three / "index.html").read_bytes()
    archive_index.write_index(three)
    assert (three / "index.html").read_bytes() == before


def test_what_changed_names_flipped_checks_and_top_movers() -> None:
    before = {"checks": [{"id": "a", "candidate": "ft", "status": "PASS", "value": 0.1},
                         {"id": "b", "candidate": "ft", "status": "WARN", "value": 2.0},
                         {"id": "gone", "candidate": "ft", "status": "PASS", "value": 1.0}],
              "comparisons": [{"candidate": "ft", "metrics": {
                  "m.small": {"value": 1.0}, "m.big": {"value": 0.1},
                  "m.zero": {"value": 0.0}, "m.same": {"value": 5.0}}}]}
    after = {"checks": [{"id": "a", "candidate": "ft", "status": "FAIL", "value": 0.3},
                        {"id": "b", "candidate": "ft", "status": "WARN", "value": 2.5},
                        {"id": "new", "candidate": "ft", "status": "PASS", "value": 0.0}],
             "comparisons": [{"candidate": "ft", "metrics": {
                 "m.small": {"value": 1.1}, "m.big": {"value": 0.05},
                 "m.zero": {"value": 0.2}, "m.same": {"value": 5.0}}}]}
    flips = [(f.check, f.before, f.after) for f in flipped_checks(before, after)]
    assert flips == [("a", "PASS", "FAIL"), ("new", None, "PASS"), ("gone", "PASS", None)]
    moves = moved_metrics(before, after)
    assert [(m.metric, round(m.relative, 6)) for m in moves] == [
        ("m.zero", float("inf")), ("m.big", -0.5), ("m.small", 0.1)]
    assert archive_index._change_text(Move("x", "ft", 0.1, 0.05)) == "-50.0 %"


def test_index_shows_a_flipped_check(tmp_path: Path) -> None:
    first = _cert_dir(tmp_path, "v1", seed=0, month=1)
    data = json.loads((first / "certificate.json").read_text())
    data["checks"][3]["status"] = "FAIL"
    second = _cert_dir(tmp_path, "v2", seed=0, month=2, checks=data["checks"])
    add(tmp_path / "a", first)
    add(tmp_path / "a", second)
    html = (tmp_path / "a" / "index.html").read_text()
    changes = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html[html.index('id="changes"'):]))
    assert "v2 against v1 Checks that changed status" in changes
    assert "concept-drift-lora lora ✓ PASS ✗ FAIL" in changes
    assert "No metric value changed." in changes
    assert "v1 The first release in the archive: nothing to compare with." in changes


def test_adding_the_same_certificate_again_changes_nothing(tmp_path: Path, capsys) -> None:
    src = _cert_dir(tmp_path, "v1.0", seed=0, month=1)
    assert run_cli(["archive", "add", str(tmp_path / "a"), str(src)]) == 0
    target = tmp_path / "a" / "releases" / "v1.0"
    assert capsys.readouterr().out.splitlines() == [
        f"v1.0: filed in {target}", f"index: {tmp_path / 'a' / 'index.html'}"]
    before = _snapshot(tmp_path / "a")
    assert run_cli(["archive", "add", str(tmp_path / "a"), str(src)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == \
        f"v1.0: already filed in {target} (the same certificate); nothing changed"
    assert _snapshot(tmp_path / "a") == before


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else b"<dir>"
            for p in sorted(root.rglob("*"))}


def test_a_release_filed_from_another_audit_is_refused_unless_replace(tmp_path: Path,
                                                                       capsys) -> None:
    """The vendor files v1.0 again from a different audit: refused, nothing touched; with
    --replace it is filed and the earlier filing is kept, byte for byte, under replaced/."""
    first = _cert_dir(tmp_path / "one", "v1.0", seed=0, month=1)
    second = _cert_dir(tmp_path / "two", "v1.0", seed=1, month=2)
    arch = tmp_path / "a"
    assert run_cli(["archive", "add", str(arch), str(first)]) == 0
    capsys.readouterr()
    before = _snapshot(arch)
    earlier = (first / "certificate.json").read_bytes()
    sha = hashlib.sha256(earlier).hexdigest()
    assert run_cli(["archive", "add", str(arch), str(second)]) == 2
    assert capsys.readouterr().err == (
        f"error: {arch / 'releases' / 'v1.0'}: release 'v1.0' is already filed from another "
        f"certificate (sha256 {sha[:16]}…); pass --replace to file this certificate instead "
        f"(the earlier filing is then kept in {arch / 'replaced'})\n")
    assert _snapshot(arch) == before
    assert run_cli(["archive", "add", str(arch), str(second), "--replace"]) == 0
    kept = arch / "replaced" / f"v1.0-{sha[:12]}"
    assert capsys.readouterr().out.splitlines() == [
        f"v1.0: filed in {arch / 'releases' / 'v1.0'}",
        f"v1.0: the earlier filing was moved to {kept}",
        f"index: {arch / 'index.html'}"]
    assert (kept / "certificate.json").read_bytes() == earlier
    assert (kept / "model-card.md").read_bytes() == before["releases/v1.0/model-card.md"]
    assert (arch / "releases" / "v1.0" / "certificate.json").read_bytes() == \
        (second / "certificate.json").read_bytes()


def test_releases_sharing_a_folder_name_are_refused(tmp_path: Path, capsys) -> None:
    add(tmp_path / "a", _cert_dir(tmp_path, "v1/3", seed=0, month=1))
    other = _cert_dir(tmp_path, "v1 3", seed=0, month=2)
    assert run_cli(["archive", "add", str(tmp_path / "a"), str(other)]) == 2
    assert capsys.readouterr().err == (
        f"error: {tmp_path / 'a' / 'releases' / 'v1-3'}: already holds release 'v1/3', whose "
        "folder name is the same as 'v1 3''s; rename one of the releases\n")


def test_a_certificate_without_release_is_refused(tmp_path: Path) -> None:
    data = make_certificate()
    data["audit"]["release"] = None
    (tmp_path / "certificate.json").write_text(Certificate(data).to_json())
    with pytest.raises(ArchiveError) as e:
        add(tmp_path / "a", tmp_path)
    assert str(e.value) == (f"{tmp_path / 'certificate.json'}: audit.release is empty; set "
                            "audit.release in the spec to file the certificate in an archive")


def test_concurrent_adds_do_not_corrupt_the_index(tmp_path: Path) -> None:
    names = ["r0", "r1"]
    sources = [_cert_dir(tmp_path, n, seed=i, month=i + 1) for i, n in enumerate(names)]
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=add, args=(tmp_path / "a", s)) for s in sources]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    html = (tmp_path / "a" / "index.html").read_text()
    assert html.rstrip().endswith("</html>")
    table = html[html.index('id="releases"'):html.index('id="trends"')]
    assert re.findall(r"<tr><td>(r\d)</td>", table) == ["r1", "r0"]
    leftovers = [p.name for p in (tmp_path / "a").rglob(".*") if p.name != ".archive.lock"]
    assert leftovers == []


def test_an_add_waits_for_the_lock(tmp_path: Path) -> None:
    src = _cert_dir(tmp_path, "v9", seed=0, month=1)
    (tmp_path / "a").mkdir()
    ctx = multiprocessing.get_context("spawn")
    with archive_lock(tmp_path / "a"):
        proc = ctx.Process(target=add, args=(tmp_path / "a", src))
        proc.start()
        time.sleep(3)
        assert proc.is_alive() and not (tmp_path / "a" / "index.html").exists()
    proc.join(120)
    assert proc.exitcode == 0 and (tmp_path / "a" / "index.html").is_file()


@pytest.mark.browser
def test_trend_charts_draw_in_a_browser_under_the_csp(three: Path, tmp_path: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed")
    dom = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000",
         "--dump-dom", (three / "index.html").as_uri()],
        capture_output=True, text=True, timeout=120, check=True).stdout
    assert ">The chart could not be drawn" not in dom
    assert dom.count('class="chart-canvas vega-embed') == len(_charts(three / "index.html"))


def test_audit_refuses_to_refile_a_release_before_any_work(tmp_path: Path, tiny_models,
                                                           capsys) -> None:
    """audit --archive for a release already filed stops before loading a model, unless
    --replace (checked here only as far as the refusal: the filing itself is add's)."""
    arch = tmp_path / "a"
    add(arch, _cert_dir(tmp_path, "r3", seed=0, month=1))
    (tmp_path / "v.yaml").write_text("a: [cat, dog]\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "audit: {name: x, release: r3}\n"
        f"models:\n  base: {{path: {tiny_models['tiny-gpt2']}}}\n"
        f"  candidates: [{{name: ft, path: {tiny_models['tiny-gpt2-ft']}}}]\n"
        "probes:\n  concepts: {vocabulary: v.yaml}\noutput: {dir: out}\n")
    before = sorted(p.name for p in (arch / "releases").iterdir())
    assert run_cli(["audit", "-q", str(spec), "--archive", str(arch)]) == 2
    assert capsys.readouterr().err == (
        f"error: {arch / 'releases' / 'r3'}: release 'r3' is already filed; pass --replace to "
        f"file the new certificate instead (the earlier filing is then kept in "
        f"{arch / 'replaced'})\n")
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in (arch / "releases").iterdir()) == before
