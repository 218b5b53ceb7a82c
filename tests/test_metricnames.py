"""Check metric names against what the spec will compute: every placeholder, every family."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from reportgen.core.errors import SpecError
from reportgen.spec.load import load_spec
from reportgen.spec.metricnames import Known, metric_problem, placeholder_kinds, registered_patterns

ALL_ON = Known(category=["medical", "food"], domain=["finance"], risk=["advice"],
               sae_layer=[2], layer=[0, 1, 2, 3], n_layers=3, noise_floor=True, weights=True,
               full_vocabulary=True)
VALUE = {"category": "medical", "domain": "finance", "risk": "advice", "sae_layer": "2",
         "layer": "3", "block": "2"}


@pytest.mark.parametrize("pattern", registered_patterns())
def test_every_placeholder_of_every_pattern_is_checked(pattern: str) -> None:
    """A new pattern must say what its placeholders range over, else this fails."""
    kinds = placeholder_kinds(pattern)
    assert kinds and None not in kinds, pattern
    name = pattern
    for kind in kinds:
        name = re.sub(r"\{\w+\}", VALUE[kind], name, count=1)
    assert metric_problem(name, ALL_ON) is None, name


def test_placeholder_kinds() -> None:
    assert placeholder_kinds("cka.domains.{domain}.layer.{layer}") == ["domain", "layer"]
    assert placeholder_kinds("behavior.category.{category}.misalignment_score") == ["risk"]
    assert placeholder_kinds("neighbors.concepts.category.{category}.jaccard.mean") == [
        "category"]
    assert placeholder_kinds("weights.block.{layer}.relative_drift") == ["block"]
    assert placeholder_kinds("weights.block.{block}.relative_drift") == ["block"]
    assert placeholder_kinds("sae.layer.{layer}.fvu.ratio") == ["sae_layer"]


SPEC = """\
audit: {name: x}
models:
  base: {path: ./base}
  candidates: [{name: ft, path: ./ft}]
probes:
  concepts: {vocabulary: vocab.yaml}
analysis: {layers: [0, 2], sae: [{layer: 1, train: {}}], weights: false}
checks:
  - {metric: concepts.category.medicine.cosine_distance.mean, fail_if: "> 1"}
  - {metric: neighbors.concepts.category.fod.jaccard.mean, fail_if: "< 0"}
  - {metric: domains.finance.cosine_distance.mean, fail_if: "> 1"}
  - {metric: cka.domains.finance.mean, fail_if: "< 0"}
  - {metric: behavior.category.advice.misalignment_score, fail_if: "> 1"}
  - {metric: behavior.misalignment_score, fail_if: "> 1"}
  - {metric: probabilities.js.mean, fail_if: "> 1"}
  - {metric: concepts.layer.1.cosine_distance.mean, fail_if: "> 1"}
  - {metric: cka.concepts.layer.2, fail_if: "< 0"}
  - {metric: sae.layer.2.jaccard.mean, fail_if: "< 0"}
  - {metric: sae.layer.1.risky.top_rise, fail_if: "> 1"}
  - {metric: weights.relative_drift.max, fail_if: "> 1"}
  - {metric: neighbors.tokens.jaccard.mean, fail_if: "< 0"}
  - {metric: concepts.cosine_distance.noise_floor_ratio, fail_if: "> 10"}
  - {metric: concepts.share_above_noise_floor_10x, fail_if: "> 0.5"}
  - {metric: concepts.category.medical.noise_floor_ratio, fail_if: "> 10"}
  - {metric: sae.layer.1.fvu.ratio, fail_if: "> 2"}
"""


def test_names_the_spec_does_not_define_are_all_reported(tmp_path: Path, monkeypatch) -> None:
    """Without the models (load_spec's default) everything the spec alone determines."""
    monkeypatch.chdir(tmp_path)
    Path("vocab.yaml").write_text("medical: [doctor]\nfood: [bread]\n")
    Path("spec.yaml").write_text(SPEC)
    with pytest.raises(SpecError) as err:
        load_spec("spec.yaml")
    assert str(err.value).splitlines() == [
        "spec.yaml:9: checks[0].metric: unknown concept category 'medicine' in "
        "'concepts.category.medicine.cosine_distance.mean'. Did you mean 'medical'? Known: "
        "medical, food",
        "spec.yaml:10: checks[1].metric: unknown concept category 'fod' in "
        "'neighbors.concepts.category.fod.jaccard.mean'. Did you mean 'food'? Known: medical, "
        "food",
        "spec.yaml:11: checks[2].metric: 'domains.finance.cosine_distance.mean' names the "
        "domain 'finance', but the spec has no probes.domains",
        "spec.yaml:12: checks[3].metric: 'cka.domains.finance.mean' names the domain "
        "'finance', but the spec has no probes.domains",
        "spec.yaml:13: checks[4].metric: 'behavior.category.advice.misalignment_score' names "
        "the risk set 'advice', but the spec has no probes.risk",
        "spec.yaml:14: checks[5].metric: 'behavior.misalignment_score' is measured on the risk "
        "probes, and the spec has no probes.risk",
        "spec.yaml:15: checks[6].metric: 'probabilities.js.mean' is measured on the domain and "
        "risk probe texts, and the spec has neither probes.domains nor probes.risk",
        "spec.yaml:16: checks[7].metric: 'concepts.layer.1.cosine_distance.mean' names layer 1, "
        "which is not captured: analysis.layers captures 0, 2",
        "spec.yaml:18: checks[9].metric: 'sae.layer.2.jaccard.mean' names layer 2, which has no "
        "sparse dictionary: analysis.sae has layers 1",
        "spec.yaml:19: checks[10].metric: 'sae.layer.1.risky.top_rise' is measured on the risk "
        "probes, and the spec has no probes.risk",
        "spec.yaml:20: checks[11].metric: 'weights.relative_drift.max' is computed only with "
        "analysis.weights: true",
        "spec.yaml:21: checks[12].metric: 'neighbors.tokens.jaccard.mean' is computed only with "
        "analysis.neighborhoods.tokens: full-vocabulary",
        "spec.yaml:22: checks[13].metric: 'concepts.cosine_distance.noise_floor_ratio' is a "
        "ratio to the noise floor, and no candidate has role: noise_floor",
        "spec.yaml:23: checks[14].metric: 'concepts.share_above_noise_floor_10x' is a ratio to "
        "the noise floor, and no candidate has role: noise_floor",
        "spec.yaml:24: checks[15].metric: 'concepts.category.medical.noise_floor_ratio' is a "
        "ratio to the noise floor, and no candidate has role: noise_floor",
    ]


def test_the_same_names_pass_once_the_spec_defines_them(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("vocab.yaml").write_text("medical: [doctor]\nfood: [bread]\nmedicine: [pill]\n"
                                  "fod: [x]\n")
    text = SPEC.replace("analysis: {layers: [0, 2], sae: [{layer: 1, train: {}}], weights: "
                        "false}", textwrap.dedent("""\
        analysis:
          layers: [0, 1, 2]
          sae: [{layer: 1, train: {}}, {layer: 2, train: {}}]
          neighborhoods: {tokens: full-vocabulary}"""))
    text = text.replace("probes:\n  concepts: {vocabulary: vocab.yaml}\n", textwrap.dedent("""\
        probes:
          concepts: {vocabulary: vocab.yaml}
          domains: [{name: finance, texts: "builtin:domains/finance"}]
          risk: [{name: advice, prompts: "builtin:risk/financial_advice"}]
        """))
    text = text.replace("candidates: [{name: ft, path: ./ft}]", "candidates: [{name: ft, path: "
                        "./ft}, {name: q, derive: {from: base, quantize: int8}, "
                        "role: noise_floor}]")
    Path("spec.yaml").write_text(text)
    assert len(load_spec("spec.yaml").spec.checks) == 17
