"""The tiny audits' certificates equal the golden ones (tests/golden): a change of layout or
refactor that changes a number, a table or a sentence fails here, naming where."""

from __future__ import annotations

from pathlib import Path

import pytest
from golden.golden import KINDS, compare, read, tiny_certificates, without_layout


@pytest.fixture(scope="module")
def certificates(tiny_models, tmp_path_factory) -> dict:
    return tiny_certificates(tiny_models, tmp_path_factory.mktemp("golden"))


@pytest.mark.parametrize("kind", KINDS)
def test_certificate_equals_golden(certificates, kind: str) -> None:
    diffs = compare(without_layout(read(kind)), without_layout(certificates[kind]))
    assert not diffs, ("the certificate differs from tests/golden (regenerate with "
                       "`.venv/bin/python tests/golden/golden.py` if the change is meant):\n"
                       + "\n".join(diffs))


def test_compare_names_what_differs() -> None:
    old = {"a": [1.0, 2.0, {"b": "x"}], "c": 3}
    new = {"a": [1.0, 2.00001, {"b": "y"}], "d": 3}
    assert compare(old, new) == ["$.a[2].b: 'x' -> 'y'", "$.c: only before", "$.d: only after"]
    assert compare({"v": 1.0}, {"v": 1.01}) == ["$.v: 1.0 -> 1.01"]
    assert compare([1, 2], [1]) == ["$: 2 items -> 1"]


def test_golden_files_are_small() -> None:
    for kind in KINDS:
        path = Path(__file__).parent / "golden" / f"tiny-{kind}.json.gz"
        assert path.stat().st_size < 400_000
