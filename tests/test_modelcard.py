"""Model card: front matter and section, merged idempotently, the rest byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from certfactory import make_certificate

from reportgen import cli
from reportgen.certificate import Certificate
from reportgen.modelcard import (
    BEGIN,
    END,
    ModelCardError,
    headline_metrics,
    md,
    merge_model_card,
    render_model_card,
)

README = """---
license: apache-2.0   # chosen by legal
language:
- en
tags: [support, chat]
---
# Support bot

A fine-tune of GPT-2 for support chats.

## Limitations
Not for medical advice.
"""


def run_cli(argv: list[str]) -> int:
    return cli.main(argv)


@pytest.fixture
def cert() -> Certificate:
    return Certificate(make_certificate())


def _front_matter(text: str) -> dict:
    return yaml.safe_load(text.split("---\n")[1])


def _section(text: str) -> str:
    return text[text.index(BEGIN):text.index(END) + len(END)]


def test_fresh_card_has_front_matter_and_section(cert) -> None:
    card = render_model_card(cert)
    assert card.startswith("---\nalignment_certificate:\n  verdict: FAIL\n")
    assert _front_matter(card) == {"alignment_certificate": {
        "verdict": "FAIL", "digest": f"sha256:{cert.digest}",
        "audit": "support-bot fine-tune", "release": "v1.3",
        "created": "2025-03-14T09:26:53Z", "certificate": "certificate.html",
        "tool": "reportgen 0.1.0"}}
    section = _section(card)
    assert "**Verdict: FAIL** · support-bot fine-tune · release v1.3 · audited " \
           "2025-03-14T09:26:53Z · reportgen 0.1.0" in section
    assert "| concept-drift-finetuned | finetuned | `concepts.cosine_distance.mean` | 0.1342 | " \
           "fail if &gt; 0.05; warn if &gt; 0.02 | **FAIL** |" in section
    assert f"Full certificate: [certificate.html](certificate.html) · certificate JSON " \
           f"SHA-256 `{cert.digest}`" in section
    assert card.endswith(END + "\n")


def test_headline_metrics_are_fixed_ones_then_checked_ones(cert) -> None:
    assert headline_metrics(cert.data) == [
        "concepts.cosine_distance.mean", "concepts.cosine_distance.noise_floor_ratio",
        "embeddings.cosine_distance.mean", "embeddings.cosine_distance.noise_floor_ratio",
        "concepts.category.finance.cosine_distance.mean", "embeddings.cosine_distance.p99"]


def test_merge_preserves_the_rest_and_is_idempotent(cert) -> None:
    once = merge_model_card(README, cert)
    assert merge_model_card(once, cert) == once
    head, rest = README.split("---\n# Support bot", 1)
    ours = "alignment_certificate:" + once.split("alignment_certificate:", 1)[1].split("---\n")[0]
    # Our key is appended to the front matter; the body follows unchanged, then our section.
    assert once == head + ours + "---\n# Support bot" + rest + "\n" + _section(once) + "\n"
    fm = _front_matter(once)
    assert fm["license"] == "apache-2.0" and fm["tags"] == ["support", "chat"]
    assert "# chosen by legal" in once


def test_merging_a_new_release_replaces_only_our_parts(cert) -> None:
    once = merge_model_card(README, cert)
    data = make_certificate(seed=1)
    data["audit"]["release"] = "v1.4"
    newer = Certificate(data)
    twice = merge_model_card(once, newer)
    assert twice.count(BEGIN) == 1 and twice.count("alignment_certificate:") == 1
    assert _front_matter(twice)["alignment_certificate"]["release"] == "v1.4"
    assert twice.replace(_section(twice), "") == once.replace(_section(once), "").replace(
        f"sha256:{cert.digest}", f"sha256:{newer.digest}").replace("release: v1.3",
                                                                   "release: v1.4")
    assert merge_model_card(twice, newer) == twice


def test_card_without_front_matter_gets_one(cert) -> None:
    body = "# Just a title\n\nSome words."
    merged = merge_model_card(body, cert)
    assert merged.startswith("---\nalignment_certificate:\n")
    assert "---\n# Just a title\n\nSome words.\n\n" + BEGIN in merged
    assert merge_model_card(merged, cert) == merged


def test_crlf_cards_stay_crlf(cert) -> None:
    crlf = README.replace("\n", "\r\n")
    merged = merge_model_card(crlf, cert)
    assert "\n" not in merged.replace("\r\n", "")
    assert merged.startswith(crlf.split("---\r\n# Support")[0])
    assert merge_model_card(merged, cert) == merged


def test_base_model_is_added_once_and_never_replaced(cert) -> None:
    data = make_certificate()
    data["models"][0]["source"] = "openai-community/gpt2"
    hub = Certificate(data)
    merged = merge_model_card(README, hub)
    assert _front_matter(merged)["base_model"] == "openai-community/gpt2"
    theirs = README.replace("license:", "base_model: gpt2\nlicense:")
    assert _front_matter(merge_model_card(theirs, hub))["base_model"] == "gpt2"
    # A local path is not a hub id: no base_model.
    assert "base_model" not in _front_matter(merge_model_card(README, cert))


def test_lone_marker_and_bad_yaml_are_refused(cert) -> None:
    with pytest.raises(ModelCardError) as e:
        merge_model_card(README + BEGIN + "\n", cert, where="README.md")
    assert str(e.value) == ("README.md:13: the certificate section's begin marker has no "
                            "partner; restore or remove it")
    with pytest.raises(ModelCardError) as e:
        merge_model_card("---\nlicense: [mit\n---\n", cert, where="README.md")
    assert str(e.value).startswith("README.md: the front matter is not valid YAML (")


def test_markdown_cells_cannot_inject_html_or_break_tables() -> None:
    assert md("<script>|x|</script>") == "&lt;script&gt;\\|x\\|&lt;/script&gt;"
    assert md("a\nb  c") == "a b c"
    assert md("*bold* _it_ [link]") == "\\*bold\\* \\_it\\_ \\[link\\]"


def test_cli_merge_updates_in_place_then_reports_up_to_date(cert, tmp_path: Path,
                                                            capsys) -> None:
    (tmp_path / "certificate.json").write_text(cert.to_json())
    readme = tmp_path / "README.md"
    readme.write_text(README)
    argv = ["modelcard", str(tmp_path), "--merge", str(readme)]
    assert run_cli(argv) == 0
    assert capsys.readouterr().out == f"{readme}: updated\n"
    assert readme.read_text() == merge_model_card(README, cert)
    assert run_cli(argv) == 0
    assert capsys.readouterr().out == f"{readme}: already up to date\n"


def test_cli_prints_the_card_without_merge(cert, tmp_path: Path, capsys) -> None:
    (tmp_path / "certificate.json").write_text(cert.to_json())
    assert run_cli(["modelcard", str(tmp_path / "certificate.json")]) == 0
    assert capsys.readouterr().out == render_model_card(cert)


def test_cli_missing_readme_is_exit_2(cert, tmp_path: Path, capsys) -> None:
    (tmp_path / "certificate.json").write_text(cert.to_json())
    missing = tmp_path / "README.md"
    assert run_cli(["modelcard", str(tmp_path), "--merge", str(missing)]) == 2
    assert capsys.readouterr().err == (
        f"error: {missing}: no such file; to start a model card, copy model-card.md from the "
        "audit's output folder\n")
