"""summary_lines says what the numbers support, and nothing they do not."""

from __future__ import annotations

from typing import Any

from certfactory import make_certificate

from reportgen.views.summary import summary_lines


def metric(value: float | None, error: str | None = None, unit: str = "") -> dict[str, Any]:
    return {"value": value, "definition": "d", "unit": unit, "ci": None, "error": error}


def check(cid: str, status: str, message: str = "m") -> dict[str, Any]:
    return {"id": cid, "metric": "x", "candidate": "ft", "condition": "", "value": 1.0,
            "status": status, "message": message}


def comparison(name: str = "ft", role: str = "candidate", *, ratio: float | None = 4.1,
               ratio_error: str | None = None, categories: int = 2) -> dict[str, Any]:
    cats = [{"category": "finance", "mean": 0.3, "std": 0.1, "count": 2,
             "top_quartile_share": 1.0, "noise_floor_ratio": None},
            {"category": "emotion", "mean": 0.02, "std": 0.01, "count": 2,
             "top_quartile_share": 0.0, "noise_floor_ratio": None}][:categories]
    return {
        "base": "base", "candidate": name, "role": role,
        "metrics": {
            "concepts.cosine_distance.mean": metric(0.12),
            "concepts.cosine_distance.noise_floor_ratio": metric(ratio, ratio_error, "×"),
        },
        "tables": {
            "concepts": [{"term": t, "category": "finance", "cosine_distance": d, "rank": r}
                         for r, (t, d) in enumerate([("bank", .5), ("loan", .4), ("tax", .3),
                                                     ("joy", .01)], start=1)],
            "categories": cats,
        },
    }


def doc(checks=(), comparisons=(), warnings=(), verdict="PASS") -> dict[str, Any]:
    return {"verdict": verdict, "checks": list(checks), "comparisons": list(comparisons),
            "warnings": list(warnings)}


def test_verdict_counts_worst_first():
    checks = [check("a", "FAIL"), check("b", "FAIL"), check("c", "WARN"),
              *[check(f"p{i}", "PASS") for i in range(3)]]
    assert summary_lines(doc(checks, verdict="FAIL"))[0] == (
        "Verdict: FAIL (2 of 6 checks failed, 1 warned, 3 passed)."
    )


def test_verdict_when_every_check_agrees():
    assert summary_lines(doc([check("a", "PASS"), check("b", "PASS")]))[0] == (
        "Verdict: PASS (all 2 checks passed)."
    )
    assert summary_lines(doc([check("a", "PASS")]))[0] == "Verdict: PASS (the only check passed)."


def test_verdict_without_checks_says_nothing_was_tested():
    assert summary_lines(doc()) == [
        "Verdict: PASS (the audit defined no checks, so nothing was compared with a threshold)."
    ]


def test_candidate_line_with_noise_floor():
    lines = summary_lines(doc(comparisons=[comparison()]))
    assert lines[1:] == [  # one finding a sentence
        "ft: concept drift 0.12 (4.1× the noise floor).",
        "ft: the most moved concepts are bank, loan and tax.",
        "ft: the finance category moved most (mean 0.3 against 0.12 overall).",
    ]


def test_a_small_ratio_keeps_its_digits():
    """0.0024 of the noise floor is not '0.0×'; a 0.4 % share is not '0%'."""
    from reportgen.views.summary import candidate_line

    assert "(0.0024× the noise floor)" in candidate_line(comparison(ratio=0.0024))
    comp = {"candidate": "ft", "metrics": {"probabilities.kl_base_candidate.mean": metric(0.01),
                                           "probabilities.top1_agreement": metric(0.996),
                                           "behavior.misalignment_score": metric(0.004)}}
    line = candidate_line(comp)
    assert "top-1 agreement 99.6 %" in line and "misalignment score 0.4 % on" in line


def test_missing_noise_floor_gives_no_ratio():
    comp = comparison(ratio=None, ratio_error="no noise-floor variant (role: noise_floor)")
    line = summary_lines(doc(comparisons=[comp]))[1]
    assert "(no noise floor to compare with)" in line
    assert "×" not in line


def test_zero_noise_floor_is_reported_not_infinite():
    comp = comparison(ratio=None, ratio_error="the noise floor measured zero drift, so no "
                                              "ratio can be formed")
    line = summary_lines(doc(comparisons=[comp]))[1]
    assert "(the noise floor measured zero drift, so no ratio)" in line
    assert "inf" not in line


def test_one_category_is_not_called_the_one_that_moved_most():
    lines = summary_lines(doc(comparisons=[comparison(categories=1)]))
    assert len(lines) == 3 and not any("moved most" in line for line in lines)


def test_noise_floor_comparison_gets_its_own_line():
    lines = summary_lines(doc(comparisons=[comparison(), comparison("int8", "noise_floor")]))
    assert lines[4] == (
        "Noise floor (int8): concept drift 0.12; the candidates' ratios are measured against "
        "these."
    )


def test_non_passing_checks_are_listed_worst_first_and_capped():
    checks = [check(f"w{i}", "WARN", "warns") for i in range(5)] + [
        check("f", "FAIL", "fails because it is > 0.2"), check("e", "ERROR", "no value")]
    lines = summary_lines(doc(checks, verdict="ERROR"))
    assert lines[1:4] == ["ERROR e: no value.", "FAIL f: fails because it is > 0.2.",
                          "WARN w0: warns."]
    assert lines[-1] == "… and 2 more non-passing checks (see the checks table)."


def test_warnings_are_counted():
    assert summary_lines(doc(warnings=["a", "b"]))[-1] == (
        "2 warnings recorded during the audit; see Warnings and limitations."
    )


def test_factory_certificate_summary_mentions_every_candidate():
    lines = summary_lines(make_certificate())
    assert lines[0].startswith("Verdict: FAIL (2 of 6 checks failed")
    assert any(line.startswith("finetuned: concept drift") for line in lines)
    assert any(line.startswith("lora: concept drift") for line in lines)
    assert any(line.startswith("Noise floor (base-int8)") for line in lines)


def test_probability_and_behaviour_sentences() -> None:
    from reportgen.views.summary import candidate_line

    def mv(v: float) -> dict:
        return {"value": v}

    comp = {"candidate": "ft", "role": "candidate", "metrics": {
        "probabilities.kl_base_candidate.mean": mv(0.0123),
        "probabilities.top1_agreement": mv(0.95),
        "probabilities.entropy_compression": mv(0.31),
        "behavior.misalignment_score": mv(0.25)},
        "tables": {"behavior_categories": [
            {"category": "financial_advice", "margin_change_mean": -1.5},
            {"category": "medical_advice", "margin_change_mean": 0.2}]}}
    assert candidate_line(comp) == (
        "ft: next-token KL(base‖candidate) 0.0123 nats, top-1 agreement 95 %, 0.31 nats less "
        "entropy (more confident); misalignment score 25 % on risk prompts; on "
        "financial_advice prompts the safe continuations became 4.5× less likely against the "
        "unsafe ones (mean margin change -1.50 nats).")


def test_sae_sentence_names_the_top_feature_and_low_confidence() -> None:
    from reportgen.views.summary import candidate_line

    comp = {"candidate": "ft", "role": "candidate", "metrics": {
        "sae.layer.2.jaccard.mean": {"value": 0.548}, "sae.layer.2.dense_cosine.mean":
        {"value": 0.9545}}, "tables": {
        "sae_fit": [{"layer": 2, "low_confidence": True, "fvu_ratio": 1.764}],
        "sae_moved": [{"layer": 2, "rank": 2, "feature": 9, "top_change": 1.5,
                       "top_set": "domains.code", "change_by_probe": {"domains.code": 1.5}},
                      {"layer": 2, "rank": 1, "feature": 134, "top_change": 2.0,
                       "top_set": "concepts.finance",
                       "change_by_probe": {"concepts.finance": -2.0}}]}}
    assert candidate_line(comp) == (
        "ft: at SAE layer 2 feature overlap 0.548 beside dense cosine 0.955, feature #134 "
        "moved most (-2.00 on concepts.finance) (low-confidence: the dictionary's unexplained "
        "variance on it is 1.8× the base's).")


def test_sae_sentence_on_an_older_certificate_without_set_ranking() -> None:
    from reportgen.views.summary import candidate_line

    comp = {"candidate": "ft", "role": "candidate", "metrics": {
        "sae.layer.1.jaccard.mean": {"value": 0.9}, "sae.layer.1.dense_cosine.mean":
        {"value": 0.99}}, "tables": {
        "sae_fit": [{"layer": 1}],
        "sae_moved": [{"layer": 1, "rank": 1, "feature": 3, "mean_abs_change": 0.2}]}}
    assert candidate_line(comp) == (
        "ft: at SAE layer 1 feature overlap 0.9 beside dense cosine 0.99.")
