"""The concept explorer: type a concept, see how each candidate moved it.

The page embeds the per-concept numbers the certificate already holds (drift per layer, rank,
noise-floor ratio, neighbourhood overlap, neighbour lists where recorded) as one
``<script type="application/json">`` block that the browser never executes, and a small
script, allowed by its hash in the page's CSP, reads it and writes the answer with
``textContent`` and DOM calls only. Everything comes from the certificate dict, so the
explorer works for any audit with concept tables and simply is not shown without them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reportgen.core.numfmt import plural
from reportgen.views import charts

Data = dict[str, Any]


INTRO = ("Type one of the {count} of this audit to see its drift in each candidate (rank, "
         "noise-floor ratio, neighbourhood overlap), its drift layer by layer and its nearest "
         "concepts before and after. The numbers are the ones in the tables above, rounded to "
         "four digits; certificate.json has every digit.")


@dataclass(frozen=True)
class Explorer:
    """What the page's explorer slot needs: the embedded data, the term list, an example
    term, and its words (title, intro, the input's label, what to read without script)."""

    data: dict[str, Any]
    terms: list[str]
    example: str
    title: str = "Concept explorer"
    label: str = "Concept"
    intro: str = ""
    nojs: str = ("The explorer needs JavaScript; the concept tables above hold the same "
                 "numbers.")

    @property
    def script(self) -> str:
        """The page script that reads the embedded data (allowed by its hash in the CSP)."""
        return SCRIPT


def explorer(data: Data) -> Explorer | None:
    """The explorer's data, or None when no comparison has a concept table."""
    comps = [c for c in charts.comparisons(data) if charts.table(c, "concepts")]
    if not comps:
        return None
    names, colours = charts.candidate_colours(data)
    colour = dict(zip(names, colours, strict=True))
    concepts: dict[str, dict[str, Any]] = {}
    for i, c in enumerate(comps):
        by_layer = {r["term"]: r.get("by_layer") for r in charts.table(c, "concept_layers")}
        nbr = {r["term"]: r for r in charts.table(c, "neighbors_concepts")}
        lists = {r["term"]: r for r in charts.table(c, "rewired_concepts")}
        for r in charts.table(c, "concepts"):
            entry = concepts.setdefault(r["term"], {"term": r["term"],
                                                    "category": r.get("category"),
                                                    "base": None, "per": {}})
            row = {"rank": r.get("rank"), "drift": _round(r.get("cosine_distance")),
                   "pooled": _round(r.get("cosine_distance_mean_pooled")),
                   "floor": _round(r.get("noise_floor_ratio")),
                   "layers": [_round(v) for v in by_layer.get(r["term"]) or []]}
            if r["term"] in nbr:
                row["jaccard"] = _round(nbr[r["term"]].get("jaccard"))
                row["nrank"] = nbr[r["term"]].get("rank")
            if r["term"] in lists:
                rl = lists[r["term"]]
                row["neighbours"] = _neighbours(rl.get("candidate_neighbours"))
                entry["base"] = entry["base"] or _neighbours(rl.get("base_neighbours"))
            entry["per"][str(i)] = row
    layers = [r["layer"] for r in charts.table(comps[0], "layers")]
    payload = {
        "candidates": [{"name": c["candidate"], "role": c.get("role", "candidate"),
                        "colour": colour.get(c["candidate"], charts.FLOOR_COLOUR),
                        "count": len(charts.table(c, "concepts"))} for c in comps],
        "layers": layers,
        "concepts": sorted(concepts.values(), key=lambda e: str(e["term"]).casefold()),
    }
    top = min(charts.table(comps[0], "concepts"), key=lambda r: r.get("rank") or 0)
    terms = [e["term"] for e in payload["concepts"]]
    return Explorer(payload, terms, top["term"],
                    intro=INTRO.format(count=plural(len(terms), "concept")))


def _round(v: Any) -> Any:
    """Four significant digits keep the page small; the JSON certificate keeps every digit."""
    return float(f"{v:.4g}") if isinstance(v, float) else v


def _neighbours(ns: list[dict[str, Any]] | None) -> list[list[Any]] | None:
    if ns is None:
        return None
    return [[n["label"], _round(n.get("similarity"))] for n in ns]


SCRIPT = r"""(function () {
  "use strict";
  var block = document.getElementById("explorer-data");
  var input = document.getElementById("explorer-input");
  var out = document.getElementById("explorer-result");
  if (!block || !input || !out) { return; }
  var data = JSON.parse(block.textContent);
  var index = {};
  data.concepts.forEach(function (c) { index[String(c.term).toLowerCase()] = c; });
  var SVG = "http://www.w3.org/2000/svg";

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }
  function num(v, digits) {  // as the page's tables write numbers: 4 significant digits
    if (v === null || v === undefined) { return "\u2014"; }
    var d = digits || 4, a = Math.abs(v);
    if (a !== 0 && a < 1e-4) {
      return Number(v).toExponential(d - 1).replace(/\.?0+e/, "e");
    }
    var t = Number(v).toPrecision(d);
    return t.indexOf("e") < 0 && t.indexOf(".") >= 0 ? t.replace(/\.?0+$/, "") : t;
  }
  function niceMax(v) {  // the axis top: a round number just above v
    var p = Math.pow(10, Math.floor(Math.log10(v)));
    return [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10].map(function (m) { return m * p; })
      .filter(function (m) { return m >= v; })[0];
  }
  function ratio(v) {
    if (v === null || v === undefined) { return "\u2014"; }
    return (Math.abs(v) < 100 ? v.toFixed(1) : Math.round(v).toLocaleString("en")) + "\u00d7";
  }
  function svgEl(tag, attrs) {
    var e = document.createElementNS(SVG, tag);
    Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    return e;
  }
  function layerChart(concept) {
    var W = 360, H = 170, L = 44, R = 10, T = 10, B = 28;
    var max = 0, n = data.layers.length;
    data.candidates.forEach(function (cand, i) {
      var row = concept.per[i];
      (row ? row.layers : []).forEach(function (v) { if (v > max) { max = v; } });
    });
    if (!n || max <= 0) { return null; }
    max = niceMax(max);
    var svg = svgEl("svg", {viewBox: "0 0 " + W + " " + H, width: W, height: H,
      role: "img", "class": "explorer-chart"});
    svg.setAttribute("aria-label", "Drift of " + concept.term + " by layer; the table " +
      "next to this chart has the same numbers.");
    function x(i) { return L + (n === 1 ? 0 : i * (W - L - R) / (n - 1)); }
    function y(v) { return T + (1 - v / max) * (H - T - B); }
    [0, max / 2, max].forEach(function (v) {
      svg.appendChild(svgEl("line", {x1: L, x2: W - R, y1: y(v), y2: y(v),
        stroke: "#e6e6e6"}));
      var t = svgEl("text", {x: L - 4, y: y(v) + 4, "text-anchor": "end",
        "font-size": 10, fill: "#555"});
      t.textContent = num(v, 3);
      svg.appendChild(t);
    });
    data.layers.forEach(function (layer, i) {
      var t = svgEl("text", {x: x(i), y: H - B + 14, "text-anchor": "middle",
        "font-size": 10, fill: "#555"});
      t.textContent = String(layer);
      svg.appendChild(t);
    });
    var lab = svgEl("text", {x: (L + W - R) / 2, y: H - 2, "text-anchor": "middle",
      "font-size": 10, fill: "#555"});
    lab.textContent = "layer";
    svg.appendChild(lab);
    data.candidates.forEach(function (cand, i) {
      var row = concept.per[i];
      if (!row || !row.layers.length) { return; }
      var pts = row.layers.map(function (v, j) { return x(j) + "," + y(v); }).join(" ");
      svg.appendChild(svgEl("polyline", {points: pts, fill: "none", stroke: cand.colour,
        "stroke-width": 2, "stroke-dasharray": cand.role === "noise_floor" ? "4 3" : ""}));
    });
    return svg;
  }
  function table(caption, head, rows) {
    var wrap = el("div", "table-wrap"), t = el("table", "data");
    t.appendChild(el("caption", null, caption));
    var tr = el("tr");
    head.forEach(function (h, i) {
      var th = el("th", i ? "k-num" : null, h);
      th.setAttribute("scope", "col");
      tr.appendChild(th);
    });
    var thead = el("thead"); thead.appendChild(tr); t.appendChild(thead);
    var tbody = el("tbody");
    rows.forEach(function (r) {
      var row = el("tr");
      r.forEach(function (v, i) { row.appendChild(el("td", i ? "k-num" : null, v)); });
      tbody.appendChild(row);
    });
    t.appendChild(tbody); wrap.appendChild(t);
    return wrap;
  }
  function neighbourList(title, items, other) {
    var box = el("div", "explorer-nbrs");
    box.appendChild(el("h3", null, title));
    if (!items) {
      box.appendChild(el("p", "na", "Not recorded: the certificate lists neighbours only " +
        "for each candidate's most rewired concepts."));
      return box;
    }
    var keep = {};
    (other || []).forEach(function (n) { keep[n[0]] = true; });
    var ol = el("ol");
    items.forEach(function (n) {
      var li = el("li", other && !keep[n[0]] ? "changed" : null, n[0] + " " + num(n[1], 3));
      if (other && !keep[n[0]]) { li.appendChild(el("span", "tag", " new")); }
      ol.appendChild(li);
    });
    box.appendChild(ol);
    return box;
  }
  function show(text) {
    var concept = index[String(text).trim().toLowerCase()];
    while (out.firstChild) { out.removeChild(out.firstChild); }
    if (!concept) {
      var q = String(text).trim().toLowerCase();
      var near = q ? data.concepts.filter(function (c) {
        return String(c.term).toLowerCase().indexOf(q) >= 0;
      }).slice(0, 8).map(function (c) { return c.term; }) : [];
      out.appendChild(el("p", "explorer-miss", q ? "No concept named \u201c" + text.trim() +
        "\u201d in this audit." + (near.length ? " Did you mean: " + near.join(", ") + "?"
        : "") : "Type a concept to see how it moved."));
      return;
    }
    var head = el("p", "explorer-head");
    head.appendChild(el("strong", "explorer-term", concept.term));
    head.appendChild(document.createTextNode(" \u00b7 category " + (concept.category || "\u2014")));
    out.appendChild(head);
    var rows = data.candidates.map(function (cand, i) {
      var r = concept.per[i] || {};
      return [cand.name, r.rank ? r.rank + " of " + cand.count : "\u2014", num(r.drift),
        num(r.pooled), ratio(r.floor), num(r.jaccard, 3)];
    });
    out.appendChild(table("Drift at the last layer, per candidate (rank 1 = moved most)",
      ["candidate", "rank", "cosine distance", "mean-pooled", "\u00d7 noise floor",
       "neighbours kept (Jaccard)"], rows));
    var grid = el("div", "explorer-grid");
    var chartBox = el("div", "explorer-layers");
    chartBox.appendChild(el("h3", null, "Drift by layer"));
    var svg = layerChart(concept);
    if (svg) { chartBox.appendChild(svg); }
    var legend = el("ul", "explorer-legend");
    data.candidates.forEach(function (cand) {
      var li = el("li"), sw = el("span", "swatch");
      sw.style.background = cand.colour;
      li.appendChild(sw); li.appendChild(document.createTextNode(cand.name));
      legend.appendChild(li);
    });
    chartBox.appendChild(legend);
    grid.appendChild(chartBox);
    var lrows = data.layers.map(function (layer, j) {
      return [String(layer)].concat(data.candidates.map(function (cand, i) {
        var r = concept.per[i];
        return r && r.layers.length > j ? num(r.layers[j]) : "\u2014";
      }));
    });
    grid.appendChild(table("Cosine distance by layer", ["layer"].concat(
      data.candidates.map(function (c) { return c.name; })), lrows));
    out.appendChild(grid);
    var nbrs = el("div", "explorer-grid");
    nbrs.appendChild(neighbourList("Neighbours in the base", concept.base));
    data.candidates.forEach(function (cand, i) {
      if (cand.role === "noise_floor") { return; }
      var r = concept.per[i] || {};
      nbrs.appendChild(neighbourList("Neighbours in " + cand.name, r.neighbours, concept.base));
    });
    out.appendChild(nbrs);
  }
  input.addEventListener("input", function () { show(input.value); });
  input.addEventListener("change", function () { show(input.value); });
  show(input.value);
})();"""
