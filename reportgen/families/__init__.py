"""The metric families, one folder each, in the order the page shows them.

Adding a family is one folder (its ``__init__`` defines ``FAMILY``, a
:class:`reportgen.core.family.Family`) and one line in :data:`ORDER`. Importing this package
imports each family's ``__init__``, which registers its metric names (no torch, no altair).
"""

from __future__ import annotations

import importlib
from functools import cache

from reportgen.core.family import Family

ORDER = (
    "concepts",
    "embeddings",
    "neighbors",
    "cka",
    "domains",
    "weights",
    "probabilities",
    "behavior",
    "sae",
    "projection",
)


@cache
def families() -> tuple[Family, ...]:
    """Every family, in page order."""
    out = tuple(importlib.import_module(f"{__name__}.{name}").FAMILY for name in ORDER)
    for name, fam in zip(ORDER, out, strict=True):
        if fam.name != name:
            raise ValueError(f"families/{name} defines the family {fam.name!r}")
    return out


def family(name: str) -> Family | None:
    return next((f for f in families() if f.name == name), None)


def table_owner(table: str) -> Family | None:
    """The family that declares the certificate table ``table``."""
    return next((f for f in families() if table in f.tables), None)
