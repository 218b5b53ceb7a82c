"""A few plain-language sentences about a certificate, from its JSON alone.

Every sentence states something the numbers in the certificate support: a ratio to the
noise floor is only given when the certificate has one, a "moved most" only when there is
more than one category to compare.
"""

from __future__ import annotations

import math
from typing import Any

from . import numfmt

MAX_CHECK_LINES = 5
_COUNTS = (("FAIL", "failed"), ("ERROR", "could not be computed"), ("WARN", "warned"),
           ("PASS", "passed"))


def summary_lines(data: dict[str, Any]) -> list[str]:
    """Verdict, then one line per candidate, the noise floor, non-passing checks, warnings."""
    lines = [verdict_line(data)]
    comps = data.get("comparisons") or []
    lines += [candidate_line(c) for c in comps if c.get("role") != "noise_floor"]
    lines += [noise_floor_line(c) for c in comps if c.get("role") == "noise_floor"]
    lines += check_lines(data.get("checks") or [])
    n_warn = len(data.get("warnings") or [])
    if n_warn:
        lines.append(f"{_plural(n_warn, 'warning')} recorded during the audit; "
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
    total = _plural(len(checks), "check")
    if len(counts) == 1:
        everything = "the only check" if len(checks) == 1 else f"all {total}"
        return f"Verdict: {verdict} ({everything} {counts[0][1]})."
    (n, word), rest = counts[0], counts[1:]
    tail = ", ".join(f"{m} {w}" for m, w in rest)
    return f"Verdict: {verdict} ({n} of {total} {word}, {tail})."


def candidate_line(comp: dict[str, Any]) -> str:
    """'finetuned: concept drift 0.134 (57.8× the noise floor); …' from what was measured."""
    parts = [p for p in (_concept_part(comp), _token_part(comp), _probability_part(comp),
                         _behavior_part(comp), *_sae_parts(comp)) if p]
    if not parts:
        return f"{comp.get('candidate')}: no drift metric was computed."
    return f"{comp.get('candidate')}: " + "; ".join(parts) + "."


def noise_floor_line(comp: dict[str, Any]) -> str:
    parts = []
    v = _value(comp, "concepts.cosine_distance.mean")
    if v is not None:
        parts.append(f"concept drift {_num(v)}")
    v = _value(comp, "embeddings.cosine_distance.mean")
    if v is not None:
        parts.append(f"token-embedding drift {_num(v)}")
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


def _concept_part(comp: dict[str, Any]) -> str:
    mean = _value(comp, "concepts.cosine_distance.mean")
    if mean is None:
        return ""
    text = f"concept drift {_num(mean)} ({_ratio_text(comp, 'concepts.cosine_distance')})"
    tables = comp.get("tables") or {}
    top = [r["term"] for r in sorted(tables.get("concepts") or [], key=lambda r: r["rank"])]
    if top:
        text += f"; the most moved concepts are {_join(top[:3])}"
    cats = tables.get("categories") or []
    if len(cats) > 1:
        worst = max(cats, key=lambda r: r["mean"])
        text += (f"; the {worst['category']} category moved most "
                 f"(mean {_num(worst['mean'])} against {_num(mean)} overall)")
    return text


def _token_part(comp: dict[str, Any]) -> str:
    mean = _value(comp, "embeddings.cosine_distance.mean")
    if mean is None:
        return ""
    if mean == 0:
        text = "no token embedding moved"
    else:
        text = (f"token-embedding drift {_num(mean)} "
                f"({_ratio_text(comp, 'embeddings.cosine_distance')})")
    movers = sorted((r for r in (comp.get("tables") or {}).get("tokens") or []
                     if (r.get("cosine_distance") or 0) > 0), key=lambda r: r["rank"])
    if movers:
        from .render.charts import token_label

        text += f", largest for '{token_label(movers[0]['token'])}'"
    new = _value(comp, "embeddings.new_tokens")
    if new:
        text += f"; {_plural(int(new), 'new token')} not in the base vocabulary"
    return text


def _probability_part(comp: dict[str, Any]) -> str:
    """'next-token KL 0.012 nats, top-1 agreement 95%, 0.31 nats less entropy'."""
    kl = _value(comp, "probabilities.kl_base_candidate.mean")
    if kl is None:
        return ""
    text = f"next-token KL(base‖candidate) {_num(kl)} nats"
    top1 = _value(comp, "probabilities.top1_agreement")
    if top1 is not None:
        text += f", top-1 agreement {numfmt.pct(top1, 0)}"
    comp_h = _value(comp, "probabilities.entropy_compression")
    if comp_h is not None and abs(comp_h) >= 0.01:  # smaller is noise to a reader
        text += (f", {_num(abs(comp_h))} nats {'less' if comp_h > 0 else 'more'} entropy "
                 f"({'more' if comp_h > 0 else 'less'} confident)")
    return text


def _behavior_part(comp: dict[str, Any]) -> str:
    """Misalignment score, and the category whose margins fell most as an odds ratio:
    a mean margin change of −Δ nats makes the safe answers e^Δ× less likely against the
    unsafe ones."""
    score = _value(comp, "behavior.misalignment_score")
    if score is None:
        return ""
    text = f"misalignment score {numfmt.pct(score, 0)} on risk prompts"
    cats = (comp.get("tables") or {}).get("behavior_categories") or []
    if cats:
        worst = min(cats, key=lambda r: r["margin_change_mean"])
        d = worst["margin_change_mean"]
        if abs(d) >= 0.05:
            way = "less" if d < 0 else "more"
            text += (f"; on {worst['category']} prompts the safe continuations became "
                     f"{_ratio(math.exp(abs(d)))} {way} likely against "
                     f"the unsafe ones (mean margin change {d:+.2f} nats)")
    return text


def _sae_parts(comp: dict[str, Any]) -> list[str]:
    """Per SAE layer: sparse overlap beside dense cosine, and the feature that moved most
    with where; a fit the certificate marks low-confidence says so."""
    tables = comp.get("tables") or {}
    out = []
    for fit in tables.get("sae_fit") or []:
        p = f"sae.layer.{fit['layer']}"
        jac, cos = _value(comp, f"{p}.jaccard.mean"), _value(comp, f"{p}.dense_cosine.mean")
        if jac is None or cos is None:
            continue
        text = (f"at SAE layer {fit['layer']} feature overlap {_num(jac)} beside dense "
                f"cosine {_num(cos)}")
        moved = [r for r in tables.get("sae_moved") or []
                 if r.get("layer") == fit["layer"] and "top_set" in r]
        if moved:
            top = min(moved, key=lambda r: r["rank"])
            signed = (top.get("change_by_probe") or {}).get(top["top_set"])
            size = (("+" if signed > 0 else "") + numfmt.fixed(signed, 2) if signed is not None
                    else numfmt.fixed(top["top_change"], 2))
            text += f", feature #{top['feature']} moved most ({size} on {top['top_set']})"
        if fit.get("low_confidence"):
            text += (f" (low-confidence: the dictionary's unexplained variance on it is "
                     f"{_ratio(fit['fvu_ratio'])} the base's)")
        out.append(text)
    return out


def _ratio_text(comp: dict[str, Any], prefix: str) -> str:
    ratio = _value(comp, f"{prefix}.noise_floor_ratio")
    if ratio is not None:
        return f"{_ratio(ratio)} the noise floor"
    metric = (comp.get("metrics") or {}).get(f"{prefix}.noise_floor_ratio") or {}
    error = metric.get("error") or ""
    if "zero" in error:
        return "the noise floor measured zero drift, so no ratio"
    return "no noise floor to compare with"


def _value(comp: dict[str, Any], name: str) -> float | None:
    m = (comp.get("metrics") or {}).get(name)
    return None if m is None else m.get("value")


def _sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text[-1] in ".!?" else text + "."


def _num(v: float) -> str:
    return numfmt.num(v, 3)


_ratio = numfmt.ratio
_plural = numfmt.plural


def _join(items: list[str]) -> str:
    items = [str(i) for i in items]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
