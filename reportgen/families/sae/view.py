"""The sparse-feature section: drift heatmap, fit, dense vs sparse, moved and risky features.

Everything comes from the certificate's ``sae_*`` tables and ``analysis.sae``; the same chart
function backs :meth:`reportgen.certificate.document.Certificate.drift_heatmap`.
"""

from __future__ import annotations

from typing import Any

import altair as alt

from reportgen.core import numfmt
from reportgen.core.family import View
from reportgen.views import charts
from reportgen.views.summary import num3, ratio, value
from reportgen.views.tables import Column, Table

HEADLINE = (".jaccard.mean", ".dense_cosine.mean", ".fvu.ratio", ".ce_recovered.candidate",
            ".moved.top_change", ".risky.top_rise")
CHANGES_SHOWN = 4  # probe sets listed per moved feature in its table row


def _rows(comp: dict[str, Any], name: str, layer: int | None = None) -> list[dict]:
    rows = (comp.get("tables") or {}).get(name) or []
    return [r for r in rows if layer is None or r.get("layer") == layer]


def layers(data: dict[str, Any]) -> list[int]:
    return sorted({r["layer"] for c in charts.comparisons(data) for r in _rows(c, "sae_fit")})


def _moved(comp: dict[str, Any], layer: int) -> list[dict]:
    """The layer's top moved features that changed at all (older certificates also listed
    features whose largest change was 0)."""
    return [r for r in _rows(comp, "sae_moved", layer) if (r.get("top_change") or 0) > 0]


def _feature_names(comp: dict[str, Any], layer: int) -> dict[int, str]:
    return {r["feature"]: f"#{r['feature']} {r['label']}"[:60] for r in _moved(comp, layer)}


def _largest_change(data: dict[str, Any], layer: int) -> float:
    """The largest |change| of any candidate's shown features at ``layer``: one symmetric
    colour domain, so a cell's colour means the same change in every candidate's panel."""
    tops = [abs(r["change"]) for comp in charts.comparisons(data)
            for names in [_feature_names(comp, layer)]
            for r in _rows(comp, "sae_heatmap", layer) if r["feature"] in names]
    return max(tops, default=0.0)


def heatmap_chart(data: dict[str, Any], candidate: str, layer: int) -> Any:
    """Top moved features x probe sets: change in mean activation (candidate - base)."""
    comp = charts.comparison(data, candidate)
    names = _feature_names(comp, layer)
    values = [{**r, "name": names[r["feature"]]}
              for r in _rows(comp, "sae_heatmap", layer) if r["feature"] in names]
    if not values:
        raise KeyError(f"no SAE drift for candidate {candidate!r} at layer {layer}")
    top = _largest_change(data, layer) or 1.0
    chart = alt.Chart(alt.Data(values=values)).mark_rect().encode(
        x=alt.X("probe:N", title="probe set"),
        y=alt.Y("name:N", title=None, sort=list(names.values())),
        color=alt.Color("change:Q", title="activation change",
                        scale=alt.Scale(scheme="blueorange", domain=[-top, top])),
        tooltip=[alt.Tooltip("feature:Q"), alt.Tooltip("probe:N"),
                 alt.Tooltip("change:Q", title="mean activation change", format=".4g")],
    ).properties(width=min(charts.WIDTH, 90 * len({v["probe"] for v in values})),
                 title=alt.Title(f"Sparse-feature drift at layer {layer}: {candidate}",
                                 subtitle="Top moved features (rows, most moved first) by probe "
                                          "set; orange: more active after fine-tuning"))
    return charts.finish(chart)


def _figures(data: dict[str, Any]) -> list[Any]:
    out = []
    for comp in charts.comparisons(data):
        cand = comp["candidate"]
        for layer in layers(data):
            if not _rows(comp, "sae_heatmap", layer) or not _moved(comp, layer):
                continue
            out.append(charts.Figure(
                id=f"sae-heatmap-{charts.slug(cand)}-{layer}", family="sae",
                title=f"Sparse-feature drift, layer {layer}: {cand}",
                caption="Each row is one of the features whose mean activation changed "
                        "most on some probe set (a concept category, a domain, a risk set); "
                        "each column a probe set; the colour is the candidate's mean "
                        "activation minus the base's on that set's tokens (for causal LMs "
                        "only tokens whose prefix is one text's own: a template's shared "
                        "opening words belong to no set).",
                alt=f"Heatmap of activation change of the top moved SAE features at layer "
                    f"{layer} per probe set for {cand}; the tables below list the values.",
                chart=heatmap_chart(data, cand, layer), candidate=cand,
                heading=f"Layer {layer}"))
    return out


FIT = [Column("layer", "layer", "int"), Column("fvu_base", "FVU base", "num"),
       Column("fvu_candidate", "FVU candidate", "num"), Column("fvu_ratio", "ratio", "ratio"),
       Column("l0_base", "L0 base", "num"), Column("l0_candidate", "L0 candidate", "num"),
       Column("ce_clean_candidate", "CE clean", "num"), Column("ce_sae_candidate", "CE SAE", "num"),
       Column("ce_zero_candidate", "CE zero", "num"),
       Column("ce_recovered_base", "CE recovered base", "num"),
       Column("ce_recovered_candidate", "CE recovered cand.", "num"),
       Column("low_confidence", "low confidence")]
DENSE = [Column("layer", "layer", "int"), Column("dense_cosine", "dense cosine", "num"),
         Column("jaccard", "feature Jaccard", "num"), Column("l1", "L1 divergence", "num"),
         Column("tokens", "tokens", "int")]
MOVED = [Column("rank", "#", "int"), Column("feature", "feature", "int"),
         Column("label", "label"), Column("top_change", "largest set change", "num"),
         Column("top_set", "on probe set"), Column("mean_abs_change", "mean |change|", "num"),
         Column("firing_shift", "firing shift", "num"),
         Column("changes", "largest changes by probe set"),
         Column("contexts", "top contexts (base)")]
RISKY = [Column("rank", "#", "int"), Column("feature", "feature", "int"),
         Column("label", "label"), Column("selectivity", "selectivity", "ratio"),
         Column("base_risk_mean", "base on risk", "num"),
         Column("candidate_risk_mean", "cand. on risk", "num"), Column("rise", "rise", "num"),
         Column("contexts", "top contexts (base)")]


def _flat(r: dict[str, Any]) -> dict[str, Any]:
    out = dict(r)
    out["contexts"] = " · ".join(r.get("contexts") or [])
    if "change_by_probe" in r:  # the largest few; the heatmap and the JSON hold every set
        ch = sorted(r["change_by_probe"].items(), key=lambda kv: -abs(kv[1]))
        out["changes"] = ", ".join(f"{k} {v:+.3g}" for k, v in ch[:CHANGES_SHOWN]) + (
            f", … ({len(ch)} sets)" if len(ch) > CHANGES_SHOWN else "")
    return out


def _tables(data: dict[str, Any]) -> tuple[dict[str, list[Table]], list[str]]:
    out: dict[str, list[Table]] = {}
    info = (data.get("analysis") or {}).get("sae") or {}
    for comp in charts.comparisons(data):
        cand = comp["candidate"]
        for layer in layers(data):
            fig = f"sae-heatmap-{charts.slug(cand)}-{layer}"
            ts = [Table(f"Does the base dictionary fit {cand}? (layer {layer})", FIT,
                        _rows(comp, "sae_fit", layer)),
                  Table(f"Dense next to sparse: {cand}, layer {layer}", DENSE,
                        _rows(comp, "sae_dense_sparse", layer)),
                  Table(f"Top moved features: {cand}, layer {layer}", MOVED,
                        [_flat(r) for r in _moved(comp, layer)])]
            risky = _rows(comp, "sae_risky", layer)
            if risky:
                ts.append(Table(f"Risky features: {cand}, layer {layer}", RISKY,
                                [_flat(r) for r in risky]))
            out[fig] = ts
    notes = [f"Hook point: {info['hook_point']}."] if info.get("hook_point") else []
    notes += [f"{c['candidate']}, layer {layer}: no feature's mean activation changed on any "
              "probe set, so no feature moved." for c in charts.comparisons(data)
              for layer in layers(data) if _rows(c, "sae_fit", layer) and not _moved(c, layer)]
    for key, li in sorted((info.get("layers") or {}).items(), key=lambda kv: _layer_key(kv[0])):
        notes.append(_dictionary_note(key, li if isinstance(li, dict) else {}))
    if info.get("risky_note"):
        notes.append(info["risky_note"])
    return out, notes


def _layer_key(key: Any) -> tuple[bool, int, str]:
    """Layers in numeric order ('2' before '10'); a key that is not a number after them."""
    text = str(key)
    return (not text.isdigit(), int(text) if text.isdigit() else 0, text)


def _dictionary_note(layer: str, li: dict[str, Any]) -> str:
    """Where one layer's dictionary came from, from what the certificate says (a field it
    lacks is written as unknown, never guessed)."""
    train = li.get("train") if isinstance(li.get("train"), dict) else None
    src = (f"trained here (TopK, d_sae {li.get('d_sae', '?')}, k {train.get('k', '?')}, seed "
           f"{train.get('seed', '?')})" if train else
           f"loaded ({li.get('architecture', 'architecture not recorded')})")
    ce = (f"; CE recovered on {li['ce_texts']} {li.get('ce_sample', '')}".rstrip()
          if li.get("ce_texts") else "; CE recovered not available")
    saved = (f"; written beside this certificate as {li['saved_as']}/ (SAELens format: "
             "cfg.json and sae_weights.safetensors)" if li.get("saved_as") else "")
    digest = str(li.get("dictionary_digest") or "not recorded")[:16]
    return (f"Layer {layer}: dictionary {src}, digest {digest}…{saved}; FVU on "
            f"{li.get('fvu_on', 'unknown tokens')}; activations stored as "
            f"{li.get('stored_activations', 'unknown')}{ce}.")


def view() -> View:
    return View(figures=_figures, tables=_tables, headline=lambda n: n.endswith(HEADLINE))


def summary_parts(comp: dict[str, Any]) -> list[str]:
    """Per SAE layer: sparse overlap beside dense cosine, and the feature that moved most
    with where; a fit the certificate marks low-confidence says so."""
    tables = comp.get("tables") or {}
    out = []
    for fit in tables.get("sae_fit") or []:
        p = f"sae.layer.{fit['layer']}"
        jac, cos = value(comp, f"{p}.jaccard.mean"), value(comp, f"{p}.dense_cosine.mean")
        if jac is None or cos is None:
            continue
        text = (f"at SAE layer {fit['layer']} feature overlap {num3(jac)} beside dense "
                f"cosine {num3(cos)}")
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
                     f"{ratio(fit['fvu_ratio'])} the base's)")
        out.append(text)
    return out

