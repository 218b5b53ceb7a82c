"""The hand-written certificate schema accepts what the builder makes and names what is wrong."""

from __future__ import annotations

import copy

import pytest
from certfactory import make_certificate
from jsonschema import Draft202012Validator

from reportgen.certificate.schema import (
    certificate_problems,
    json_path,
    load_schema,
    validate_certificate,
)
from reportgen.core.resources import schemas_dir


@pytest.fixture(scope="module")
def cert() -> dict:
    return make_certificate()


def test_schema_is_a_valid_draft_2020_12_schema():
    assert (schemas_dir() / "certificate.schema.json").is_file()
    Draft202012Validator.check_schema(load_schema())
    assert load_schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("kwargs", [{}, {"noise_floor": False}, {"checks": ()}])
def test_builder_output_validates(kwargs):
    validate_certificate(make_certificate(**kwargs))


def test_missing_required_field_is_named(cert):
    broken = copy.deepcopy(cert)
    del broken["models"][1]["digest"]
    with pytest.raises(ValueError) as e:
        validate_certificate(broken)
    assert str(e.value) == (
        "not a valid certificate (1 problem):\n"
        "  $.models[1]: 'digest' is a required property"
    )


def test_every_problem_is_listed_at_once(cert):
    broken = copy.deepcopy(cert)
    del broken["schema_version"]
    broken["verdict"] = "MAYBE"
    broken["checks"][0]["status"] = "OK"
    broken["comparisons"][0]["metrics"]["concepts.cosine_distance.mean"]["value"] = "0.1"
    broken["models"][0]["digest"]["root"] = "not-a-digest"
    problems = certificate_problems(broken)
    assert problems == [
        "$: 'schema_version' is a required property",
        "$.checks[0].status: 'OK' is not one of ['PASS', 'WARN', 'FAIL', 'ERROR']",
        '$.comparisons[0].metrics["concepts.cosine_distance.mean"].value: '
        "'0.1' is not of type 'number', 'null'",
        "$.models[0].digest.root: 'not-a-digest' does not match '^(sha256:)?[0-9a-f]{64}$'",
        "$.verdict: 'MAYBE' is not one of ['PASS', 'WARN', 'FAIL', 'ERROR']",
    ]


def test_concept_and_token_rows_are_typed(cert):
    broken = copy.deepcopy(cert)
    broken["comparisons"][0]["tables"]["concepts"][0]["rank"] = 0
    del broken["comparisons"][1]["tables"]["tokens"][2]["token"]
    assert certificate_problems(broken) == [
        "$.comparisons[0].tables.concepts[0].rank: 0 is less than the minimum of 1",
        "$.comparisons[1].tables.tokens[2]: 'token' is a required property",
    ]


def test_verdict_must_be_the_worst_check_status(cert):
    assert cert["verdict"] == "FAIL"
    broken = dict(cert, verdict="WARN")
    assert certificate_problems(broken) == [
        "$.verdict: 'WARN' but the worst check status is 'FAIL'"
    ]


def test_not_an_object():
    with pytest.raises(ValueError, match=r"\$: \[\] is not of type 'object'"):
        validate_certificate([])


def test_json_path_quotes_keys_that_are_not_identifiers():
    assert json_path(["comparisons", 0, "metrics", "a.b", "value"]) == (
        '$.comparisons[0].metrics["a.b"].value'
    )
