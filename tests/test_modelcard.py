"""Model card: front matter and section, merged idempotently, the rest byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from certfactory import make_certificate

from reportgen.api import Certificate
from reportgen.cli import commands as cli
from reportgen.views.modelcard import (
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


# ------------------------------------------------------------- a hostile certificate or card


def _hostile(tmp_path: Path, metric: str = "", algorithm: str = "sha256") -> Path:
    """A vendor's certificate whose first check names ``metric`` (also measured, so it is a
    headline) and whose base digest names ``algorithm``."""
    data = make_certificate()
    if metric:
        comp = data["comparisons"][0]
        comp["metrics"][metric] = dict(comp["metrics"]["concepts.cosine_distance.mean"])
        data["checks"][0].update(metric=metric, candidate=comp["candidate"])
    data["models"][0]["digest"]["algorithm"] = algorithm
    (tmp_path / "certificate.json").write_text(Certificate(data).to_json())
    return tmp_path


def test_backticks_in_a_metric_name_stay_inside_the_code_span(tmp_path: Path, capsys) -> None:
    cert = _hostile(tmp_path, metric="x` **owned** [click](https://evil.example) `y")
    assert run_cli(["modelcard", str(cert)]) == 0
    lines = capsys.readouterr().out.splitlines()
    row = next(ln for ln in lines if ln.startswith("| concept-drift-finetuned |"))
    assert row.split(" | ")[2] == "``x` **owned** [click](https://evil.example) `y``"
    assert "| ``x` **owned** [click](https://evil.example) `y`` | 0.1342 | — | — |" in lines


def test_backticks_in_a_digest_field_stay_inside_the_code_span(tmp_path: Path, capsys) -> None:
    cert = _hostile(tmp_path, algorithm="``sha256` | [x](javascript:alert(1)) |")
    assert run_cli(["modelcard", str(cert)]) == 0
    row = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| base |"))
    root = json.loads((cert / "certificate.json").read_text())["models"][0]["digest"]["root"]
    assert row == (f"| base | base | ``` ``sha256` \\| [x](javascript:alert(1)) \\|:{root} ``` |")


def test_an_injected_end_marker_leaves_nothing_behind(tmp_path: Path) -> None:
    """A metric named like our end marker: shown escaped, and the next merge replaces the
    whole section (it used to stop at the injected marker and leave the rest as junk)."""
    cert = _hostile(tmp_path, metric=END)
    readme = tmp_path / "README.md"
    readme.write_text(README)
    assert run_cli(["modelcard", str(cert), "--merge", str(readme)]) == 0
    once = readme.read_text()
    assert once.count(END) == 1 and once.count(BEGIN) == 1
    assert "| &lt;!-- reportgen:alignment-certificate:end --&gt; | 0.1342 |" in once
    clean = make_certificate()
    (tmp_path / "certificate.json").write_text(Certificate(clean).to_json())
    assert run_cli(["modelcard", str(cert), "--merge", str(readme)]) == 0
    assert readme.read_text() == merge_model_card(README, Certificate(clean))


def test_front_matter_after_a_byte_order_mark_is_not_duplicated(cert) -> None:
    card = "\ufeff" + README
    merged = merge_model_card(card, cert)
    assert merged.startswith("\ufeff---\nlicense: apache-2.0   # chosen by legal\n")
    assert merged.count("\n---\n") == 1 and merged.count("license:") == 1
    assert merged == "\ufeff" + merge_model_card(README, cert)
    assert merge_model_card(merged, cert) == merged


def test_a_symlinked_readme_stays_a_link(cert, tmp_path: Path, capsys) -> None:
    (tmp_path / "certificate.json").write_text(cert.to_json())
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "README.md").write_text(README)
    link = tmp_path / "README.md"
    link.symlink_to("docs/README.md")
    assert run_cli(["modelcard", str(tmp_path), "--merge", str(link)]) == 0
    assert capsys.readouterr().out == f"{link}: updated\n"
    assert link.is_symlink() and str(link.readlink()) == "docs/README.md"
    assert (tmp_path / "docs" / "README.md").read_text() == merge_model_card(README, cert)


def test_markers_inside_a_code_fence_are_the_users_text(cert) -> None:
    doc = (f"# How the section is kept\n\n```markdown\n{BEGIN}\nour section\n{END}\n```\n\n"
           f"~~~\n{BEGIN}\n~~~\nThe end.\n")
    card = README + doc
    merged = merge_model_card(card, cert)
    plain = merge_model_card(README, cert)
    assert merged == plain.split(BEGIN)[0][:-1] + doc + "\n" + _section(plain) + "\n"
    assert merge_model_card(merged, cert) == merged


def test_keys_after_ours_are_kept(cert) -> None:
    card = ("---\nalignment_certificate:\n  verdict: PASS\n  # a note of the user's\n\n"
            "-odd-key: 1\n'quoted': 2\nlicense: mit\n---\nbody\n")
    merged = merge_model_card(card, cert)
    for line in ("  # a note of the user's", "-odd-key: 1", "'quoted': 2", "license: mit"):
        assert line + "\n" in merged
    assert _front_matter(merged)["license"] == "mit"
    assert _front_matter(merged)["-odd-key"] == 1
    assert merge_model_card(merged, cert) == merged


def test_a_yaml_alias_elsewhere_in_the_front_matter(cert, tmp_path: Path, capsys) -> None:
    """An alias of another key merges; an alias of our key is refused with one line."""
    plain = merge_model_card("---\nbase: &b gpt2\nother: *b\n---\nbody\n", cert)
    assert _front_matter(plain)["other"] == "gpt2"
    (tmp_path / "certificate.json").write_text(cert.to_json())
    readme = tmp_path / "README.md"
    text = "---\nalignment_certificate: &a\n  verdict: PASS\nlicense: *a\n---\nbody\n"
    readme.write_text(text)
    assert run_cli(["modelcard", str(tmp_path), "--merge", str(readme)]) == 2
    assert capsys.readouterr().err == (
        f"error: {readme}: the front matter cannot be merged (replacing its "
        "'alignment_certificate' key gives: found undefined alias 'a'); does another key refer "
        "to an anchor in it?\n")
    assert readme.read_text() == text


def test_a_duplicated_section_is_refused_not_merged(cert) -> None:
    once = merge_model_card(README, cert)
    with pytest.raises(ModelCardError) as e:
        merge_model_card(once + "\n" + _section(once) + "\n", cert, where="README.md")
    assert str(e.value) == ("README.md:61: the certificate section's begin marker appears more "
                            "than once; restore or remove it")


def test_a_card_ending_in_an_open_code_fence_is_refused(cert) -> None:
    """Appended after an unclosed fence, the section would be code, and every later merge
    would append another one."""
    with pytest.raises(ModelCardError) as e:
        merge_model_card(README + "```python\nprint(1)\n", cert, where="README.md")
    assert str(e.value) == ("README.md:13: this code fence is never closed, so a section added "
                            "after it would be code; close it and merge again")
