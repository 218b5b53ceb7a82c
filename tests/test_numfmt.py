"""How numbers and counts are written: never a non-zero value as zero, never '1 tensors'."""

from __future__ import annotations

import pytest

from reportgen.core import numfmt
from reportgen.views.filters import fmt_metric


@pytest.mark.parametrize(("value", "decimals", "shown"), [
    (0.0024, 1, "0.0024"), (0.0, 1, "0.0"), (57.84, 1, "57.8"), (0.05, 1, "0.1"),
    (-0.0004, 2, "-0.0004"), (1.234e-7, 1, "1.2e-07"), (0.996, 2, "1.00"), (-3.0, 2, "-3.00"),
])
def test_fixed_keeps_digits_only_where_rounding_would_hide_a_value(value, decimals,
                                                                    shown) -> None:
    assert numfmt.fixed(value, decimals) == shown


@pytest.mark.parametrize(("value", "shown"), [
    (0.0024, "0.0024×"), (0.0, "0.0×"), (57.84, "57.8×"), (1234.4, "1,234×"), (None, "—"),
    (0.00999, "0.01×"), (0.04, "0.04×"),
])
def test_ratio(value, shown) -> None:
    assert numfmt.ratio(value) == shown


@pytest.mark.parametrize(("value", "decimals", "shown"), [
    (0.875, 1, "87.5 %"), (0.0004, 1, "0.04 %"), (0.0, 1, "0.0 %"), (1.0, 0, "100 %"),
    (0.99996, 1, "99.996 %"), (0.004, 0, "0.4 %"), (0.25, 0, "25 %"), (None, 1, "—"),
])
def test_pct_never_reads_zero_or_one_hundred_unless_it_is(value, decimals, shown) -> None:
    assert numfmt.pct(value, decimals) == shown


def test_num_keeps_significant_digits() -> None:
    assert numfmt.num(0.000012345) == "1.234e-05"
    assert numfmt.num(0.13421) == "0.1342"
    assert numfmt.num(123456.7) == "123,457"
    assert numfmt.num(None) == "—"
    assert numfmt.num("n/a") == "n/a"


@pytest.mark.parametrize(("n", "shown"), [(0, "0 tensors"), (1, "1 tensor"), (2, "2 tensors"),
                                          (1200, "1,200 tensors")])
def test_plural(n, shown) -> None:
    assert numfmt.plural(n, "tensor") == shown


def test_metric_cells_use_the_singular_for_one() -> None:
    assert fmt_metric({"value": 1.0, "unit": "tensors"}) == "1 tensor"
    assert fmt_metric({"value": 3.0, "unit": "tensors"}) == "3 tensors"
    assert fmt_metric({"value": 0.0024, "unit": "×"}) == "0.0024×"
    assert fmt_metric({"value": 0.0004, "unit": "share"}) == "0.04 %"
    assert fmt_metric({"value": None, "unit": "×"}) == "—"


def test_small_axis_values_do_not_collide() -> None:
    """Ticks of 1e-5 read '1e-5', not '0.000010' (whose neighbours ran together as
    '0.0000000.000010'); 0 is '0' and ordinary values keep their format."""
    import re

    import altair as alt

    from reportgen.views.charts import finish
    from reportgen.views.html import chart_svg

    def labels(values: list[float]) -> list[str]:
        rows = [{"x": v, "y": str(i)} for i, v in enumerate(values)]
        chart = finish(alt.Chart(alt.Data(values=rows)).mark_bar().encode(
            x="x:Q", y="y:N").properties(width=300))
        svg = chart_svg(chart.to_dict())
        return re.findall(r'<text[^>]*>([^<]*)</text>', svg)

    tiny = labels([3e-5, 7e-5])
    assert "0" in tiny and "5e-5" in tiny
    assert not any(t.startswith("0.0000") for t in tiny)
    assert "0.20" in labels([0.1, 0.3])


def test_a_value_just_under_one_is_not_one() -> None:
    from reportgen.core.numfmt import num

    assert num(0.999982) == "0.99998"
    assert num(-0.99999) == "-0.99999"
    assert num(1.0) == "1" and num(0.95) == "0.95"
