"""reportgen: audit a fine-tuned transformer against its base model.

``reportgen.audit(spec)`` runs the whole pipeline and returns a :class:`Certificate`.
Importing this package is cheap: torch and transformers load only when an audit runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reportgen.core import names as _names
from reportgen.core.version import __version__

# metric names are registered by the families; load them before the first lookup
_names.set_loader(lambda: __import__("reportgen.families", fromlist=["families"]).families())

if TYPE_CHECKING:
    from reportgen.api import Certificate

__all__ = ["audit", "Certificate", "__version__"]


def audit(spec: Any, out: str | None = None, progress: bool = True,
          write: bool = False) -> Certificate:
    """Run an audit from a spec (a path, a dict or an AuditSpec) and return its certificate.

    Unlike ``reportgen audit``, nothing is written by default, whatever the spec's
    ``output:`` says: a notebook re-running an audit should not overwrite a release's files
    (or sign and archive them) as a side effect. ``out`` writes the spec's formats to that
    folder; ``write=True`` does what the command line does (``output.dir``, and signing and
    archiving when ``output`` asks); ``.save(dir, formats)`` on the result writes it later.
    """
    from reportgen.pipeline import run_audit

    return run_audit(spec, out=out, progress=progress, write=write)


def __getattr__(name: str) -> Any:
    if name == "Certificate":
        from reportgen.api import Certificate

        return Certificate
    raise AttributeError(name)
