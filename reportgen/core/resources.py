"""Where templates and built-in probe packs live, from a checkout or an installed wheel.

In the repository they sit at the top level (``templates/``, ``specs/probes/``); the wheel
carries them inside the package as ``reportgen/_data/…`` (see pyproject's force-include).
"""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parents[1]  # the reportgen package
_REPO = _PKG.parent


def _first_existing(*candidates: Path) -> Path:
    for c in candidates:
        if c.is_dir():
            return c
    raise FileNotFoundError(
        "reportgen's data files are missing (looked in "
        + ", ".join(str(c) for c in candidates)
        + "); reinstall the package"
    )


def templates_dir() -> Path:
    return _first_existing(_PKG / "_data" / "templates", _REPO / "templates")


def probes_dir() -> Path:
    return _first_existing(_PKG / "_data" / "probes", _REPO / "specs" / "probes")


def schemas_dir() -> Path:
    return _PKG / "certificate" / "schemas"
