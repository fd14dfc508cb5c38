/* nasforge dashboard charts: line, step, band, scatter, bar and small-multiple charts in
 * SVG, and the drawing of an architecture (a cell graph or a strip of blocks).
 * Plain DOM calls only: every piece of text enters the page through textContent or
 * setAttribute, so a study name or an architecture string is never parsed as markup. */
"use strict";

(function () {
  const SVG_NS = "http://www.w3.org/2000/svg";
  // Colours for series and operations (chosen for contrast on white, colour-blind friendly order).
  const PALETTE = [
    "#2f6db5", "#e07b24", "#3a9a5b", "#c23b3b", "#7a5cb8",
    "#8c6a3f", "#d65fa6", "#6b7280", "#a6a01f", "#1fa2b3",
  ];
  const MUTED = "#9aa3ae";

  function el(tag, attrs, parent) {
    const node = document.createElementNS(SVG_NS, tag);
    if (attrs) {
      for (const [key, value] of Object.entries(attrs)) {
        if (value !== undefined && value !== null) node.setAttribute(key, String(value));
      }
    }
    if (parent) parent.appendChild(node);
    return node;
  }

  function text(parent, x, y, content, attrs) {
    const node = el("text", Object.assign({ x: x, y: y }, attrs || {}), parent);
    node.textContent = content;
    return node;
  }

  function title(parent, content) {
    const node = el("title", null, parent);
    node.textContent = content;
    return node;
  }

  function clear(svg) {
    svg.replaceChildren();
  }

  function finite(v) {
    return typeof v === "number" && Number.isFinite(v);
  }

  /* A number for people: integers as they are, others with up to 4 significant digits. */
  function fmt(v, digits) {
    if (v === null || v === undefined) return "—";
    if (typeof v !== "number") return String(v);
    if (!Number.isFinite(v)) return String(v);
    if (Number.isInteger(v) && Math.abs(v) < 1e9) return String(v);
    const a = Math.abs(v);
    if (a !== 0 && (a >= 1e6 || a < 1e-4)) return v.toExponential(2);
    const s = v.toPrecision(digits || 4);
    return s.indexOf(".") >= 0 && s.indexOf("e") < 0 ? s.replace(/0+$/, "").replace(/\.$/, "") : s;
  }

  function tickFormat(step) {
    const decimals = step >= 1 ? 0 : Math.min(8, Math.ceil(-Math.log10(step) - 1e-9));
    return function (v) {
      const a = Math.abs(v);
      if (a >= 1e6) return (v / 1e6).toFixed(a >= 1e7 ? 0 : 1).replace(/\.0$/, "") + "M";
      if (a >= 1e4) return (v / 1e3).toFixed(a >= 1e5 ? 0 : 1).replace(/\.0$/, "") + "k";
      return v.toFixed(decimals);
    };
  }

  function niceStep(span, count) {
    const raw = span / Math.max(1, count);
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const norm = raw / mag;
    const nice = norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10;
    return nice * mag;
  }

  /* A padded, rounded domain and its ticks for the given values. */
  function axis(values, count, fixed, integer) {
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of values) {
      if (finite(v)) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
    }
    if (fixed) {
      lo = fixed[0];
      hi = fixed[1];
    }
    if (!(lo <= hi)) {
      lo = 0;
      hi = 1;
    }
    if (lo === hi) {
      // One value: a range around it, never below 0 for values that cannot be (trial
      // number 0 alone showed an axis from -1).
      const pad = lo === 0 ? 1 : Math.abs(lo) * (integer ? 1 : 0.05);
      lo = lo >= 0 ? Math.max(0, lo - pad) : lo - pad;
      hi += pad;
    }
    let step = niceStep(hi - lo, count);
    if (integer && step < 1) step = 1;
    if (!fixed) {
      lo = Math.floor(lo / step + 1e-9) * step;
      hi = Math.ceil(hi / step - 1e-9) * step;
    }
    const ticks = [];
    const first = Math.ceil(lo / step - 1e-9) * step;
    for (let v = first; v <= hi + step * 1e-6 && ticks.length < 50; v += step) {
      ticks.push(Number(v.toFixed(12)));
    }
    return { lo: lo, hi: hi, ticks: ticks, format: tickFormat(step) };
  }

  function scale(lo, hi, a, b) {
    const k = hi === lo ? 0 : (b - a) / (hi - lo);
    return function (v) {
      return a + (v - lo) * k;
    };
  }

  /* Draws the frame of a chart (grid, ticks, axis labels, legend) into svg and returns
   * {x, y, plot, width, height} where x and y map data to pixels. */
  function frame(svg, spec, xValues, yValues) {
    const width = spec.width || 600;
    const height = spec.height || 300;
    const legendItems = spec.legend || [];
    const m = { left: 62, right: 16, top: 14, bottom: 44 };
    // One legend row above the plot, and room for each further row the legend wraps into.
    if (legendItems.length) m.top = 34 + LEGEND_ROW * (legendRows(legendItems, m.left, width - m.right) - 1);
    if (spec.compact) {
      m.left = 40;
      m.right = 8;
      m.top = 22;
      m.bottom = 22;
    }
    clear(svg);
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    svg.setAttribute("class", ((svg.getAttribute("class") || "").replace(/\bnf-chart\b/, "") + " nf-chart").trim());
    const xa = axis(xValues, spec.compact ? 4 : 7, spec.xDomain, spec.xInteger);
    const ya = axis(yValues, spec.compact ? 3 : 5, spec.yDomain, false);
    const x = scale(xa.lo, xa.hi, m.left, width - m.right);
    const y = scale(ya.lo, ya.hi, height - m.bottom, m.top);
    const grid = el("g", { class: "nf-grid" }, svg);
    const axes = el("g", { class: "nf-axis" }, svg);
    for (const t of ya.ticks) {
      el("line", { x1: m.left, x2: width - m.right, y1: y(t), y2: y(t) }, grid);
      text(axes, m.left - 6, y(t) + 4, ya.format(t), { "text-anchor": "end" });
    }
    for (const t of xa.ticks) {
      el("line", { x1: x(t), x2: x(t), y1: m.top, y2: height - m.bottom }, grid);
      text(axes, x(t), height - m.bottom + (spec.compact ? 12 : 16), xa.format(t), { "text-anchor": "middle" });
    }
    el("line", { x1: m.left, x2: width - m.right, y1: height - m.bottom, y2: height - m.bottom, class: "nf-axis-line" }, axes);
    el("line", { x1: m.left, x2: m.left, y1: m.top, y2: height - m.bottom, class: "nf-axis-line" }, axes);
    if (spec.xLabel) {
      text(axes, (m.left + width - m.right) / 2, height - 8, spec.xLabel, { "text-anchor": "middle", class: "nf-axis-label" });
    }
    if (spec.yLabel) {
      const cy = (m.top + height - m.bottom) / 2;
      text(axes, 14, cy, spec.yLabel, {
        "text-anchor": "middle",
        class: "nf-axis-label",
        transform: "rotate(-90 14 " + cy + ")",
      });
    }
    if (spec.title) text(svg, m.left, 14, spec.title, { class: "nf-mini-title" });
    legend(svg, legendItems, m.left, 16, width - m.right);
    const plot = el("g", { class: "nf-plot" }, svg);
    return { x: x, y: y, plot: plot, width: width, height: height, margin: m, xa: xa, ya: ya };
  }

  const LEGEND_ROW = 15;

  /* Where legend items go between x0 and xmax, wrapping into rows: [{x, row}] per item. */
  function legendLayout(items, x0, xmax) {
    const out = [];
    let x = x0;
    let row = 0;
    for (const item of items) {
      const w = 34 + 7 * String(item.label).length;
      if (x + w > xmax && x > x0) {
        x = x0;
        row += 1;
      }
      out.push({ x: x, row: row });
      x += w;
    }
    return out;
  }

  /* How many rows the legend items take between x0 and xmax. */
  function legendRows(items, x0, xmax) {
    const layout = legendLayout(items, x0, xmax);
    return layout.length ? layout[layout.length - 1].row + 1 : 0;
  }

  /* A legend of items ({label, color, dashed, marker}), its first row's baseline at y. */
  function legend(svg, items, x0, y, xmax) {
    if (!items.length) return;
    const g = el("g", { class: "nf-legend" }, svg);
    const layout = legendLayout(items, x0, xmax);
    items.forEach(function (item, i) {
      const x = layout[i].x;
      const row = y + LEGEND_ROW * layout[i].row;
      const it = el("g", { class: "nf-legend-item" }, g);
      if (item.marker) {
        el("circle", { cx: x + 9, cy: row - 4, r: 4, fill: item.color, class: item.markerClass }, it);
      } else {
        el("line", {
          x1: x, x2: x + 18, y1: row - 4, y2: row - 4,
          stroke: item.color, "stroke-width": item.band ? 8 : 2.5,
          "stroke-opacity": item.band ? 0.35 : 1,
          "stroke-dasharray": item.dashed ? "4 3" : null,
        }, it);
      }
      text(it, x + 23, row, item.label);
    });
  }

  /* The SVG path through points: straight segments, or with step a staircase (across, then
   * up or down); a missing value breaks the line. */
  function seriesPath(points, x, y, step) {
    let d = "";
    let open = false;
    for (const p of points) {
      if (!finite(p[0]) || !finite(p[1])) {
        open = false;
        continue;
      }
      const px = x(p[0]).toFixed(1);
      const py = y(p[1]).toFixed(1);
      if (!open) d += "M" + px + "," + py;
      else d += step ? "H" + px + "V" + py : "L" + px + "," + py;
      open = true;
    }
    return d;
  }

  function emptyChart(svg, message, width, height) {
    clear(svg);
    svg.setAttribute("viewBox", "0 0 " + (width || 600) + " " + (height || 120));
    text(svg, (width || 600) / 2, (height || 120) / 2, message, { "text-anchor": "middle", class: "nf-empty-text" });
  }

  /* Line chart. spec: {series: [{name, color, points: [[x, y]...], step, band: [[x, lo, hi]...],
   * dashed, markers, markerTitle(p)}], dots: [{x, y, title}], xLabel, yLabel, xDomain, yDomain,
   * xInteger, width, height, compact, title, empty}. */
  function lineChart(svg, spec) {
    const series = (spec.series || []).filter(function (s) {
      return s.points.some(function (p) { return finite(p[0]) && finite(p[1]); });
    });
    if (!series.length) {
      emptyChart(svg, spec.empty || "Nothing to plot yet.", spec.width, spec.compact ? spec.height : 120);
      return;
    }
    const xs = [];
    const ys = [];
    for (const s of series) {
      for (const p of s.points) {
        xs.push(p[0]);
        ys.push(p[1]);
      }
      for (const b of s.band || []) {
        ys.push(b[1], b[2]);
      }
    }
    for (const d of spec.dots || []) {
      xs.push(d.x);
      ys.push(d.y);
    }
    const showLegend = spec.showLegend !== false && (series.length > 1 || (spec.dots && spec.dots.length));
    const legendItems = [];
    if (showLegend) {
      if (spec.dots && spec.dots.length) legendItems.push({ label: spec.dotsLabel || "trials", color: MUTED, marker: true });
      series.forEach(function (s, i) {
        legendItems.push({ label: s.name, color: s.color || PALETTE[i % PALETTE.length], dashed: s.dashed });
      });
    }
    const f = frame(svg, Object.assign({}, spec, { legend: legendItems }), xs, ys);
    if (spec.dots && spec.dots.length) {
      const g = el("g", { class: "nf-dots" }, f.plot);
      for (const d of spec.dots) {
        if (!finite(d.x) || !finite(d.y)) continue;
        const c = el("circle", { cx: f.x(d.x).toFixed(1), cy: f.y(d.y).toFixed(1), r: 2.2, class: "nf-dot" }, g);
        if (d.title) title(c, d.title);
      }
    }
    series.forEach(function (s, i) {
      const color = s.color || PALETTE[i % PALETTE.length];
      const g = el("g", { class: "nf-series" }, f.plot);
      title(g, s.name);
      if (s.band && s.band.length) {
        const upper = s.band.filter(function (b) { return finite(b[0]) && finite(b[1]) && finite(b[2]); });
        if (upper.length) {
          let d = "";
          upper.forEach(function (b, j) {
            d += (j ? "L" : "M") + f.x(b[0]).toFixed(1) + "," + f.y(b[2]).toFixed(1);
          });
          for (let j = upper.length - 1; j >= 0; j--) {
            d += "L" + f.x(upper[j][0]).toFixed(1) + "," + f.y(upper[j][1]).toFixed(1);
          }
          el("path", { d: d + "Z", fill: color, "fill-opacity": 0.16, stroke: "none", class: "nf-band" }, g);
        }
      }
      const d = seriesPath(s.points, f.x, f.y, s.step);
      el("path", {
        d: d, fill: "none", stroke: color, "stroke-width": spec.compact ? 1.6 : 2.2,
        "stroke-dasharray": s.dashed ? "5 3" : null, class: "nf-line " + (s.className || ""),
      }, g);
      if (s.markers) {
        for (const p of s.points) {
          if (!finite(p[0]) || !finite(p[1])) continue;
          const c = el("circle", { cx: f.x(p[0]).toFixed(1), cy: f.y(p[1]).toFixed(1), r: 3.2, fill: color, class: "nf-marker" }, g);
          title(c, s.markerTitle ? s.markerTitle(p) : s.name + ": " + fmt(p[1]) + " at " + fmt(p[0]));
        }
      }
    });
  }

  /* Scatter of two objectives. spec: {points: [[x, y, number]], front: [number], trueFront:
   * [[x, y]], trueFrontLabel, xLabel, yLabel, xDirection, pointTitle(p), onPoint(number)}. */
  function scatterChart(svg, spec) {
    const pts = (spec.points || []).filter(function (p) { return finite(p[0]) && finite(p[1]); });
    if (!pts.length) {
      emptyChart(svg, spec.empty || "No completed trial to plot yet.", spec.width, 120);
      return;
    }
    const front = new Set(spec.front || []);
    const trueFront = (spec.trueFront || []).filter(function (p) { return finite(p[0]) && finite(p[1]); });
    const xs = pts.map(function (p) { return p[0]; }).concat(trueFront.map(function (p) { return p[0]; }));
    const ys = pts.map(function (p) { return p[1]; }).concat(trueFront.map(function (p) { return p[1]; }));
    const items = [
      { label: "trials", color: "#8fb3dd", marker: true },
      { label: "Pareto front of this study", color: "#e07b24", marker: true },
    ];
    if (trueFront.length) items.push({ label: spec.trueFrontLabel || "true front", color: "#4b5563", dashed: true });
    const f = frame(svg, Object.assign({}, spec, { legend: items }), xs, ys);
    // A point dominates the region behind it; the front's outline is a staircase whose
    // order of moves depends on whether x is minimised (across, then up/down) or maximised.
    const stair = function (list) {
      const sorted = list.slice().sort(function (a, b) { return a[0] - b[0]; });
      let d = "";
      sorted.forEach(function (p, i) {
        const px = f.x(p[0]).toFixed(1);
        const py = f.y(p[1]).toFixed(1);
        if (!i) d += "M" + px + "," + py;
        else if (spec.xDirection === "max") d += "V" + py + "H" + px;
        else d += "H" + px + "V" + py;
      });
      return d;
    };
    if (trueFront.length) {
      const g = el("g", { class: "nf-true-front" }, f.plot);
      title(g, spec.trueFrontLabel || "true front");
      el("path", { d: stair(trueFront), class: "nf-true-front-line", fill: "none" }, g);
      for (const p of trueFront) {
        const r = el("rect", { x: (f.x(p[0]) - 2.5).toFixed(1), y: (f.y(p[1]) - 2.5).toFixed(1), width: 5, height: 5, class: "nf-true-front-point" }, g);
        title(r, (spec.trueFrontLabel || "true front") + "\n" + spec.xLabel + " " + fmt(p[0]) + "\n" + spec.yLabel + " " + fmt(p[1]));
      }
    }
    const frontPts = pts.filter(function (p) { return front.has(p[2]); });
    if (frontPts.length) el("path", { d: stair(frontPts), class: "nf-front nf-front-line", fill: "none" }, f.plot);
    const g = el("g", { class: "nf-points" }, f.plot);
    const draw = function (p, onFront) {
      const c = el("circle", {
        cx: f.x(p[0]).toFixed(1), cy: f.y(p[1]).toFixed(1), r: onFront ? 4.5 : 3.2,
        class: onFront ? "nf-point nf-front" : "nf-point", "data-number": p[2],
      }, g);
      title(c, spec.pointTitle ? spec.pointTitle(p, onFront) : "trial " + p[2]);
      if (spec.onPoint) {
        c.addEventListener("click", function () { spec.onPoint(p[2]); });
      }
    };
    for (const p of pts) if (!front.has(p[2])) draw(p, false);
    for (const p of frontPts) draw(p, true);
  }

  /* Horizontal bars: items [{label, value, title}], values in [0, max]. */
  function barChart(svg, items, spec) {
    spec = spec || {};
    if (!items.length) {
      emptyChart(svg, spec.empty || "Nothing to show.", spec.width, 80);
      return;
    }
    const width = spec.width || 600;
    const rowH = 22;
    const labelW = Math.min(230, 12 + 6.6 * Math.max.apply(null, items.map(function (i) { return String(i.label).length; })));
    const height = items.length * rowH + 10;
    clear(svg);
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    const max = Math.max.apply(null, items.map(function (i) { return i.value; }).concat([1e-12]));
    const x = scale(0, max, labelW, width - 70);
    items.forEach(function (item, i) {
      const g = el("g", { class: "nf-bar-row" }, svg);
      const y0 = 5 + i * rowH;
      text(g, labelW - 8, y0 + 15, item.label, { "text-anchor": "end", class: "nf-bar-label" });
      const r = el("rect", {
        x: labelW, y: y0 + 3, height: rowH - 7,
        width: Math.max(1, x(item.value) - labelW).toFixed(1), class: "nf-bar",
      }, g);
      title(r, item.title || item.label + ": " + fmt(item.value));
      text(g, x(item.value) + 6, y0 + 15, spec.format ? spec.format(item.value) : fmt(item.value), { class: "nf-bar-value" });
    });
  }

  /* Small multiples of the architecture weights: one titled block per group with a legend of
   * its options and one mini line chart per row (edge or layer), one line per option. */
  function smallMultiples(svg, groups, epochs, spec) {
    spec = spec || {};
    const width = spec.width || 1200;
    const cols = spec.columns || 4;
    const gap = 14;
    const cellW = (width - gap * (cols - 1)) / cols;
    const cellH = 130;
    clear(svg);
    let y = 0;
    const blocks = [];
    for (const group of groups) {
      const head = el("g", { class: "nf-sm-group" }, svg);
      text(head, 0, y + 16, group.name, { class: "nf-sm-title" });
      const items = group.options.map(function (opt, i) {
        return { label: opt + (group.param_free && group.param_free[i] ? " (no params)" : ""), color: PALETTE[i % PALETTE.length], dashed: group.param_free && group.param_free[i] };
      });
      legend(head, items, 0, y + 36, width);
      y += 30 + LEGEND_ROW * legendRows(items, 0, width);
      group.rows.forEach(function (row, r) {
        const col = r % cols;
        if (r && !col) y += cellH + gap;
        blocks.push({ group: group, row: row, x: col * (cellW + gap), y: y });
      });
      y += cellH + gap + 8;
    }
    svg.setAttribute("viewBox", "0 0 " + width + " " + Math.max(y, 40));
    // One vertical range per group, so its charts compare at a glance; at least 0.05 wide
    // so that the first epochs' near-uniform weights do not look like large moves.
    const ranges = new Map();
    for (const group of groups) {
      let lo = Infinity;
      let hi = -Infinity;
      for (const row of group.rows) {
        for (const w of row.weights) {
          for (const v of w || []) {
            if (finite(v)) {
              lo = Math.min(lo, v);
              hi = Math.max(hi, v);
            }
          }
        }
      }
      if (!(lo <= hi)) {
        lo = 0;
        hi = 1;
      }
      if (hi - lo < 0.05) {
        const mid = (lo + hi) / 2;
        lo = mid - 0.025;
        hi = mid + 0.025;
      }
      ranges.set(group, [Math.max(0, lo), Math.min(1, hi)]);
    }
    for (const b of blocks) {
      const outer = el("svg", { x: b.x.toFixed(1), y: b.y.toFixed(1), width: cellW.toFixed(1), height: cellH, class: "nf-mini" }, svg);
      const series = b.group.options.map(function (opt, i) {
        return {
          name: opt,
          color: PALETTE[i % PALETTE.length],
          dashed: b.group.param_free && b.group.param_free[i],
          points: epochs.map(function (e, k) { const w = b.row.weights[k]; return [e, w ? w[i] : null]; }),
        };
      });
      lineChart(outer, {
        series: series, width: cellW, height: cellH, compact: true, showLegend: false,
        title: b.row.label, yDomain: spec.yDomain || ranges.get(b.group), xInteger: true, empty: b.row.label + ": no weights",
      });
      outer.setAttribute("width", cellW.toFixed(1));
      outer.setAttribute("height", String(cellH));
    }
  }

  /* ---- Architecture drawings ---------------------------------------------------------- */

  const opColors = new Map();
  function opColor(op) {
    if (!opColors.has(op)) opColors.set(op, PALETTE[opColors.size % PALETTE.length]);
    return opColors.get(op);
  }

  /* One cell, left to right. Inner nodes sit on a centre line, one column each, in the order
   * given. With one input, the input and the output sit on that line too and skip edges arc
   * above and below it (NB201). With several inputs (DARTS-like cells), each input gets a lane
   * above the line that its edges run along before dropping into their node, skip edges
   * between inner nodes arc below, and "concat" edges into the output run along a bus under
   * everything. Parameter-free operations are dashed and grey, the rest solid and coloured. */
  function drawCell(root, cell, y0, colW) {
    const nodeW = 64;
    const nodeH = 30;
    const nodes = cell.nodes || [];
    const edges = cell.edges || [];
    const inputs = nodes.filter(function (n) { return n.role === "input"; });
    const outputs = nodes.filter(function (n) { return n.role === "output"; });
    const inner = nodes.filter(function (n) { return n.role !== "input" && n.role !== "output"; });
    const bus = inputs.length > 1;
    const col = new Map();
    let c = 0;
    if (inputs.length) {
      for (const n of inputs) col.set(n.id, 0);
      c = 1;
    }
    for (const n of inner) col.set(n.id, c++);
    for (const n of outputs) col.set(n.id, c);
    const nCols = c + (outputs.length ? 1 : 0);
    const xOf = function (k) { return 46 + k * colW; };
    let maxSpan = 1;
    for (const e of edges) {
      if (col.has(e.source) && col.has(e.target) && e.op !== "concat") {
        maxSpan = Math.max(maxSpan, Math.abs(col.get(e.target) - col.get(e.source)));
      }
    }
    const arc = function (span, k) { return 30 + 24 * (span - 2) + 10 * k; };
    const arcRoom = maxSpan > 1 ? arc(maxSpan, 1) + 26 : 14;
    const lanes = new Map();
    let center;
    if (bus) {
      inputs.forEach(function (n, i) { lanes.set(n.id, y0 + 44 + i * 38); });
      center = y0 + 44 + (inputs.length - 1) * 38 + 66;
    } else {
      center = y0 + 30 + arcRoom;
    }
    const pos = new Map();
    for (const n of nodes) {
      const k = col.get(n.id);
      const y = lanes.has(n.id) ? lanes.get(n.id) : center;
      pos.set(n.id, { x: xOf(k), y: y, col: k, node: n });
    }
    const hasConcat = edges.some(function (e) { return e.op === "concat"; });
    const busY = center + nodeH / 2 + (bus ? arcRoom : 0) + 22;
    const g = el("g", { class: "nf-cell", "data-cell": cell.name }, root);
    const cellTitle = !cell.name || cell.name === "cell" ? "cell" : cell.name + " cell";
    text(g, 0, y0 + 14, cellTitle, { class: "nf-cell-title" });
    const edgeG = el("g", { class: "nf-edges" }, g);
    const labelG = el("g", { class: "nf-edge-labels" }, g);
    const sideCount = new Map();
    let lowest = center + nodeH / 2;
    for (const e of edges) {
      const a = pos.get(e.source);
      const b = pos.get(e.target);
      if (!a || !b) continue;
      const span = Math.abs(b.col - a.col);
      let d;
      let lx;
      let ly;
      if (e.op === "concat") {
        // Along the bus under the cell, into the output from below.
        const off = (a.col - b.col) * 3;
        d = "M" + a.x + "," + (a.y + nodeH / 2) + "V" + (busY + off) + "H" + (b.x + off) + "V" + (b.y + nodeH / 2);
        lx = null;
      } else if (lanes.has(e.source)) {
        // Along the input's lane, then down into the node.
        const dx = (inputs.findIndex(function (n) { return n.id === e.source; }) - (inputs.length - 1) / 2) * 12;
        const tx = b.x + dx;
        const ty = b.y - nodeH / 2;
        d = "M" + (a.x + nodeW / 2) + "," + a.y + "H" + (tx - 14) + "Q" + tx + "," + a.y + " " + tx + "," + (a.y + 14) + "V" + ty;
        lx = Math.max(a.x + nodeW / 2 + 48, tx - colW / 2 + 4);
        ly = a.y;
      } else if (span <= 1 || Math.abs(a.y - b.y) > 1) {
        d = "M" + (a.x + nodeW / 2) + "," + a.y + "L" + (b.x - nodeW / 2) + "," + b.y;
        lx = (a.x + b.x) / 2;
        ly = (a.y + b.y) / 2;
      } else {
        const k = sideCount.get(span) || 0;
        sideCount.set(span, k + 1);
        const sign = bus ? 1 : k % 2 === 0 ? -1 : 1;
        const h = sign * arc(span, bus ? k : Math.floor(k / 2));
        const sy = a.y + sign * nodeH / 2;
        d = "M" + a.x + "," + sy + "C" + a.x + "," + (sy + h * 1.3) + " " + b.x + "," + (sy + h * 1.3) + " " + b.x + "," + sy;
        lx = (a.x + b.x) / 2;
        ly = sy + h * 0.975;
        lowest = Math.max(lowest, ly + 10);
      }
      const eg = el("g", {
        class: "nf-edge" + (e.param_free ? " nf-param-free" : " nf-has-params") + (e.op === "none" ? " nf-op-none" : "") + (e.op === "concat" ? " nf-op-concat" : ""),
        "data-op": e.op, "data-source": e.source, "data-target": e.target,
      }, edgeG);
      title(eg, e.source + " → " + e.target + ": " + e.op + (e.param_free ? " (parameter-free)" : ""));
      const color = e.op === "concat" ? MUTED : e.param_free ? "#8a94a3" : opColor(e.op);
      el("path", {
        d: d, fill: "none", stroke: color, class: "nf-edge-line",
        "stroke-width": e.op === "concat" ? 1.2 : e.param_free ? 1.8 : 2.6,
        "stroke-dasharray": e.param_free ? (e.op === "none" ? "2 4" : "6 4") : null,
        "marker-end": "url(#nf-arrow)",
      }, eg);
      if (lx !== null) {
        const label = el("g", { class: "nf-edge-label" }, labelG);
        const w = 8 + 6.3 * String(e.op).length;
        el("rect", {
          x: (lx - w / 2).toFixed(1), y: (ly - 9).toFixed(1), width: w.toFixed(1), height: 17, rx: 4,
          class: e.param_free ? "nf-label-bg nf-param-free" : "nf-label-bg",
        }, label);
        text(label, lx.toFixed(1), (ly + 4).toFixed(1), e.op, {
          "text-anchor": "middle", fill: e.param_free ? "#5b6472" : color,
          "font-style": e.param_free ? "italic" : null,
        });
        title(label, e.source + " → " + e.target + ": " + e.op + (e.param_free ? " (parameter-free)" : ""));
      }
    }
    const nodeG = el("g", { class: "nf-nodes" }, g);
    for (const [id, p] of pos) {
      const ng = el("g", { class: "nf-node nf-role-" + (p.node.role || "node"), "data-id": id }, nodeG);
      el("rect", { x: p.x - nodeW / 2, y: p.y - nodeH / 2, width: nodeW, height: nodeH, rx: p.node.role === "node" ? 15 : 5 }, ng);
      text(ng, p.x, p.y + 4, String(p.node.label), { "text-anchor": "middle" });
      title(ng, (p.node.role || "node") + " " + p.node.label);
    }
    const bottom = hasConcat ? busY + 10 + 3 * nCols : lowest;
    return { width: xOf(nCols - 1) + nodeW / 2 + 4, bottom: bottom + 12 };
  }

  function drawCells(svg, drawing) {
    const root = el("g", { class: "nf-cells" }, svg);
    const key = el("g", { class: "nf-drawing-key" }, root);
    // Key: operations with parameters are solid and coloured, parameter-free ones dashed grey.
    el("line", { x1: 0, x2: 26, y1: 10, y2: 10, stroke: "#2f6db5", "stroke-width": 2.6 }, key);
    text(key, 32, 14, "operation with parameters");
    el("line", { x1: 196, x2: 222, y1: 10, y2: 10, stroke: "#8a94a3", "stroke-width": 1.8, "stroke-dasharray": "6 4" }, key);
    text(key, 228, 14, "parameter-free (skip, pooling; none dotted)");
    let y = 26;
    let width = 500;
    // Columns wide enough for the longest operation's label between two nodes.
    let longest = 8;
    for (const cell of drawing.cells || []) {
      for (const e of cell.edges || []) if (e.op !== "concat") longest = Math.max(longest, String(e.op).length);
    }
    const colW = Math.max(120, Math.min(220, 64 + 6.3 * longest + 22));
    for (const cell of drawing.cells || []) {
      const size = drawCell(root, cell, y, colW);
      width = Math.max(width, size.width);
      y = size.bottom;
    }
    return { width: width, height: y };
  }

  /* text cut to at most n characters, with an ellipsis when cut (the block's tooltip has it whole). */
  function clip(line, n) {
    return line.length > n ? line.slice(0, Math.max(1, n - 1)) + "…" : line;
  }

  function drawStrip(svg, drawing, maxWidth) {
    const blocks = drawing.blocks || [];
    const root = el("g", { class: "nf-strip" }, svg);
    const entries = blocks.map(function (b) {
      return Object.entries(b.choices || {}).map(function (kv) { return [String(kv[0]), String(kv[1])]; });
    });
    // Widths estimated from the fonts' advance (labels: bold 11.5 px, about 7.4 px a
    // character; choices: monospace 11 px, 6.7 px), since a detached SVG cannot be measured.
    const LABEL_PX = 7.4;
    const CHOICE_PX = 6.7;
    const labels = blocks.map(function (b) { return String(b.label); });
    const widest = Math.max(8 * CHOICE_PX, ...labels.map(function (l) { return LABEL_PX * l.length; }),
      ...entries.flat().map(function (kv) { return CHOICE_PX * (kv[0].length + kv[1].length + 1); }));
    const blockW = Math.min(260, Math.max(104, 20 + widest));
    const maxLines = Math.max(1, ...entries.map(function (e) { return e.length; }));
    const blockH = 30 + 15 * Math.min(maxLines, 12);
    const gap = 22;
    const perRow = Math.max(1, Math.floor((maxWidth + gap) / (blockW + gap)));
    const y = 6;  // the settings are listed under the drawing (app.js)
    const groupColors = new Map();
    blocks.forEach(function (b, i) {
      const col = i % perRow;
      const row = Math.floor(i / perRow);
      const x = col * (blockW + gap);
      const by = y + row * (blockH + gap);
      if (!groupColors.has(b.group)) groupColors.set(b.group, PALETTE[groupColors.size % PALETTE.length]);
      const g = el("g", { class: "nf-block" + (b.skipped ? " nf-skipped" : ""), "data-group": b.group }, root);
      el("rect", { x: x, y: by, width: blockW, height: blockH, rx: 6, stroke: groupColors.get(b.group), class: "nf-block-box" }, g);
      el("rect", { x: x, y: by, width: 5, height: blockH, fill: groupColors.get(b.group), class: "nf-block-stripe" }, g);
      text(g, x + 12, by + 17, clip(labels[i], Math.floor((blockW - 20) / LABEL_PX)), { class: "nf-block-label" });
      // "skipped" in the block's free bottom-right corner: beside the label it widened
      // every block of the strip (or was cut off).
      if (b.skipped) text(g, x + blockW - 8, by + blockH - 7, "skipped", { "text-anchor": "end", class: "nf-block-skipped" });
      const lines = entries[i];
      lines.slice(0, 12).forEach(function (kv, k) {
        const maxChars = Math.floor((blockW - 20) / CHOICE_PX);
        text(g, x + 12, by + 34 + 15 * k, clip(kv[0] === "text" ? kv[1] : kv[0] + " " + kv[1], maxChars), { class: "nf-block-choice" });
      });
      title(g, String(b.label) + (b.skipped ? " (skipped)" : "") + "\n" + lines.map(function (kv) { return kv[0] + " = " + kv[1]; }).join("\n"));
      if (col < perRow - 1 && i < blocks.length - 1) {
        el("path", { d: "M" + (x + blockW + 3) + "," + (by + blockH / 2) + "H" + (x + blockW + gap - 3), class: "nf-block-arrow", "marker-end": "url(#nf-arrow)" }, root);
      }
    });
    const rows = Math.ceil(blocks.length / perRow);
    const width = Math.min(blocks.length, perRow) * (blockW + gap) - gap;
    return { width: Math.max(width, 300), height: y + rows * (blockH + gap) };
  }

  /* Draws a SearchSpace.drawing() payload into svg; a strip wraps its blocks into rows of
   * at most maxWidth (default 700) units. */
  function drawArchitecture(svg, drawing, maxWidth) {
    clear(svg);
    const defs = el("defs", null, svg);
    const marker = el("marker", {
      id: "nf-arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 8, markerHeight: 8,
      markerUnits: "userSpaceOnUse", orient: "auto-start-reverse",
    }, defs);
    el("path", { d: "M0,0L10,5L0,10z", fill: "#6b7280" }, marker);
    let size;
    if (drawing && drawing.kind === "cells") size = drawCells(svg, drawing);
    else if (drawing && drawing.kind === "strip") size = drawStrip(svg, drawing, maxWidth || 700);
    else {
      emptyChart(svg, "No drawing for this architecture.", 500, 60);
      return;
    }
    svg.setAttribute("viewBox", "-6 -4 " + (size.width + 12) + " " + (size.height + 8));
    // Never drawn larger than its natural size; CSS shrinks it to fit its box.
    svg.setAttribute("width", String(Math.round(size.width + 12)));
    svg.setAttribute("height", String(Math.round(size.height + 8)));
    svg.setAttribute("data-kind", drawing.kind);
  }

  window.NFCharts = {
    PALETTE: PALETTE,
    fmt: fmt,
    lineChart: lineChart,
    scatterChart: scatterChart,
    barChart: barChart,
    smallMultiples: smallMultiples,
    drawArchitecture: drawArchitecture,
    emptyChart: emptyChart,
  };
})();
