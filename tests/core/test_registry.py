"""The metric registry as a whole: every definition speaks of the name's own placeholders."""

from __future__ import annotations

import re

from reportgen.core.names import _PLACEHOLDERS, lookup, registry

PLACEHOLDER = re.compile(r"\{(\w+)\}")


def test_definitions_and_names_use_the_same_placeholders() -> None:
    assert len(registry()) > 50
    wrong = []
    for name, info in registry().items():
        in_name = set(PLACEHOLDER.findall(name))
        in_definition = set(PLACEHOLDER.findall(info.definition))
        if in_name != in_definition:
            wrong.append(f"{name}: name has {sorted(in_name)}, definition has "
                         f"{sorted(in_definition)}")
        assert in_name <= set(_PLACEHOLDERS), name
    assert not wrong, "\n".join(wrong)


def test_weight_blocks_are_named_by_block_not_layer() -> None:
    """Weight blocks count from 0 as in the checkpoint (h.0); layers count the embedding
    output as 0, so block n's output is layer n + 1: the two must not share a placeholder."""
    info = lookup("weights.block.3.relative_drift")
    assert info is not None and info.name == "weights.block.{block}.relative_drift"
    assert "{layer}" not in info.definition


def test_one_concrete_metric_reads_its_definition_with_its_own_values() -> None:
    """Where a page or the archive shows one concrete metric (one SAE layer, one domain), its
    definition names that layer or domain, not the placeholder."""
    from reportgen.core.names import concrete_definition

    samples = {"layer": "3", "block": "7", "category": "finance", "domain": "legal"}
    for name, info in registry().items():
        keys = PLACEHOLDER.findall(name)
        if not keys:
            continue
        concrete = PLACEHOLDER.sub(lambda m: samples[m.group(1)], name)
        assert lookup(concrete) is info, concrete
        text = concrete_definition(concrete, info.definition)
        assert "{" not in text, (concrete, text)
        for key in keys:
            assert samples[key] in text, (concrete, text)
    assert "after block 3 (0 = embedding output)" in concrete_definition(
        "concepts.layer.3.cosine_distance.mean",
        registry()["concepts.layer.{layer}.cosine_distance.mean"].definition)
