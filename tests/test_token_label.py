"""Tokens are shown as readers can read them, decoded from GPT-2's byte-level alphabet."""

from __future__ import annotations

import pytest
from tokenizers.pre_tokenizers import ByteLevel

from reportgen.core.tokentext import token_label


def _encode(text: str) -> str:
    """The tokenizers library's own byte-level mapping: an independent reference."""
    pieces = ByteLevel(add_prefix_space=False, use_regex=False).pre_tokenize_str(text)
    return "".join(p for p, _ in pieces)


@pytest.mark.parametrize("text,shown", [
    (" network", "␣network"), ("\n", "⏎"), ("\t", "⇥"), ("  ", "␣␣"), (" café", "␣café"),
])
def test_byte_level_tokens_are_decoded(text: str, shown: str) -> None:
    assert token_label(_encode(text)) == shown


def test_other_tokens_are_left_alone() -> None:
    assert token_label("bank") == "bank"
    assert token_label("##ing") == "##ing"
    assert token_label("[CLS]") == "[CLS]"
    assert token_label("\x00") == "'\\x00'"
