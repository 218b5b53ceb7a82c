"""Every chart the demo certificate draws is valid Vega-Lite. The page builds its specs
without Altair's validation (a third of its build time), so the schema is checked here."""

from __future__ import annotations

import jsonschema
import pytest
from altair.vegalite.v6.schema import core

from reportgen.views.html import page_context


@pytest.mark.parametrize("mode", ["html", "pdf"])
def test_every_demo_chart_is_valid_vega_lite(demo_cert, mode):
    cert, _ = demo_cert
    figures = page_context(cert, mode=mode, page_size="A4")["figures"]
    assert figures
    validator = jsonschema.Draft7Validator(core.load_schema())
    for f in figures:
        errors = [e.message for e in validator.iter_errors(f.spec())]
        assert errors == [], f"{f.id}: {errors[:3]}"


def test_an_invalid_spec_is_caught():
    """The check above can fail: a mark type Vega-Lite does not know is an error."""
    validator = jsonschema.Draft7Validator(core.load_schema())
    bad = {"mark": "hexagon", "data": {"values": []}}
    assert list(validator.iter_errors(bad))
