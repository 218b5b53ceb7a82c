"""The findings table that opens the page: its cells are the JSON's numbers, chosen by each
family's ``headline``, with the ratio to the noise floor and the worst check status."""

from __future__ import annotations

import gzip
import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from certfactory import make_certificate

from reportgen.certificate.document import Certificate
from reportgen.views.findings import findings
from reportgen.views.html import render_html

GOLDEN = Path(__file__).parent / "golden" / "tiny-gpt2.json.gz"


class Cells(HTMLParser):
    """The attributes of every findings cell, in page order."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "td" and "data-metric" in a:
            self.cells.append(a)


def expected_ratio(data: dict[str, Any], cand: str, metric: str) -> float | None:
    """Independently: the registered ratio metric where there is one, else value / floor."""
    comps = {c["candidate"]: c for c in data["comparisons"]}
    floor = next((c for c in data["comparisons"] if c.get("role") == "noise_floor"), None)
    if comps[cand] is floor:
        return None
    ratio_name = metric.replace(".mean", ".noise_floor_ratio")
    if metric.startswith(("concepts.", "embeddings.")):
        return comps[cand]["metrics"][ratio_name]["value"]
    if metric.startswith(("domains.", "weights.", "probabilities.")) and floor:
        below = floor["metrics"][metric]["value"]
        return comps[cand]["metrics"][metric]["value"] / below if below else None
    return None


@pytest.mark.parametrize("data", [json.loads(gzip.decompress(GOLDEN.read_bytes())),
                                  make_certificate()], ids=["tiny-gpt2", "factory"])
def test_cells_are_the_json_numbers(data: dict[str, Any]) -> None:
    parser = Cells()
    parser.feed(render_html(Certificate(data)))
    assert parser.cells
    comps = {c["candidate"]: c for c in data["comparisons"]}
    assert {c["data-candidate"] for c in parser.cells} == set(comps)
    for cell in parser.cells:
        cand, metric = cell["data-candidate"], cell["data-metric"]
        assert float(cell["data-value"]) == comps[cand]["metrics"][metric]["value"]
        want = expected_ratio(data, cand, metric)
        if want is None:
            assert cell["data-ratio"] == "None", (cand, metric)
        else:
            assert float(cell["data-ratio"]) == pytest.approx(want, rel=1e-12), (cand, metric)
        statuses = [c["status"] for c in data.get("checks") or [] if c["candidate"] == cand
                    and c["metric"].split(".")[0] == metric.split(".")[0]]
        worst = next((s for s in ("ERROR", "FAIL", "WARN", "PASS") if s in statuses), "")
        assert cell["data-status"] == worst


def test_every_family_with_a_headline_gets_a_column_and_the_floor_comes_last() -> None:
    data = json.loads(gzip.decompress(GOLDEN.read_bytes()))
    table = findings(data)
    assert [name for name, _ in table.columns] == [
        "concepts", "embeddings", "neighbors", "cka", "domains", "weights", "probabilities",
        "behavior", "sae"]
    assert table.rows[-1].role == "noise_floor" and table.floor == table.rows[-1].candidate
    floor = table.rows[-1]
    assert all(c is None or c.ratio is None for c in floor.cells.values())


def test_the_most_moved_domain_heads_its_column() -> None:
    data = json.loads(gzip.decompress(GOLDEN.read_bytes()))
    comp = data["comparisons"][0]
    drift = {n: m["value"] for n, m in comp["metrics"].items()
             if n.startswith("domains.") and ".layer." not in n
             and n.endswith("cosine_distance.mean")}
    cell = findings(data).rows[0].cells["domains"]
    assert cell is not None and cell.headline.metric == max(drift, key=drift.__getitem__)


def test_a_zero_floor_gives_no_ratio() -> None:
    data = json.loads(gzip.decompress(GOLDEN.read_bytes()))
    floor = next(c for c in data["comparisons"] if c.get("role") == "noise_floor")
    floor["metrics"]["weights.relative_drift.global"]["value"] = 0.0
    assert findings(data).rows[0].cells["weights"].ratio is None


class Headers(HTMLParser):
    """The text of each column header of the findings table."""

    def __init__(self) -> None:
        super().__init__()
        self.titles: list[str] = []
        self._table = self._th = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._table |= tag == "table" and ("class", "findings") in attrs
        if self._table and tag == "th" and ("scope", "col") in attrs:
            self._th = True
            self.titles.append("")

    def handle_endtag(self, tag: str) -> None:
        self._th &= tag != "th"
        self._table &= tag != "table"

    def handle_data(self, data: str) -> None:
        if self._th:
            self.titles[-1] += data


def test_headers_break_long_words_at_syllables_only() -> None:
    """Chromium on Linux has no hyphenation dictionary ("Neighbourh-oods" broke anywhere):
    the long words of a column's title carry soft hyphens between syllables, and the title
    is the family's once they are taken out."""
    from reportgen.views.filters import soft_hyphens

    data = json.loads(gzip.decompress(GOLDEN.read_bytes()))
    parser = Headers()
    parser.feed(render_html(Certificate(data)))
    titles = [t for _, t in findings(data).columns]
    assert [t.replace("\u00ad", "") for t in parser.titles[1:]] == titles
    assert "Neigh\u00adbour\u00adhoods" in parser.titles
    assert soft_hyphens("Token-embedding drift (SAE) 2nd") == (
        "Token-em\u00adbed\u00adding drift (SAE) 2nd")
    assert soft_hyphens("drift") == "drift"


def test_a_value_wraps_between_number_and_unit_only() -> None:
    """'5.216e-05 nats' in a narrow cell: the number stays on one line, the unit may not."""
    from reportgen.views.filters import unbroken_number

    assert unbroken_number(5.216e-05, "nats") == '<span class="n">5.216e-05</span> nats'
    assert unbroken_number(0.875, "share") == '<span class="n">87.5 %</span>'
    assert unbroken_number(0.5, "<b>") == '<span class="n">0.5 &lt;b&gt;</span>'
