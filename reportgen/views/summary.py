"""A few plain-language sentences about a certificate, from its JSON alone: the verdict, one
line per candidate made of each family's clause (``Family.summary``), the noise floor, the
checks that did not pass.

Every sentence states something the numbers in the certificate support: a ratio to the
noise floor is only given when the certificate has one, a "moved most" only when there is
more than one category to compare.
"""

from __future__ import annotations

from typing import Any

from reportgen.core import numfmt
from reportgen.families import families
from reportgen.views import charts
from reportgen.views.series import series_lines

MAX_CHECK_LINES = 5
_COUNTS = (("FAIL", "failed"), ("ERROR", "could not be computed"), ("WARN", "warned"),
           ("PASS", "passed"))


def summary_lines(data: dict[str, Any]) -> list[str]:
    """Verdict, the series' onsets, then one line per finding about each candidate, the noise
    floor, non-passing checks, warnings."""
    lines = [verdict_line(data), *series_lines(data)]
    comps = charts.latest(data)
    for c in comps:
        if c.get("role") != "noise_floor":
            lines += finding_lines(c)
    lines += [noise_floor_line(c) for c in comps if c.get("role") == "noise_floor"]
    lines += check_lines(data.get("checks") or [])
    n_warn = len(data.get("warnings") or [])
    if n_warn:
        lines.append(f"{plural(n_warn, 'warning')} recorded during the audit; "
                     "see Warnings and limitations.")
    return [ln for ln in lines if ln]


def verdict_line(data: dict[str, Any]) -> str:
    """'Verdict: FAIL (2 of 6 checks failed, 1 warned, 3 passed).'"""
    checks = data.get("checks") or []
    verdict = data.get("verdict", "ERROR")
    if not checks:
        return (f"Verdict: {verdict} (the audit defined no checks, so nothing was compared "
                "with a threshold).")
    counts = [(n, word) for status, word in _COUNTS
              if (n := sum(c.get("status") == status for c in checks))]
    total = plural(len(checks), "check")
    if len(counts) == 1:
        everything = "the only check" if len(checks) == 1 else f"all {total}"
        return f"Verdict: {verdict} ({everything} {counts[0][1]})."
    (n, word), rest = counts[0], counts[1:]
    tail = ", ".join(f"{m} {w}" for m, w in rest)
    return f"Verdict: {verdict} ({n} of {total} {word}, {tail})."


def candidate_line(comp: dict[str, Any]) -> str:
    """Every finding of a candidate joined on one line ('finetuned: concept drift 0.134 (57.8×
    the noise floor); …'); the page shows them one per line (:func:`finding_lines`)."""
    parts = findings(comp)
    if not parts:
        return f"{comp.get('candidate')}: no drift metric was computed."
    return f"{comp.get('candidate')}: " + "; ".join(parts) + "."


def finding_lines(comp: dict[str, Any]) -> list[str]:
    """One short sentence per finding: 'finetuned: concept drift 0.134 (57.8× the noise
    floor).', then 'finetuned: the most moved concepts are …'."""
    parts = findings(comp)
    if not parts:
        return [candidate_line(comp)]
    return [f"{comp.get('candidate')}: {p}." for p in parts]


def findings(comp: dict[str, Any]) -> list[str]:
    """Every family's findings about one comparison, in page order."""
    out: list[str] = []
    for f in families():
        said = f.summary(comp)
        out += [said] if isinstance(said, str) else list(said)
    return [p for p in out if p]


def noise_floor_line(comp: dict[str, Any]) -> str:
    parts = [p for f in families() if (p := f.floor_summary(comp))]
    if not parts:
        return ""
    return (f"Noise floor ({comp.get('candidate')}): " + " and ".join(parts)
            + "; the candidates' ratios are measured against these.")


def check_lines(checks: list[dict[str, Any]]) -> list[str]:
    """One line per non-passing check, worst first, at most ``MAX_CHECK_LINES``."""
    order = {"ERROR": 0, "FAIL": 1, "WARN": 2}
    bad = sorted((c for c in checks if c.get("status") in order),
                 key=lambda c: order[c["status"]])
    lines = [f"{c['status']} {c.get('id')}: {_sentence(c.get('message', ''))}"
             for c in bad[:MAX_CHECK_LINES]]
    if len(bad) > MAX_CHECK_LINES:
        lines.append(f"… and {len(bad) - MAX_CHECK_LINES} more non-passing checks "
                     "(see the checks table).")
    return lines


def ratio_text(comp: dict[str, Any], prefix: str) -> str:
    times = value(comp, f"{prefix}.noise_floor_ratio")
    if times is not None:
        return f"{ratio(times)} the noise floor"
    metric = (comp.get("metrics") or {}).get(f"{prefix}.noise_floor_ratio") or {}
    error = metric.get("error") or ""
    if "zero" in error:
        return "the noise floor measured zero drift, so no ratio"
    return "no noise floor to compare with"


def value(comp: dict[str, Any], name: str) -> float | None:
    m = (comp.get("metrics") or {}).get(name)
    return None if m is None else m.get("value")


def _sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text[-1] in ".!?" else text + "."


def num3(v: float) -> str:
    return numfmt.num(v, 3)


ratio = numfmt.ratio
plural = numfmt.plural


def join_words(items: list[str]) -> str:
    items = [str(i) for i in items]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
