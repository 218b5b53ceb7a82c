"""How a plug-in metric family appears on the page: title, intro, charts and tables.

The built-in representation families are laid out by :mod:`reportgen.views.html` and
:mod:`reportgen.views.charts` directly; a family added through :mod:`reportgen.core.family`
registers a :class:`FamilyView` here instead, so it brings its own section without edits to
the page code. Everything a view shows comes from the certificate's data alone (``render``
works without a model).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reportgen.views.tables import Table

Data = dict[str, Any]


def _all(_: str) -> bool:
    return True


def _no_tables(_: Data) -> tuple[dict[str, list[Table]], list[str]]:
    return {}, []


@dataclass(frozen=True)
class FamilyView:
    family: str  # the metric-name prefix, e.g. "probabilities"
    title: str
    intro: str
    #: figures (reportgen.render.charts.Figure, ``family`` set to this family), reading order
    figures: Callable[[Data], list[Any]] = lambda _: []
    #: (figure id -> tables shown under it, notes shown under the headline table)
    tables: Callable[[Data], tuple[dict[str, list[Table]], list[str]]] = _no_tables
    #: which of the family's metric names go into the headline table
    headline: Callable[[str], bool] = _all
    #: lower-case words that tie one of the certificate's limitations to this section
    #: (e.g. ("sae", "dictionary")); empty: the family name without a final "s"
    keywords: tuple[str, ...] = ()


_VIEWS: dict[str, FamilyView] = {}


def register_view(view: FamilyView) -> None:
    if view.family in _VIEWS:
        raise ValueError(f"view for {view.family!r} registered twice")
    _VIEWS[view.family] = view


def views() -> dict[str, FamilyView]:
    """Registered views in page order (registration order)."""
    _import_views()
    return dict(_VIEWS)


def _import_views() -> None:
    """Views register on import; each lives in its own module under reportgen/render."""
    import importlib

    for name in ("probabilities_view", "behavior_view", "sae_view"):  # page order
        importlib.import_module(f"{__package__}.{name}")
