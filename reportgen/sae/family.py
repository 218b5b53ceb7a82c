"""Registers the sparse-feature family: the ``sae`` collector and pair analysis."""

from __future__ import annotations

from ..families import register_collector, register_pair_analysis
from .collect import factory
from .pair import sae_pair

register_collector("sae", factory)
register_pair_analysis("sae", sae_pair)
