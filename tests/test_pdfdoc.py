"""The PDF's document data (reportgen.views.pdfdoc, pdf): break marks in long words and the
size a chart is drawn at."""

from __future__ import annotations

import pytest

from reportgen.views.pdf import CHART_MAX_MM, PX_MM, chart_width
from reportgen.views.pdfdoc import ZWSP, breakable, cell


@pytest.mark.parametrize("text", [
    "concepts.category.finance.cosine_distance.mean",
    "step 80: behavior.category.financial_advice.misalignment_score = 1, fails",
    "a" * 50, "short words stay as they are", "sha256:" + "0123456789abcdef" * 4, "",
])
def test_breakable_only_marks_where_a_long_word_may_wrap(text):
    marked = breakable(text)
    assert marked.replace(ZWSP, "") == text
    for word in marked.split():
        assert all(len(part) <= 17 for part in word.split(ZWSP)), word
    for word in text.split():
        if len(word) < 18:
            assert word in marked.split()


def test_a_dotted_name_wraps_after_its_dots():
    assert breakable("concepts.category.finance.mean") == ZWSP.join(
        ["concepts.", "category.", "finance.", "mean"])


def test_cells_write_numbers_as_the_html_does():
    assert cell(0.123456, "num") == [["", "0.1235"]]
    assert cell(None, "num") == [["muted", "—"]]
    assert cell({"value": None, "error": "no probes"}, "metric") == [
        ["muted", "n/a"], ["err", "no probes"]]


def _svg(w: float, h: float) -> bytes:
    return f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}">'.encode()


def test_a_chart_keeps_its_size_unless_it_is_wider_or_taller_than_the_page_allows():
    assert chart_width(_svg(300, 200)) == pytest.approx(300 * PX_MM, abs=0.01)
    assert chart_width(_svg(2000, 200)) == pytest.approx(CHART_MAX_MM[0])
    tall = chart_width(_svg(400, 1200))
    assert tall == pytest.approx(400 * CHART_MAX_MM[1] / 1200, abs=0.01)
    assert chart_width(b"<svg>") == CHART_MAX_MM[0]
