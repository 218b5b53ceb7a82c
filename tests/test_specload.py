"""Loading specs: every problem at once, each located (file:line: field) and worded exactly."""

from __future__ import annotations

import copy
import tempfile
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reportgen.core.errors import InputError, SpecError
from reportgen.spec.load import LoadedSpec, load_spec
from reportgen.spec.types import AuditSpec
from reportgen.spec.yamlsrc import resolve_path

GOOD = """\
audit: {name: demo, release: v1}
models:
  base: {path: ./base}
  candidates:
    - {name: finetuned, path: ./ft}
    - {name: base-int8, derive: {from: base, quantize: int8}, role: noise_floor}
probes:
  concepts: {vocabulary: vocab.yaml, template: "The concept of {term} is"}
checks:
  - {id: drift, metric: concepts.cosine_distance.mean, candidate: finetuned, fail_if: "> 0.2", warn_if: "> 0.1"}
output: {dir: out, formats: [html, pdf, json]}
"""  # noqa: E501


@pytest.fixture()
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A spec folder as cwd, holding a small vocabulary, so messages show short file names."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "vocab.yaml").write_text("animals: [dog, cat]\nfood: [bread]\n")
    return tmp_path


def write(text: str, name: str = "spec.yaml") -> str:
    Path(name).write_text(textwrap.dedent(text))
    return name


def problems(source: object) -> list[str]:
    with pytest.raises(SpecError) as err:
        load_spec(source)
    return str(err.value).splitlines()


def good_dict() -> dict:
    return yaml.safe_load(GOOD)


# --- valid specs ------------------------------------------------------------------------------


def test_good_spec_loads(here: Path) -> None:
    loaded = load_spec(write(GOOD))
    assert isinstance(loaded, LoadedSpec)
    assert loaded.file == "spec.yaml"
    assert loaded.base_dir == here
    assert loaded.spec.candidate("base-int8").derive.from_ == "base"
    assert loaded.normalised["analysis"]["layers"] == "all"  # defaults filled in
    assert loaded.normalised["models"]["candidates"][1]["derive"]["from"] == "base"  # alias
    assert loaded.digest.startswith("sha256:") and len(loaded.digest) == 7 + 64


def test_dict_and_auditspec_inputs(here: Path) -> None:
    from_file = load_spec(write(GOOD))
    from_dict = load_spec(good_dict())
    from_model = load_spec(AuditSpec.model_validate(good_dict()))
    assert from_dict.file == from_model.file == "<dict>"
    assert from_dict.base_dir == Path.cwd()
    assert from_file.digest == from_dict.digest == from_model.digest
    assert from_dict.spec == from_file.spec


def test_dict_problems_have_no_line(here: Path) -> None:
    spec = good_dict()
    spec["checks"][0]["metirc"] = spec["checks"][0].pop("metric")
    assert problems(spec) == [
        "<dict>: checks[0].metric: required key is missing",
        "<dict>: checks[0].metirc: unknown key 'metirc'. Did you mean 'metric'?",
    ]


# --- all problems at once, located ------------------------------------------------------------

MANY = """\
audit:
  name: demo
  release: v1
models:
  base: {path: ./base}
  candidates:
    - name: finetuned
      path: ./ft
probes:
  concepts:
    vocabulary: vocab.yaml
    template: "The concept of is"
analysis:
  top_tokens: abc
checks:
  - metirc: concepts.cosine_distance.mean
    fail_if: "> 0.2"
  - metric: concepts.cosine_distanse.mean
    candidate: finetunde
    fail_if: "> 0.2"
  - metric: concepts.cosine_distance.max
    fail_if: ">> 0.5"
output: {formats: [html, docx]}
"""


def test_many_mistakes_reported_together(here: Path) -> None:
    assert problems(write(MANY)) == [
        "spec.yaml:12: probes.concepts.template: must contain the placeholder {term}",
        "spec.yaml:14: analysis.top_tokens: expected a whole number, got 'abc'",
        "spec.yaml:16: checks[0].metric: required key is missing",
        "spec.yaml:16: checks[0].metirc: unknown key 'metirc'. Did you mean 'metric'?",
        "spec.yaml:18: checks[1].metric: unknown metric 'concepts.cosine_distanse.mean'. "
        "Did you mean: concepts.cosine_distance.mean, concepts.cosine_distance.median, "
        "concepts.cosine_distance.max?",
        "spec.yaml:19: checks[1].candidate: unknown candidate 'finetunde'. "
        "Did you mean 'finetuned'? Known: finetuned",
        "spec.yaml:22: checks[2].fail_if: cannot parse condition '>> 0.5': expected an "
        "operator (>, >=, <, <=, ==, !=) and a number, e.g. '> 0.2'",
        "spec.yaml:23: output.formats[1]: expected one of: html, pdf, json, model-card; got 'docx'",
    ]


# --- one mistake at a time --------------------------------------------------------------------


def one(here: Path, old: str, new: str) -> list[str]:
    assert old in GOOD
    return problems(write(GOOD.replace(old, new)))


@pytest.mark.parametrize("old,new,expected", [
    ("{id: drift, metric:", "{id: drift, metirc:",
     ["spec.yaml:10: checks[0].metric: required key is missing",
      "spec.yaml:10: checks[0].metirc: unknown key 'metirc'. Did you mean 'metric'?"]),
    ("{dir: out,", "{dir: out, colour: red,",
     ["spec.yaml:11: output.colour: unknown key 'colour'. "
      "Expected one of: dir, formats, sign, archive"]),
    ("release: v1}", "release: 1.3}",
     ['spec.yaml:1: audit.release: expected a string, got 1.3; put it in quotes: "1.3"']),
    ("name: demo,", "name: yes,",
     ['spec.yaml:1: audit.name: expected a string, got yes; put it in quotes: "yes"']),
    ("audit: {name: demo, release: v1}\n", "",
     ["spec.yaml:1: audit: required key is missing"]),
    ("path: ./base}", "pth: ./base}",
     ["spec.yaml:3: models.base.path: required key is missing",
      "spec.yaml:3: models.base.pth: unknown key 'pth'. Did you mean 'path'?"]),
    ("formats: [html, pdf, json]", "formats: [html, docx]",
     ["spec.yaml:11: output.formats[1]: expected one of: html, pdf, json, model-card; got 'docx'"]),
    ("formats: [html, pdf, json]", "formats: []",
     ["spec.yaml:11: output.formats: expected at least 1 item, got an empty list"]),
    ("formats: [html, pdf, json]", "formats: html",
     ["spec.yaml:11: output.formats: expected a list, got 'html'"]),
    ("models:\n", "models: abc\nmodels_:\n",
     ["spec.yaml:2: models: expected a mapping, got 'abc'",
      "spec.yaml:3: models_: unknown key 'models_'. Did you mean 'models'?"]),
    ("quantize: int8}", "quantize: int9}",
     ["spec.yaml:6: models.candidates[1].derive.quantize: expected one of: int8-dynamic, "
      "int8, int4; got 'int9'"]),
    ('"The concept of {term} is"', '"The concept of {word} is"',
     ["spec.yaml:8: probes.concepts.template: must contain the placeholder {term}"]),
    ('fail_if: "> 0.2"', 'fail_if: "above 0.2"',
     ["spec.yaml:10: checks[0].fail_if: cannot parse condition 'above 0.2': expected an "
      "operator (>, >=, <, <=, ==, !=) and a number, e.g. '> 0.2'"]),
    ('fail_if: "> 0.2"', "fail_if: 0.20",
     ["spec.yaml:10: checks[0].fail_if: cannot parse condition '0.20': expected an "
      "operator (>, >=, <, <=, ==, !=) and a number, e.g. '> 0.2'"]),
    (', fail_if: "> 0.2", warn_if: "> 0.1"', "",
     ["spec.yaml:10: checks[0]: has neither fail_if nor warn_if; expected at least one "
      "condition"]),
    ("metric: concepts.cosine_distance.mean", "metric: nonsense",
     ["spec.yaml:10: checks[0].metric: unknown metric 'nonsense'. "
      "Run 'reportgen metrics' for the list."]),
    ("candidate: finetuned", "candidate: fine",
     ["spec.yaml:10: checks[0].candidate: unknown candidate 'fine'. Did you mean "
      "'finetuned'? Known: finetuned, base-int8"]),
    ("candidate: finetuned", "candidate: zzz",
     ["spec.yaml:10: checks[0].candidate: unknown candidate 'zzz'. "
      "Known: finetuned, base-int8"]),
    ("candidate: finetuned", "candidate: base",
     ["spec.yaml:10: checks[0].candidate: 'base' is the base model, not a candidate; each "
      "check compares a candidate with it. Known: finetuned, base-int8"]),
    ("release: v1}", "release: v1, created: soon}",
     ["spec.yaml:1: audit.created: expected a date-time (YYYY-MM-DD HH:MM:SS) or a date "
      "(YYYY-MM-DD), got 'soon'"]),
    ("checks:\n", "analysis: {layers: some, batch_size: 0, seed: 1.5}\nchecks:\n",
     ["spec.yaml:9: analysis.layers: expected 'all' or a list of whole numbers, got 'some'",
      "spec.yaml:9: analysis.batch_size: expected a number >= 1, got 0",
      "spec.yaml:9: analysis.seed: expected a whole number, got 1.5"]),
    ("checks:\n", "analysis: {layers: [0, -1, x, true, 0]}\nchecks:\n",
     ["spec.yaml:9: analysis.layers[1]: expected a layer index >= 0, got -1",
      "spec.yaml:9: analysis.layers[2]: expected a whole number, got 'x'",
      "spec.yaml:9: analysis.layers[3]: expected a layer index (a whole number), got true",
      "spec.yaml:9: analysis.layers[4]: layer 0 is listed twice"]),
    ("checks:\n", "analysis: {layers: []}\nchecks:\n",
     ["spec.yaml:9: analysis.layers: expected 'all' or at least one layer index, "
      "got an empty list"]),
    ("{id: drift,", "{1: 2, id: drift,",
     ["spec.yaml:10: checks[0]: expected text keys, got the key 1"]),
    ("{path: ./base}", "{path: ./base, max_memory: {cpu: 2GB}}",
     ["spec.yaml:3: models.base: max_memory is accelerate's placement limit: it needs "
      "device: auto"]),
    ("{path: ./base}", "{path: ./base, device: auto, max_memory: {gpu0: 2GB, cpu: 2 gigs}}",
     ["spec.yaml:3: models.base.max_memory: 'gpu0' is not a device; expected cpu or cuda:N"]),
    ("{path: ./base}", "{path: ./base, device: auto, max_memory: {cpu: 2 gigs}}",
     ["spec.yaml:3: models.base.max_memory: cpu: '2 gigs' is not a size; expected bytes, or "
      "a number and a unit such as 500MB, 70GiB"]),
])
def test_single_mistake(here: Path, old: str, new: str, expected: list[str]) -> None:
    assert one(here, old, new) == expected


def test_duplicate_key(here: Path) -> None:
    text = GOOD.replace("models:\n", "models:\n  base: {path: ./other}\n")
    assert problems(write(text)) == [
        "spec.yaml:4: models.base: duplicate key 'base' (first at line 3)",
    ]


def test_duplicate_model_names(here: Path) -> None:
    text = GOOD.replace("    - {name: finetuned, path: ./ft}\n",
                        "    - {name: finetuned, path: ./ft}\n"
                        "    - {name: finetuned, path: ./ft2}\n"
                        "    - {name: base, path: ./b2}\n")
    assert problems(write(text)) == [
        "spec.yaml:6: models.candidates[1].name: duplicate model name 'finetuned'; "
        "models.candidates[0] already uses it",
        "spec.yaml:7: models.candidates[2].name: 'base' is the name of the base model; "
        "choose another name",
    ]


def test_candidate_sources(here: Path) -> None:
    text = GOOD.replace("{name: finetuned, path: ./ft}",
                        "{name: finetuned, path: ./ft, derive: {from: base, quantize: int8}}")
    assert problems(write(text)) == [
        "spec.yaml:5: models.candidates[0]: has both path and derive; expected exactly one "
        "of them",
    ]
    assert one(here, "{name: finetuned, path: ./ft}", "{name: finetuned}") == [
        "spec.yaml:5: models.candidates[0]: has neither path nor derive; expected exactly one "
        "of them",
    ]


def test_derive_from(here: Path) -> None:
    assert one(here, "from: base,", "from: bsae,") == [
        "spec.yaml:6: models.candidates[1].derive.from: unknown model 'bsae'. "
        "Did you mean 'base'? Known: base, finetuned, base-int8",
    ]
    assert one(here, "from: base,", "from: base-int8,") == [
        "spec.yaml:6: models.candidates[1].derive.from: a model cannot derive from itself",
    ]
    loop = GOOD.replace("{name: finetuned, path: ./ft}",
                        "{name: finetuned, derive: {from: b, quantize: int8}}\n"
                        "    - {name: b, derive: {from: finetuned, quantize: int4}}")
    assert problems(write(loop)) == [
        "spec.yaml:5: models.candidates[0].derive.from: derivations form a loop: "
        "finetuned -> b -> finetuned",
    ]


def test_derive_from_a_later_candidate_is_fine(here: Path) -> None:
    text = GOOD.replace("from: base,", "from: finetuned,")
    assert load_spec(write(text)).spec.models.candidates[1].derive.from_ == "finetuned"


def test_only_noise_floors(here: Path) -> None:
    assert one(here, "{name: finetuned, path: ./ft}",
               "{name: finetuned, path: ./ft, role: noise_floor}") == [
        "spec.yaml:4: models.candidates: every candidate is a noise floor; expected at least "
        "one with role: candidate",
    ]


def test_duplicate_check_ids(here: Path) -> None:
    extra = (
        "  - {id: drift, metric: concepts.cosine_distance.max, fail_if: '> 1'}\n"
        "  - {metric: concepts.cosine_distance.max, candidate: finetuned, fail_if: '> 2'}\n"
        "  - {metric: concepts.cosine_distance.max, candidate: finetuned, fail_if: '> 3'}\n"
        "  - {id: drift, metric: concepts.cosine_distance.max, candidate: base-int8,"
        " fail_if: '> 3'}\n"
    )
    text = GOOD.replace("output:", extra + "output:")
    assert problems(write(text)) == [
        "spec.yaml:11: checks[1].id: duplicate check id 'drift'; checks[0] already uses it",
        "spec.yaml:13: checks[3]: duplicate check: checks[2] already checks "
        "'concepts.cosine_distance.max' on the same candidates; give one of them an id",
        "spec.yaml:14: checks[4].id: duplicate check id 'drift'; checks[1] already uses it",
    ]


def test_same_metric_on_other_candidates_is_fine(here: Path) -> None:
    extra = (
        "  - {metric: concepts.cosine_distance.max, candidate: finetuned, fail_if: '> 2'}\n"
        "  - {metric: concepts.cosine_distance.max, candidate: base-int8, fail_if: '> 3'}\n"
    )
    assert len(load_spec(write(GOOD.replace("output:", extra + "output:"))).spec.checks) == 3


# --- the vocabulary reference -----------------------------------------------------------------


def test_vocabulary_missing(here: Path) -> None:
    assert one(here, "vocabulary: vocab.yaml", "vocabulary: ./words.yaml") == [
        "spec.yaml:8: probes.concepts.vocabulary: ./words.yaml: vocabulary file not found",
    ]


def test_vocabulary_resolves_against_the_spec_folder(here: Path) -> None:
    sub = here / "sub"
    sub.mkdir()
    (sub / "spec.yaml").write_text(GOOD)
    (sub / "vocab.yaml").write_text("animals: [dog]\n")
    (here / "vocab.yaml").unlink()  # would be found if paths resolved against the cwd
    assert load_spec("sub/spec.yaml").base_dir == sub


def test_vocabulary_problems_are_located(here: Path) -> None:
    (here / "vocab.yaml").write_text("animals: [dog, cat]\nfood: []\n")
    assert problems(write(GOOD)) == [
        "spec.yaml:8: probes.concepts.vocabulary: vocab.yaml:2: category 'food' has no terms; "
        "expected a list of terms",
    ]


def test_every_vocabulary_problem_with_every_other_problem(here: Path) -> None:
    """One run: each bad line of the vocabulary, and the rest of the spec's problems."""
    (here / "vocab.yaml").write_text("animals: [dog, dog]\nfin.ance: [bank]\nfood: [7]\n")
    text = GOOD.replace('fail_if: "> 0.2"', 'fail_if: "big"')
    assert problems(write(text)) == [
        "spec.yaml:8: probes.concepts.vocabulary: vocab.yaml:1: term 'dog' is listed twice in "
        "'animals'",
        "spec.yaml:8: probes.concepts.vocabulary: vocab.yaml:2: category 'fin.ance': a category "
        "name cannot contain '.', which separates the parts of metric names "
        "(concepts.category.NAME.cosine_distance.mean)",
        "spec.yaml:8: probes.concepts.vocabulary: vocab.yaml:3: category 'food': expected a "
        "term (text), got 7; put it in quotes",
        "spec.yaml:10: checks[0].fail_if: cannot parse condition 'big': expected an operator "
        "(>, >=, <, <=, ==, !=) and a number, e.g. '> 0.2'",
    ]


def test_every_bad_line_of_domain_texts_and_risk_packs(here: Path) -> None:
    Path("d.jsonl").write_text('{"text": "fine"}\n{"txt": "x"}\nnot json\n{"text": " "}\n')
    Path("r.jsonl").write_text('{"prompt": "Q", "safe": ["a"], "unsafe": ["b"]}\n'
                               '{"prompt": "Q", "safe": []}\n[1]\n')
    probes = ('concepts: {vocabulary: vocab.yaml, template: "The concept of {term} is"}\n'
              "  domains: [{name: d, texts: d.jsonl}]\n"
              "  risk: [{name: r, prompts: r.jsonl}]")
    pack = ('expected {"prompt": str, "safe": [str, ...], "unsafe": [str, ...]} with '
            "non-empty lists")
    assert one(here, 'concepts: {vocabulary: vocab.yaml, template: "The concept of {term} is"}',
               probes) == [
        "spec.yaml:9: probes.domains[0].texts: d.jsonl:2: expected an object with a 'text' "
        "string",
        "spec.yaml:9: probes.domains[0].texts: d.jsonl:3: not valid JSON (Expecting value at "
        "line 1 column 1)",
        "spec.yaml:9: probes.domains[0].texts: d.jsonl:4: blank text",
        f"spec.yaml:10: probes.risk[0].prompts: {here / 'r.jsonl'}:2: {pack}",
        f"spec.yaml:10: probes.risk[0].prompts: {here / 'r.jsonl'}:3: {pack}",
    ]


def test_domain_and_risk_names_cannot_hold_a_dot(here: Path) -> None:
    """They are one segment of metric names (domains.NAME.…), like concept categories."""
    probes = ('concepts: {vocabulary: vocab.yaml, template: "The concept of {term} is"}\n'
              "  domains: [{name: fin.ance, texts: 'builtin:domains/finance'}]\n"
              "  risk: [{name: 'a b', prompts: 'builtin:risk/financial_advice'}]")
    expected = "expected a name of letters, digits, '_' and '-' (it becomes part of metric names)"
    assert one(here, 'concepts: {vocabulary: vocab.yaml, template: "The concept of {term} is"}',
               probes) == [
        f"spec.yaml:9: probes.domains[0].name: {expected}, got 'fin.ance'",
        f"spec.yaml:10: probes.risk[0].name: {expected}, got 'a b'",
    ]


def test_vocabulary_builtin_unknown(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    packs = here / "packs"
    packs.mkdir()
    (packs / "concepts.yaml").write_text("a: [b]\n")
    monkeypatch.setattr("reportgen.spec.probes.probes_dir", lambda: packs)
    assert one(here, "vocabulary: vocab.yaml", "vocabulary: builtin:concept") == [
        "spec.yaml:8: probes.concepts.vocabulary: unknown built-in pack 'concept'. "
        "Did you mean 'concepts'? Available: concepts",
    ]


def test_vocabulary_env_var(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RG_NOPE", raising=False)
    assert one(here, "vocabulary: vocab.yaml", "vocabulary: '${RG_NOPE}/v.yaml'") == [
        "spec.yaml:8: probes.concepts.vocabulary: ${RG_NOPE}/v.yaml: environment variable "
        "RG_NOPE is not set; set it or write ${RG_NOPE:-default}",
    ]
    monkeypatch.setenv("RG_HERE", str(here))
    assert load_spec(write(GOOD.replace("vocab.yaml", "'${RG_HERE}/vocab.yaml'"))).spec


# --- files and YAML ---------------------------------------------------------------------------


def test_missing_and_unreadable_files(here: Path) -> None:
    with pytest.raises(InputError) as err:
        load_spec("nope.yaml")
    assert str(err.value) == "nope.yaml: spec file not found"
    assert not isinstance(err.value, SpecError)
    with pytest.raises(InputError) as err:
        load_spec(here)
    assert str(err.value) == f"{here}: is a folder; expected a spec file"
    Path("latin1.yaml").write_bytes(b"audit: {name: caf\xe9}\n")
    with pytest.raises(InputError) as err:
        load_spec("latin1.yaml")
    assert str(err.value) == "latin1.yaml: the spec file is not UTF-8 text (byte 0xe9 at offset 17)"


@pytest.mark.parametrize("text,expected", [
    ("", "spec.yaml: the spec file is empty; expected a mapping with the keys audit, models, "
         "probes"),
    ("# only a comment\n", "spec.yaml: the spec file is empty; expected a mapping with the keys "
                           "audit, models, probes"),
    ("- audit\n", "spec.yaml:1: expected a mapping with the keys audit, models, probes, "
                  "got a list"),
    ("just words\n", "spec.yaml:1: expected a mapping with the keys audit, models, probes, "
                     "got 'just words'"),
    ("audit:\n  name: x\n checks: 1\n",
     "spec.yaml:3: YAML syntax error: expected <block end>, but found '<block mapping start>'"),
    ("a: [1, 2\n", "spec.yaml:2: YAML syntax error: expected ',' or ']', but got '<stream end>'"),
    ("a: 1\n---\nb: 2\n", "spec.yaml:2: YAML syntax error: expected a single document in the "
                          "stream, but found another document"),
    ("checks:\n  - fail_if: > 0.2\n",
     "spec.yaml:2: YAML syntax error: expected a comment or a line break, but found '0' "
     '(put conditions in quotes, e.g. fail_if: "> 0.2")'),
    ("audit:\n\tname: x\n", "spec.yaml:2: YAML syntax error: found character '\\t' that cannot "
                            "start any token (indent with spaces, not tabs)"),
    ("a: !!python/object/apply:os.system [ls]\n",
     "spec.yaml:1: YAML error: could not determine a constructor for the tag "
     "'tag:yaml.org,2002:python/object/apply:os.system'"),
    ("a: 2024-13-45\n", "spec.yaml:1: YAML error: invalid date '2024-13-45' "
                        "(month must be in 1..12)"),
    ("a: &a [*a]\n", "spec.yaml:1: YAML error: an alias refers to the value that contains it"),
    ("a: \x1f\n", "spec.yaml:1: YAML syntax error: unacceptable character #x001f: special "
                  "characters are not allowed"),
    ("a: *nope\n", "spec.yaml:1: YAML syntax error: found undefined alias 'nope'"),
])
def test_yaml_level_problems(here: Path, text: str, expected: str) -> None:
    assert problems(write(text)) == [expected]


def test_alias_bomb_is_refused(here: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 8)]
    assert problems(write("\n".join(lines) + "\n")) == [
        "spec.yaml:5: YAML error: aliases repeat more than 100000 values",
    ]


def test_big_documents_without_aliases_are_fine(here: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("reportgen.spec.yamlsrc.MAX_VALUES", 1000)
    words = ", ".join(f"w{i}" for i in range(3000))
    Path("vocab.yaml").write_text(f"many: [{words}]\n")
    assert load_spec(write(GOOD)).spec.probes.concepts.vocabulary == "vocab.yaml"
    Path("vocab.yaml").write_text(f"many: &m [{words}]\nmore: [*m]\n")
    assert problems(write(GOOD)) == [
        "spec.yaml:8: probes.concepts.vocabulary: vocab.yaml:2: YAML error: aliases repeat "
        "more than 1000 values",
    ]


def test_aliases_and_merge_keys_are_allowed(here: Path) -> None:
    text = GOOD.replace(
        "    - {name: finetuned, path: ./ft}\n",
        "    - &ft {name: finetuned, path: ./ft}\n    - {<<: *ft, name: ft2}\n",
    )
    assert load_spec(write(text)).spec.candidate("ft2").path == "./ft"


# --- digests ----------------------------------------------------------------------------------

REORDERED = """\
# same spec, block style, keys in another order, defaults spelled out
output:
  formats: [html, pdf, json]
  dir: out
checks:
  - warn_if: "> 0.1"
    fail_if: "> 0.2"
    candidate: finetuned
    metric: concepts.cosine_distance.mean
    id: drift
probes:
  concepts:
    template: "The concept of {term} is"
    vocabulary: vocab.yaml
models:
  candidates:
    - path: ./ft
      name: finetuned
      role: candidate
    - role: noise_floor
      derive:
        quantize: int8
        from: base
      name: base-int8
  base:
    path: ./base
analysis: {layers: all}
audit:
  release: v1
  name: demo
"""


def test_digest_ignores_order_and_formatting(here: Path) -> None:
    a = load_spec(write(GOOD, "a.yaml"))
    b = load_spec(write(REORDERED, "b.yaml"))
    assert a.digest == b.digest
    assert a.normalised == b.normalised


def test_digest_changes_with_a_threshold(here: Path) -> None:
    a = load_spec(write(GOOD, "a.yaml"))
    c = load_spec(write(GOOD.replace('"> 0.2"', '"> 0.25"'), "c.yaml"))
    assert a.digest != c.digest


# --- paths ------------------------------------------------------------------------------------


def test_resolve_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RG_ROOT", "/data")
    monkeypatch.setenv("RG_EMPTY", "")
    monkeypatch.delenv("RG_UNSET", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    base = Path("/specs")
    assert resolve_path("ckpt/ft", base) == Path("/specs/ckpt/ft")
    assert resolve_path("/abs/ft", base) == Path("/abs/ft")
    assert resolve_path("${RG_ROOT}/ft", base) == Path("/data/ft")
    assert resolve_path("${RG_UNSET:-models}/ft", base) == Path("/specs/models/ft")
    assert resolve_path("${RG_EMPTY:-models}/ft", base) == Path("/specs/models/ft")
    assert resolve_path("~/ft", base) == tmp_path / "ft"
    assert resolve_path("$HOME/ft", base) == Path("/specs/$HOME/ft")  # only ${...} expands


@pytest.mark.parametrize("text,expected", [
    ("${RG_UNSET}/ft", "${RG_UNSET}/ft: environment variable RG_UNSET is not set; set it or "
                       "write ${RG_UNSET:-default}"),
    ("${RG_UNSET/ft", "${RG_UNSET/ft: cannot expand '${'; expected ${NAME} or "
                      "${NAME:-default}"),
])
def test_resolve_path_errors(monkeypatch: pytest.MonkeyPatch, text: str, expected: str) -> None:
    monkeypatch.delenv("RG_UNSET", raising=False)
    with pytest.raises(InputError) as err:
        resolve_path(text, Path("/specs"))
    assert str(err.value) == expected


# --- fuzz: nothing but SpecError / InputError ever escapes ------------------------------------

SPEC_KEYS = ["audit", "name", "release", "created", "models", "base", "path", "candidates",
             "derive", "from", "quantize", "role", "probes", "concepts", "vocabulary",
             "template", "analysis", "layers", "checks", "id", "metric", "candidate", "fail_if",
             "warn_if", "output", "dir", "formats"]
SCALARS = (st.none() | st.booleans() | st.integers() | st.floats()
           | st.sampled_from(["> 0.2", "finetuned", "base", "all", "int8", "html", "{term}"])
           | st.text(max_size=12))
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(SPEC_KEYS) | st.text(max_size=6) | st.integers(),
                      inner, max_size=4),
    max_leaves=30,
)
TOKENS = st.sampled_from(
    [*SPEC_KEYS, ": ", "- ", "\n", "  ", "{", "}", "[", "]", ",", "&a ", "*a", "<<: ", "!!str ",
     "'", '"', "> 0.2", "#", "---", "\t", "2024-13-40", "yes", "0x1F", "~", "? ", "|", "%"]
)
FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def _only_our_errors(source: object) -> None:
    try:
        load_spec(source)
    except SpecError as e:
        assert e.problems
        assert len(str(e).splitlines()) == len(e.problems)  # one line per problem
    except InputError as e:
        assert len(str(e).splitlines()) == 1


@FUZZ
@given(st.lists(TOKENS | st.text(max_size=5), max_size=40).map("".join))
def test_fuzz_yaml_text(text: str) -> None:
    folder = Path(tempfile.mkdtemp())
    (folder / "spec.yaml").write_bytes(text.encode("utf-8", "surrogatepass"))
    _only_our_errors(str(folder / "spec.yaml"))


@FUZZ
@given(st.dictionaries(st.sampled_from(SPEC_KEYS) | st.text(max_size=6), VALUES, max_size=6))
def test_fuzz_random_dicts(data: dict) -> None:
    _only_our_errors(data)


def _paths(value: object, path: tuple = ()) -> list[tuple]:
    out = [path]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*path, i))
    return out


@FUZZ
@given(st.data())
def test_fuzz_one_value_of_a_good_spec(data: st.DataObject) -> None:
    spec = good_dict()
    spec["probes"]["concepts"]["vocabulary"] = "builtin:concepts"
    path = data.draw(st.sampled_from(_paths(spec)[1:]))
    value = data.draw(VALUES)
    target = spec
    for key in path[:-1]:
        target = target[key]
    if data.draw(st.booleans()):
        target[path[-1]] = value
    else:
        del target[path[-1]]
    _only_our_errors(copy.deepcopy(spec))


def test_max_memory_sizes_in_bytes(here: Path) -> None:
    """device: auto with max_memory loads; every size is handed to accelerate in bytes (its
    own parser refuses 'TiB', '100B' and a space), a GPU by its index."""
    from types import SimpleNamespace

    from reportgen.capture.loading import _load_kwargs
    from reportgen.spec.resolve import LoadOptions
    from reportgen.spec.types import memory_bytes

    text = GOOD.replace("{path: ./base}", "{path: ./base, device: auto, max_memory: "
                        "{cuda:1: 1.5 TiB, cpu: 100B, cuda:0: 70000000}}")
    spec = load_spec(write(text)).spec
    limits = spec.models.base.max_memory
    assert limits == {"cuda:1": "1.5 TiB", "cpu": "100B", "cuda:0": 70_000_000}
    assert [memory_bytes(v) for v in ("1.5 TiB", "100B", "70GB", "2 KiB")] == [
        int(1.5 * 1024 ** 4), 100, 70 * 10 ** 9, 2048]
    rm = SimpleNamespace(path=None, options=LoadOptions(device="auto", max_memory=limits))
    assert _load_kwargs(rm)["max_memory"] == {1: int(1.5 * 1024 ** 4), "cpu": 100,
                                              0: 70_000_000}
