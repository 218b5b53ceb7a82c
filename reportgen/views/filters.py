"""Jinja filters: how numbers, digests and names are written on the certificate page."""

from __future__ import annotations

import functools
import re
from typing import Any

from markupsafe import Markup

from reportgen.core import numfmt
from reportgen.core.tokentext import token_label
from reportgen.views.charts import slug

fmt_num = numfmt.num
fmt_ratio = numfmt.ratio
fmt_pct = numfmt.pct


def fmt_metric(m: dict[str, Any] | None) -> str:
    """A metric value in its unit ('57.8×', '87.5 %', '0.1342', '1 tensor')."""
    if m is None or m.get("value") is None:
        return "—"
    return numfmt.with_unit(m["value"], m.get("unit", ""))


def fmt_params(n: int | None) -> str:
    if not n:
        return "—"
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if n >= size:
            return f"{n / size:.1f} {suffix}"
    return str(n)


def short_digest(d: str | None, keep: int = 12) -> str:
    if not d:
        return "—"
    return d if len(d) <= keep + 1 else d[:keep] + "…"


def dotted(name: Any) -> Markup:
    """A dotted metric name that may wrap after each dot (long names in narrow cells)."""
    return Markup(".<wbr>").join(str(name).split("."))


def unbroken_number(v: float, unit: str) -> Markup:
    """A value in its unit whose number never wraps ('5.216e-' / '05' in a narrow cell)
    while a word unit may go to the next line."""
    text = numfmt.with_unit(v, unit)
    number, sep, rest = text.partition(" ")
    if not rest.isalpha():  # '87.5 %' stays whole
        number, sep, rest = text, "", ""
    return Markup('<span class="n">{}</span>{}{}').format(number, sep, rest)


@functools.cache
def _hyphenator() -> Any:
    import pyphen

    return pyphen.Pyphen(lang="en_GB")


def soft_hyphens(text: Any) -> str:
    """``text`` with soft hyphens where its long words may break (narrow column headers):
    browsers without a hyphenation dictionary (Chromium on Linux) break them anywhere else."""
    return re.sub(r"[^\W\d_]{8,}", lambda m: _hyphenator().inserted(m.group(), "\u00ad"),
                  str(text))


FILTERS = {"num": fmt_num, "ratio": fmt_ratio, "pct": fmt_pct, "metric": fmt_metric,
           "params": fmt_params, "short": short_digest,
           "dotted": dotted, "plural": numfmt.plural,
           "token": token_label, "with_unit": numfmt.with_unit, "slug": slug,
           "soft_hyphens": soft_hyphens, "unbroken_number": unbroken_number}
