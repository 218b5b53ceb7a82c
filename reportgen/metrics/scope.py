"""Which probe sets each metric family needs.

A family without its probes is simply not measured, so a check that names one of its metrics
could only ever be ERROR: ``reportgen validate`` refuses it instead, before any model loads.
Imports nothing heavy (validate runs without torch).
"""

from __future__ import annotations

import re
from typing import Any

#: (metric-name prefix, the ``probes`` keys of which at least one must be set), most specific
#: first: ``cka.concepts.`` needs concepts although ``cka.`` as a whole needs nothing.
NEEDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("concepts.", ("concepts",)),
    ("neighbors.concepts.", ("concepts",)),
    ("cka.concepts.", ("concepts",)),
    ("cka.domains.", ("domains",)),
    ("domains.", ("domains",)),
    ("behavior.", ("risk",)),
    ("probabilities.", ("domains", "risk")),
)
_RISKY = re.compile(r"(sae\.layer\.[^.]+\.risky\.)")


def unmeasured(metric: str, probes: Any) -> str | None:
    """Why ``metric`` is not measured with these (raw) ``probes``, or None when it is."""
    if not isinstance(probes, dict):
        return None  # a missing or malformed probes section is reported on its own
    risky = _RISKY.match(metric)
    needs = [(risky.group(1), ("risk",))] if risky else [
        (prefix, keys) for prefix, keys in NEEDS if metric.startswith(prefix)]
    if not needs:
        return None
    prefix, keys = needs[0]
    if any(probes.get(k) for k in keys):
        return None
    names = [f"probes.{k}" for k in keys]
    unset = f"{names[0]} is not set" if len(names) == 1 else \
        f"neither {' nor '.join(names)} is set"
    return f"{unset}, so {prefix}* metrics are not measured"
