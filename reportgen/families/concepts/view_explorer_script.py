"""The concept explorer's page script: it reads the embedded JSON block and writes the answer
with ``textContent`` and DOM calls only (no ``innerHTML``, no ``eval``), so the page's CSP can
allow it by its hash. Kept apart from the Python that builds the data it reads."""

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
  function frame(svg, max, y, box, ticks, title) {  // grid, value labels, x ticks, x title
    [0, max / 2, max].forEach(function (v) {
      svg.appendChild(svgEl("line", {x1: box.L, x2: box.W - box.R, y1: y(v), y2: y(v),
        stroke: "#e6e6e6"}));
      var t = svgEl("text", {x: box.L - 4, y: y(v) + 4, "text-anchor": "end",
        "font-size": 10, fill: "#555"});
      t.textContent = num(v, 3);
      svg.appendChild(t);
    });
    ticks.forEach(function (tick) {
      var t = svgEl("text", {x: tick[0], y: box.H - box.B + 14, "text-anchor": "middle",
        "font-size": 10, fill: "#555"});
      t.textContent = String(tick[1]);
      svg.appendChild(t);
    });
    var lab = svgEl("text", {x: (box.L + box.W - box.R) / 2, y: box.H - 2,
      "text-anchor": "middle", "font-size": 10, fill: "#555"});
    lab.textContent = title;
    svg.appendChild(lab);
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
    frame(svg, max, y, {L: L, W: W, R: R, H: H, B: B},
      data.layers.map(function (layer, i) { return [x(i), layer]; }), "layer");
    data.candidates.forEach(function (cand, i) {
      var row = concept.per[i];
      if (!row || !row.layers.length) { return; }
      var pts = row.layers.map(function (v, j) { return x(j) + "," + y(v); }).join(" ");
      svg.appendChild(svgEl("polyline", {points: pts, fill: "none", stroke: cand.colour,
        "stroke-width": 2, "stroke-dasharray": cand.role === "noise_floor" ? "4 3" : ""}));
    });
    return svg;
  }
  function stepX(steps, L, W) {  // x position of each step, in proportion to the step
    var lo = Math.min.apply(null, steps), hi = Math.max.apply(null, steps);
    return function (s) { return hi === lo ? (L + W) / 2 : L + (s - lo) * (W - L) / (hi - lo); };
  }
  function floorDrift(concept) {  // the noise floor's drift of this concept, if measured
    var out = null;
    data.candidates.forEach(function (cand, i) {
      var r = concept.per[i];
      if (cand.role === "noise_floor" && r && out === null) {
        out = [cand.name, r.drift, cand.colour];
      }
    });
    return out;
  }
  function stepChart(concept) {
    var W = 360, H = 170, L = 44, R = 14, T = 10, B = 28, max = 0, steps = [];
    var floor = floorDrift(concept);
    data.series.forEach(function (s, k) {
      steps = steps.concat(s.steps);
      concept.series[k].forEach(function (v) { if (v !== null && v > max) { max = v; } });
    });
    if (floor && floor[1] > max) { max = floor[1]; }
    if (!steps.length || max <= 0) { return null; }
    max = niceMax(max);
    var x = stepX(steps, L, W - R);
    function y(v) { return T + (1 - v / max) * (H - T - B); }
    var svg = svgEl("svg", {viewBox: "0 0 " + W + " " + H, width: W, height: H,
      role: "img", "class": "explorer-chart"});
    svg.setAttribute("aria-label", "Drift of " + concept.term + " at each training step; " +
      "the table next to this chart has the same numbers.");
    var uniq = steps.filter(function (s, i) { return steps.indexOf(s) === i; })
      .sort(function (a, b) { return a - b; });
    var every = Math.max(1, Math.ceil(uniq.length / 6));  // at most 6 step labels
    frame(svg, max, y, {L: L, W: W, R: R, H: H, B: B}, uniq.filter(function (s, i) {
      return !(i % every) || i === uniq.length - 1; }).map(function (s) { return [x(s), s]; }),
      "training step");
    if (floor && floor[1] !== null) {
      svg.appendChild(svgEl("line", {x1: L, x2: W - R, y1: y(floor[1]), y2: y(floor[1]),
        stroke: floor[2], "stroke-width": 1.5, "stroke-dasharray": "4 3"}));
    }
    data.series.forEach(function (s, k) {
      var pts = [];
      concept.series[k].forEach(function (v, j) {
        if (v === null) { return; }
        pts.push(x(s.steps[j]) + "," + y(v));
        svg.appendChild(svgEl("circle", {cx: x(s.steps[j]), cy: y(v), r: 3, fill: s.colour}));
      });
      svg.appendChild(svgEl("polyline", {points: pts.join(" "), fill: "none",
        stroke: s.colour, "stroke-width": 2}));
    });
    return svg;
  }
  function legendOf(items) {  // [[name, colour, dashed]]
    var legend = el("ul", "explorer-legend");
    items.forEach(function (it) {
      var li = el("li"), sw = el("span", it[2] ? "swatch dashed" : "swatch");
      sw.style.background = it[1];
      li.appendChild(sw); li.appendChild(document.createTextNode(it[0]));
      legend.appendChild(li);
    });
    return legend;
  }
  function stepsPart(concept) {
    var grid = el("div", "explorer-grid"), box = el("div", "explorer-steps");
    box.appendChild(el("h3", null, "Drift by training step"));
    var svg = stepChart(concept), floor = floorDrift(concept);
    if (svg) { box.appendChild(svg); }
    box.appendChild(legendOf(data.series.map(function (s) { return [s.name, s.colour]; })
      .concat(floor ? [["noise floor (" + floor[0] + ")", floor[2], true]] : [])));
    grid.appendChild(box);
    data.series.forEach(function (s, k) {
      grid.appendChild(table("Cosine distance at each step of " + s.name,
        ["step", "cosine distance"], s.steps.map(function (step, j) {
          return [String(step), num(concept.series[k][j])];
        })));
    });
    return grid;
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
    if (data.series && concept.series) { out.appendChild(stepsPart(concept)); }
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
