"""The certificate as Python users get it from :func:`reportgen.audit`: the JSON document's
queries (:class:`reportgen.certificate.document.Certificate`) plus what needs the views:
a summary, saving every format, and display in a notebook."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reportgen.certificate import document
from reportgen.certificate.document import OWNED_FOLDERS


class Certificate(document.Certificate):
    """A certificate with its views: ``summary()``, ``save()``, and HTML in a notebook."""

    def summary(self) -> str:
        from reportgen.views.summary import summary_lines

        return "\n".join(summary_lines(self.data))

    def save(
        self, out_dir: str | Path, formats: list[str] | tuple[str, ...] = ("html", "pdf", "json"),
        sign: str | Path | None = None,
    ) -> dict[str, Path]:
        """Write the views and the attachments; with ``sign`` (an Ed25519 PEM key) also
        certificate.sig.json, which names the JSON and the views written."""
        from reportgen.release.write import write_outputs

        return write_outputs(self, Path(out_dir), list(formats), attachments=self.attachments,
                             owned=OWNED_FOLDERS, sign=Path(sign) if sign is not None else None)

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, str]:
        from reportgen.views.notebook import notebook_html

        return {"text/html": notebook_html(self), "text/plain": self.summary()}

    def drift_heatmap(self, layer: int, candidate: str | None = None) -> Any:
        """An Altair heatmap of the top moved SAE features x probe sets at ``layer`` (the first
        candidate that is not a noise floor unless named)."""
        from reportgen.families.sae.view import heatmap_chart

        if candidate is None:
            cands = [c["candidate"] for c in self.comparisons if c["role"] == "candidate"]
            candidate = (cands or [c["candidate"] for c in self.comparisons])[0]
        return heatmap_chart(self.data, candidate, layer)
