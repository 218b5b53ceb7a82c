"""Registers the sparse-feature family: the ``sae`` collector and pair analysis."""

from __future__ import annotations

from reportgen.core.family import register_collector, register_pair_analysis
from reportgen.families.sae.collect import factory
from reportgen.families.sae.pair import sae_pair

register_collector("sae", factory)
register_pair_analysis("sae", sae_pair)
