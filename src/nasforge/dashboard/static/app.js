/* nasforge dashboard: a single page over the dashboard's JSON API (live, polled every 2 s)
 * or over the data embedded in a report (<script type="application/json" id="nasforge-data">).
 * Routes: #/ (every study), #/study/<name>, #/compare/<id>.
 * All data enters the page through textContent and setAttribute, never as markup. */
"use strict";

(function () {
  const C = window.NFCharts;
  const fmt = C.fmt;
  const POLL_MS = 2000;
  const PAGE_SIZE = 100;
  const STATES = ["COMPLETE", "FAILED", "RUNNING", "STOPPED"];

  const app = {
    report: null, // the embedded data in a report, null when served
    token: 0, // bumped on every route change; stale loads and timers check it
    timer: null,
    overview: null,
    comparisons: null,
    study: null, // the study payload shown, its rows merged by number
    rows: new Map(), // number -> row object {field: value}
    table: { key: "number", dir: -1, state: "", text: "", page: 0 },
    detail: null, // number of the trial shown in the detail panel
    ui: null, // elements of the study page that updates refill
  };

  /* ---- DOM helpers ------------------------------------------------------------------ */

  function h(tag, attrs) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
      else if (key === "class") node.className = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (let i = 2; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  }

  function append(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) {
      for (const c of child) append(node, c);
    } else if (typeof child === "object") {
      node.appendChild(child);
    } else {
      node.appendChild(document.createTextNode(String(child)));
    }
  }

  /* Replaces the children of node with the given children (text, nodes, arrays; null skipped). */
  function fill(node) {
    node.replaceChildren();
    for (let i = 1; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  }

  function svg(attrs) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    return node;
  }

  function byId(id) {
    return document.getElementById(id);
  }

  function pad2(n) {
    return String(n).padStart(2, "0");
  }

  /* A date's local time of day, hh:mm:ss. */
  function clock(d) {
    return pad2(d.getHours()) + ":" + pad2(d.getMinutes()) + ":" + pad2(d.getSeconds());
  }

  function time(iso) {
    if (!iso) return "—";
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return String(iso);
    return d.getFullYear() + "-" + pad2(d.getMonth() + 1) + "-" + pad2(d.getDate()) + " " + clock(d);
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    if (seconds < 120) return fmt(seconds, 3) + " s";
    if (seconds < 7200) return fmt(seconds / 60, 3) + " min";
    return fmt(seconds / 3600, 3) + " h";
  }

  function cost(value, unit) {
    if (value === null || value === undefined) return "—";
    if (unit === "seconds" || unit === "s") return duration(value);
    return fmt(value) + (unit ? " " + unit : "");
  }

  /* A cost as a big number and a small unit. */
  function costParts(value, unit) {
    const text = cost(value, unit);
    const cut = text.lastIndexOf(" ");
    if (cut < 0) return text;
    return [text.slice(0, cut), h("span", { class: "nf-stat-unit" }, text.slice(cut))];
  }

  /* An architecture string as <code>, with line-break opportunities after its separators
   * (<wbr> adds no text: what is selected and copied is the string itself). */
  function archCode(text, attrs) {
    const code = h("code", Object.assign({ class: "nf-arch" }, attrs || {}));
    const parts = String(text).split(/(?<=[|,;+ ])/);
    parts.forEach(function (part, i) {
      if (i) code.appendChild(document.createElement("wbr"));
      code.appendChild(document.createTextNode(part));
    });
    return code;
  }

  /* text with a line-break opportunity after each sep ("nb201+quant": after the "+"), as
   * text nodes and <wbr> (which adds no text). */
  function breakAfter(text, sep) {
    const parts = String(text).split(sep);
    return parts.map(function (part, i) {
      return i < parts.length - 1 ? [part + sep, document.createElement("wbr")] : part;
    });
  }

  function stateBadge(state) {
    return h("span", { class: "nf-state nf-state-" + state }, state);
  }

  function setReady(view) {
    document.body.dataset.ready = view;
  }

  function studyHref(name) {
    return "#/study/" + encodeURIComponent(name);
  }

  /* ---- Banner and status -------------------------------------------------------------- */

  function banner(kind, message) {
    const b = byId("nf-banner");
    b.hidden = false;
    b.dataset.kind = kind;
    b.textContent = message;
    topResized();
  }

  function clearBanner(kind) {
    const b = byId("nf-banner");
    if (kind && b.dataset.kind !== kind) return;
    b.hidden = true;
    b.textContent = "";
    delete b.dataset.kind;
    topResized();
  }

  /* The trial panel starts under the header and the banner (style.css: --nf-top-h). */
  function topResized() {
    document.documentElement.style.setProperty("--nf-top-h", byId("nf-top").offsetHeight + "px");
  }

  function status(message) {
    byId("nf-status").textContent = message;
  }

  /* ---- Data access ---------------------------------------------------------------------- */

  function NetworkError(message) {
    this.message = message;
    this.network = true;
  }

  async function api(path) {
    let res;
    try {
      res = await fetch(path, { cache: "no-store", headers: { Accept: "application/json" } });
    } catch (err) {
      throw new NetworkError(String(err && err.message ? err.message : err));
    }
    let body = null;
    try {
      body = await res.json();
    } catch (err) {
      body = null;
    }
    if (!res.ok) {
      const error = new Error((body && body.message) || "The server answered " + res.status + " for " + path + ".");
      error.status = res.status;
      error.notFound = res.status === 404;
      throw error;
    }
    return body;
  }

  function lostMessage() {
    return "Lost the connection to the dashboard server at " + location.host + "; retrying every " + POLL_MS / 1000 + " s. Is `nasforge dashboard` still running?";
  }

  /* Runs fn(token) now and then every POLL_MS while the route stays the same, unless fn
   * answers false (stop) or this is a report. */
  function poll(token, fn) {
    let first = true;
    const run = async function () {
      if (token !== app.token) return;
      let again = true;
      try {
        // A hidden tab skips its polls (the server is not asked for nothing) and catches up
        // on the first poll after it is shown again.
        if (first || !document.hidden) again = await fn(token);
        first = false;
      } catch (err) {
        if (token !== app.token) return;
        if (err && err.network) {
          banner("lost", lostMessage());
          document.body.classList.add("nf-stale");
          status("connection lost");
        } else banner("error", String(err && err.message ? err.message : err));
      }
      if (token === app.token && again !== false && !app.report) {
        app.timer = setTimeout(run, POLL_MS);
      }
    };
    run();
  }

  function stamp() {
    if (app.report) return;
    document.body.classList.remove("nf-stale");
    status("live · updated " + clock(new Date()));
  }

  /* ---- Router --------------------------------------------------------------------------- */

  function route() {
    app.token += 1;
    clearTimeout(app.timer);
    delete document.body.dataset.ready;
    delete document.body.dataset.version;
    document.body.classList.remove("nf-stale");
    clearBanner("deleted");
    clearBanner("error");
    const hash = location.hash || "#/";
    const main = byId("nf-main");
    fill(main, h("p", { class: "nf-loading" }, "Loading…"));
    if (hash.startsWith("#/study/")) {
      let name;
      try {
        name = decodeURIComponent(hash.slice("#/study/".length));
      } catch (err) {
        name = hash.slice("#/study/".length);
      }
      showStudy(name, app.token);
    } else if (hash.startsWith("#/compare/")) {
      showCompare(hash.slice("#/compare/".length), app.token);
    } else {
      showOverview(app.token);
    }
  }

  /* ---- Overview --------------------------------------------------------------------------- */

  function showOverview(token) {
    document.title = "Studies · nasforge";
    if (app.report) {
      renderOverview(app.report.overview);
      return;
    }
    poll(token, async function () {
      const data = await api("api/overview");
      if (token !== app.token) return false;
      clearBanner("lost");
      stamp();
      // Redrawn only when something changed, so a poll does not disturb a selection.
      const key = JSON.stringify([data.studies, data.comparisons]);
      if (key !== app.overviewKey || document.body.dataset.ready !== "overview") {
        app.overviewKey = key;
        renderOverview(data);
      }
      return true;
    });
  }

  function renderOverview(data) {
    app.overview = data;
    byId("nf-source").textContent = data.storage || "";
    const studies = data.studies || [];
    const inReport = function (name) {
      return !app.report || Object.prototype.hasOwnProperty.call(app.report.studies || {}, name);
    };
    const header = h("tr", null,
      ["Study", "Space", "Strategy", "Evaluator", "Objectives", "Trials", "By state", "Best", "Best architecture", "Cost", "Last finish"]
        .map(function (t) { return h("th", null, t); }));
    const body = h("tbody");
    for (const s of studies) {
      const counts = s.counts || {};
      const name = inReport(s.name)
        ? h("a", { href: studyHref(s.name), class: "nf-study-link" }, s.name)
        : h("span", { title: "not included in this report" }, s.name);
      body.appendChild(h("tr", { "data-study": s.name },
        h("td", { class: "nf-name" }, name, s.oneshot ? h("span", { class: "nf-tag" }, "one-shot") : null),
        h("td", null, breakAfter(s.space, "+")),
        h("td", null, s.strategy),
        h("td", null, s.evaluator || "—"),
        h("td", { class: "nf-objectives" }, (s.objectives || []).join(", ")),
        h("td", { class: "nf-n-trials nf-num" }, String(s.n_trials)),
        h("td", { class: "nf-states" }, STATES.filter(function (k) { return counts[k]; }).map(function (k) {
          return h("span", { class: "nf-count nf-state-" + k, title: k }, counts[k] + " " + k.toLowerCase());
        })),
        h("td", { class: "nf-best-value nf-num", "data-value": s.best ? s.best.value : null, title: s.best ? s.best.metric : null },
          s.best ? fmt(s.best.value) : "—", s.best ? h("span", { class: "nf-unit" }, " " + s.best.metric) : null),
        h("td", { class: "nf-best-arch" }, s.best ? archCode(s.best.arch, { title: "trial " + s.best.number + "\n" + s.best.arch }) : "—"),
        h("td", { class: "nf-num" }, cost(s.cost, s.cost_unit)),
        h("td", { class: "nf-time" }, time(s.last_finish_at))));
    }
    const table = h("table", { id: "nf-studies", class: "nf-table" }, h("thead", null, header), body);
    const comps = data.comparisons || [];
    const compSection = h("section", { id: "nf-comparisons", class: "nf-card" },
      h("h2", null, "Comparisons"),
      comps.length
        ? h("ul", { class: "nf-comp-list" }, comps.map(function (c) {
            return h("li", null, h("a", { href: "#/compare/" + encodeURIComponent(c.id) }, c.name),
              h("span", { class: "nf-muted" }, " " + c.benchmark + " · " + (c.datasets || []).join(", ") + " · " + (c.strategies || []).join(", ")));
          }))
        : h("p", { class: "nf-muted" }, app.report ? "This report holds no comparison." : "No comparison loaded: start the dashboard with --compare DIR (a folder written by `nasforge compare --out DIR`)."));
    const main = byId("nf-main");
    fill(main,
      h("div", { class: "nf-title-row" }, h("h1", null, "Studies"),
        h("span", { class: "nf-muted" }, studies.length + " stud" + (studies.length === 1 ? "y" : "ies") + " in " + (data.storage || "the storage"))),
      studies.length
        ? h("div", { class: "nf-card nf-scroll" }, table)
        : h("div", { class: "nf-card" }, table, h("p", { class: "nf-muted" }, "No study in this storage yet: run `nasforge search --storage URL ...` and it appears here.")),
      compSection);
    setReady("overview");
  }

  /* ---- Study page --------------------------------------------------------------------- */

  function showStudy(name, token) {
    document.title = name + " · nasforge";
    app.study = null;
    app.rows = new Map();
    app.detail = null;
    app.table = { key: "number", dir: -1, state: "", text: "", page: 0 };
    app.ui = null;
    if (app.report) {
      const payload = (app.report.studies || {})[name];
      if (!payload) {
        const names = Object.keys(app.report.studies || {});
        fill(byId("nf-main"), h("p", { class: "nf-muted" },
          "This report does not include study '" + name + "'; it holds: " + (names.join(", ") || "no study") + "."));
        banner("error", "Study '" + name + "' is not in this report.");
        return;
      }
      mergeStudy(payload);
      renderStudy();
      return;
    }
    poll(token, async function () {
      const v = app.study ? app.study.version : null;
      let query = v ? "?known=" + encodeURIComponent(v.known) + "&seq=" + encodeURIComponent(v.seq) : "";
      if (v && app.study.detail_token) query += "&detail=" + encodeURIComponent(app.study.detail_token);
      let payload;
      try {
        payload = await api("api/study/" + encodeURIComponent(name) + query);
      } catch (err) {
        if (token !== app.token) return false;
        if (err.notFound) {
          if (app.study) {
            banner("deleted", "Study '" + name + "' was deleted from the storage; what is shown is its last state. " + (err.message || ""));
            document.body.classList.add("nf-stale");
            status("study deleted");
          } else {
            fill(byId("nf-main"), h("p", { class: "nf-muted" }, err.message));
            banner("deleted", "Study '" + name + "' was not found in the storage (deleted or never created). " + (err.message || ""));
          }
          return false;
        }
        throw err;
      }
      if (token !== app.token) return false;
      clearBanner("lost");
      stamp();
      if (mergeStudy(payload)) renderStudy();
      return true;
    });
  }

  /* Merges a study payload (full or delta) into app.study/app.rows; true when it changed. */
  function mergeStudy(p) {
    const fields = p.trials.fields;
    const toRow = function (r) {
      const o = {};
      fields.forEach(function (f, i) { o[f] = r[i]; });
      return o;
    };
    const old = app.study;
    if (!p.delta || !old) app.rows = new Map();
    for (const r of p.trials.rows) {
      const row = toRow(r);
      app.rows.set(row.number, row);
      if (row.number === app.detail && old) app.detailStale = true;
    }
    const changed = !old || !p.delta || p.trials.rows.length > 0 || !p.same_detail ||
      old.version.known !== p.version.known || old.version.seq !== p.version.seq;
    // An answer with same_detail leaves its summaries out: the ones held are still current.
    app.study = p.same_detail && old ? Object.assign({}, old, {
      version: p.version, delta: p.delta, trials: p.trials, detail_token: p.detail_token, same_detail: true,
    }) : p;
    return changed;
  }

  function oneshotData(s) {
    return s.oneshot && typeof s.oneshot === "object" ? s.oneshot : null;
  }

  function section(id, titleText, hint) {
    return h("section", { class: "nf-card", id: id ? id + "-card" : null },
      h("h2", null, titleText), hint ? h("p", { class: "nf-hint" }, hint) : null);
  }

  function chartBox(id, titleText, hint) {
    const box = section(null, titleText, hint);
    const chart = svg({ id: id, class: "nf-chart", role: "img", "aria-label": titleText });
    box.appendChild(chart);
    return { box: box, svg: chart };
  }

  /* Builds the page's frame once per visit; updates refill its parts. */
  function buildStudyPage() {
    const s = app.study;
    const ui = {};
    ui.name = h("h1", { id: "nf-study-name" }, s.name);
    ui.meta = h("p", { class: "nf-meta" });
    ui.cards = h("div", { class: "nf-cards" });
    const traj = chartBox("nf-chart-trajectory", "Best so far, by trial", "The best value of the first objective over completed trials, in the order they finished; grey dots are the trials.");
    const byCost = chartBox("nf-chart-cost", "Best so far, by cost spent", "The same best-so-far line against the cumulative cost of the trials.");
    const scatter = chartBox("nf-chart-scatter", "Objectives", "Each completed trial; the study's Pareto front in orange, the benchmark's true front dashed when the evaluator is a tabular benchmark. Click a point for its trial.");
    ui.traj = traj.svg;
    ui.cost = byCost.svg;
    ui.scatter = scatter.svg;
    ui.importance = h("div", { id: "nf-importance" });
    const imp = section(null, "Decision importance");
    imp.appendChild(ui.importance);
    ui.failures = h("div", { id: "nf-failures" });
    const fail = section(null, "Failures");
    fail.appendChild(ui.failures);
    const grid = h("div", { class: "nf-grid2" }, traj.box, byCost.box, scatter.box, imp);
    ui.oneshot = h("div", { class: "nf-oneshot" });

    ui.stateFilter = h("select", { id: "nf-state-filter", "aria-label": "Filter by state", onchange: function () {
      app.table.state = ui.stateFilter.value;
      app.table.page = 0;
      renderTable();
    } }, h("option", { value: "" }, "all states"), STATES.map(function (k) { return h("option", { value: k }, k); }));
    ui.filter = h("input", { id: "nf-filter", type: "search", placeholder: "Filter: architecture, reason, worker, number", "aria-label": "Filter the trials", oninput: function () {
      app.table.text = ui.filter.value;
      app.table.page = 0;
      renderTable();
    } });
    ui.pageInfo = h("span", { class: "nf-page-info" });
    ui.prev = h("button", { type: "button", class: "nf-prev", onclick: function () { app.table.page -= 1; renderTable(); } }, "‹ Previous");
    ui.next = h("button", { type: "button", class: "nf-next", onclick: function () { app.table.page += 1; renderTable(); } }, "Next ›");
    ui.thead = h("thead");
    ui.tbody = h("tbody");
    ui.table = h("table", { id: "nf-trials", class: "nf-table nf-trials" }, ui.thead, ui.tbody);
    const trials = h("section", { class: "nf-card", id: "nf-trials-card" },
      h("div", { class: "nf-title-row" }, h("h2", null, "Trials"),
        h("div", { class: "nf-controls" }, ui.stateFilter, ui.filter, ui.prev, ui.pageInfo, ui.next)),
      h("div", { class: "nf-scroll" }, ui.table));

    ui.detail = h("aside", { id: "nf-trial-detail", class: "nf-detail", hidden: true, "aria-label": "Trial detail" });
    fill(byId("nf-main"),
      h("a", { href: "#/", class: "nf-back" }, "← All studies"),
      h("div", { class: "nf-title-row" }, ui.name), ui.meta, ui.cards, grid, ui.oneshot, fail, trials, ui.detail);
    app.ui = ui;
  }

  function renderStudy() {
    if (!app.ui) buildStudyPage();
    const s = app.study;
    const ui = app.ui;
    document.body.dataset.version = s.version.known + ":" + s.version.seq;
    renderMeta(s, ui);
    renderCards(s, ui);
    renderTrajectory(s, ui);
    renderScatter(s, ui);
    renderImportance(s, ui);
    renderFailures(s, ui);
    renderOneshot(s, ui);
    renderTable();
    if (app.detail !== null && app.detailStale) {
      app.detailStale = false;
      openDetail(app.detail, true);
    }
    setReady("study");
  }

  function renderMeta(s, ui) {
    const ev = s.evaluator ? [s.evaluator.name, s.evaluator.dataset].filter(Boolean).join(" · ") : "no evaluator recorded";
    const objectives = (s.objectives || []).map(function (o) { return o.metric + " (" + o.direction + ")"; }).join(", ");
    fill(ui.meta,
      h("span", null, "space "), h("b", null, s.space),
      h("span", null, " · strategy "), h("b", null, s.strategy),
      h("span", null, " · evaluator "), h("b", null, ev),
      h("span", null, " · seed "), h("b", null, String(s.seed)),
      h("span", null, " · objectives "), h("b", null, objectives),
      s.created_at ? h("span", null, " · created " + time(s.created_at)) : null,
      oneshotData(s) || s.oneshot === true ? h("span", { class: "nf-tag" }, "one-shot") : null);
  }

  function copyButton(getText, id) {
    const button = h("button", { type: "button", class: "nf-copy", id: id, title: "Copy the architecture string" }, "Copy");
    button.addEventListener("click", function (ev) {
      ev.stopPropagation();
      const value = getText();
      const done = function () {
        button.textContent = "Copied";
        setTimeout(function () { button.textContent = "Copy"; }, 1500);
      };
      const fallback = function () {
        const area = h("textarea", { class: "nf-offscreen", readonly: true });
        area.value = value;
        document.body.appendChild(area);
        area.select();
        try {
          document.execCommand("copy");
          done();
        } finally {
          area.remove();
        }
      };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(value).then(done, fallback);
      } else {
        fallback();
      }
    });
    return button;
  }

  function renderCards(s, ui) {
    const counts = s.counts || {};
    const best = s.best;
    const card = function (label, value, extra, cls) {
      return h("div", { class: "nf-stat " + (cls || "") }, h("div", { class: "nf-stat-label" }, label), value, extra);
    };
    fill(ui.cards,
      card("Trials", h("div", { class: "nf-stat-value", id: "nf-trial-count" }, String(s.n_trials)),
        h("div", { class: "nf-states" }, STATES.filter(function (k) { return counts[k]; }).map(function (k) {
          return h("span", { class: "nf-count nf-state-" + k }, counts[k] + " " + k.toLowerCase());
        }))),
      card(best ? "Best " + best.metric : "Best",
        h("div", { class: "nf-stat-value", id: "nf-best-value", "data-value": best ? best.value : null }, best ? fmt(best.value) : "—"),
        best ? h("div", { class: "nf-muted" }, h("a", { href: "#", id: "nf-best-trial", onclick: function (ev) { ev.preventDefault(); openDetail(best.number); } }, "trial " + best.number),
          Object.entries(best.metrics || {}).filter(function (kv) { return kv[0] !== best.metric; }).map(function (kv) { return " · " + kv[0] + " " + fmt(kv[1]); })) : null),
      card("Best architecture",
        h("div", { class: "nf-best-arch-row" }, best ? archCode(best.arch, { id: "nf-best-arch" }) : h("code", { id: "nf-best-arch", class: "nf-arch" }, "no completed trial yet"),
          best ? copyButton(function () { return best.arch; }) : null),
        null, "nf-stat-wide"),
      card("Cost spent", h("div", { class: "nf-stat-value" }, costParts(s.cost, costUnit(s)))));
  }

  /* The study's cost unit: in its payload, or in the overview's row for it. */
  function costUnit(s) {
    if (s.cost_unit) return s.cost_unit;
    const ov = app.report ? app.report.overview : app.overview;
    const row = ov && (ov.studies || []).find(function (x) { return x.name === s.name; });
    return row ? row.cost_unit : null;
  }

  function metricValues(s) {
    const metric = s.trajectory ? s.trajectory.metric : null;
    if (!metric) return [];
    const dots = [];
    for (const row of app.rows.values()) {
      if (row.state === "COMPLETE" && typeof row[metric] === "number") {
        dots.push({ x: row.number, y: row[metric], title: "trial " + row.number + "\n" + metric + " " + fmt(row[metric]) + "\n" + row.arch });
      }
    }
    return dots;
  }

  function renderTrajectory(s, ui) {
    const t = s.trajectory;
    if (!t) {
      C.emptyChart(ui.traj, "No completed trial yet.");
      C.emptyChart(ui.cost, "No completed trial yet.");
      return;
    }
    const label = t.metric + " (" + (t.direction === "min" ? "lower" : "higher") + " is better)";
    C.lineChart(ui.traj, {
      xLabel: "trial number", yLabel: label, xInteger: true,
      dots: metricValues(s), dotsLabel: "completed trials",
      series: [{ name: "best so far", points: t.by_trial, step: true, markers: true, className: "nf-trajectory",
        markerTitle: function (p) { return "best so far " + fmt(p[1]) + " at trial " + p[0]; } }],
    });
    const unit = costUnit(s) ? " (" + costUnit(s) + ")" : "";
    C.lineChart(ui.cost, {
      xLabel: "cumulative cost" + unit, yLabel: label,
      series: [{ name: "best so far", points: t.by_cost, step: true, markers: true, className: "nf-trajectory",
        markerTitle: function (p) { return "best so far " + fmt(p[1]) + " after cost " + fmt(p[0]); } }],
    });
  }

  function axisLabel(axis) {
    return axis.metric + " (" + (axis.direction === "min" ? "min ↓" : "max ↑") + ")";
  }

  function renderScatter(s, ui) {
    const sc = s.scatter;
    if (!sc) {
      C.emptyChart(ui.scatter, "One objective and no size metric (params_M, flops, latency) to plot it against.");
      return;
    }
    C.scatterChart(ui.scatter, {
      points: sc.points, front: sc.front, trueFront: sc.true_front, trueFrontLabel: sc.true_front_label,
      xLabel: axisLabel(sc.x), yLabel: axisLabel(sc.y), xDirection: sc.x.direction,
      pointTitle: function (p, onFront) {
        const row = app.rows.get(p[2]);
        return "trial " + p[2] + (onFront ? " (on the front)" : "") + "\n" + sc.x.metric + " " + fmt(p[0]) + "\n" + sc.y.metric + " " + fmt(p[1]) + (row ? "\n" + row.arch : "");
      },
      onPoint: function (n) { openDetail(n); },
    });
  }

  function renderImportance(s, ui) {
    const imp = s.importance;
    if (!imp) {
      fill(ui.importance, h("p", { class: "nf-muted" }, "No importance for this study."));
      return;
    }
    const caption = h("p", { class: "nf-hint" }, "Of " + imp.metric + ": " + imp.method);
    if (!imp.decisions || !imp.decisions.length) {
      fill(ui.importance, caption, h("p", { class: "nf-muted" }, imp.reason || "Not enough completed trials yet."));
      return;
    }
    const chart = svg({ class: "nf-chart nf-bars", role: "img", "aria-label": "Decision importance" });
    C.barChart(chart, imp.decisions.map(function (d) {
      return { label: d.name, value: d.importance, title: d.name + ": " + (100 * d.importance).toFixed(1) + "% of the variance" };
    }), { format: function (v) { return (100 * v).toFixed(1) + "%"; } });
    fill(ui.importance, caption, chart);
  }

  function renderFailures(s, ui) {
    const f = s.failures || { by_reason: [], trials: [] };
    if (!f.trials.length && !f.by_reason.length) {
      fill(ui.failures, h("p", { class: "nf-muted" }, "No failed trials."));
      return;
    }
    const reasons = h("table", { class: "nf-table nf-reasons" },
      h("thead", null, h("tr", null, h("th", null, "Reason"), h("th", { class: "nf-num" }, "Trials"))),
      h("tbody", null, f.by_reason.map(function (r) {
        return h("tr", null, h("td", { class: "nf-reason" }, r.reason), h("td", { class: "nf-num" }, String(r.count)));
      })));
    const shown = f.trials.slice(0, 20);
    const list = h("table", { class: "nf-table nf-failed" },
      h("thead", null, h("tr", null, h("th", null, "#"), h("th", null, "Architecture"), h("th", null, "Reason"))),
      h("tbody", null, shown.map(function (t) {
        return h("tr", { "data-number": t.number, class: "nf-clickable", onclick: function () { openDetail(t.number); } },
          h("td", { class: "nf-num" }, String(t.number)), h("td", null, archCode(t.arch)),
          h("td", { class: "nf-reason" }, t.reason));
      })));
    fill(ui.failures, reasons, list,
      f.trials.length > shown.length ? h("p", { class: "nf-muted" }, "… and " + (f.trials.length - shown.length) + " more: filter the trial table by FAILED.") : null);
  }

  function renderOneshot(s, ui) {
    const o = oneshotData(s);
    if (!o) {
      ui.oneshot.replaceChildren();
      return;
    }
    const share = chartBox("nf-oneshot-share", "Parameter-free operations per epoch",
      "Share of the derived cell's edges that carry a parameter-free operation (skip, pooling, none), and the architecture weights' mean mass on those operations.");
    C.lineChart(share.svg, {
      xLabel: "epoch", yLabel: "share", xInteger: true, yDomain: [0, 1],
      series: [
        { name: "share of parameter-free edges (derived)", points: o.epochs.map(function (e, i) { return [e, o.param_free_share[i]]; }), markers: true },
        { name: "weight on parameter-free operations", points: o.epochs.map(function (e, i) { return [e, (o.param_free_weight || [])[i]]; }), markers: true, dashed: true },
      ],
      empty: "No epoch recorded yet.",
    });
    const metricNames = Object.keys(o.metrics || {});
    const firstObjective = (s.objectives || [])[0];
    let shown = metricNames.filter(function (m) { return /_acc$/.test(m); });
    if (!shown.length && firstObjective && o.metrics[firstObjective.metric]) shown = [firstObjective.metric];
    const perEpoch = chartBox("nf-oneshot-metrics", "Derived architecture per epoch", "What the evaluator measured for the architecture derived at each epoch.");
    C.lineChart(perEpoch.svg, {
      xLabel: "epoch", yLabel: shown.join(", "), xInteger: true,
      series: shown.map(function (m) { return { name: m, points: o.epochs.map(function (e, i) { return [e, o.metrics[m][i]]; }), markers: true }; }),
      empty: "No metric recorded per epoch.",
    });
    const weights = section(null, "Architecture weights per epoch",
      "One small chart per edge (or layer): each line is the softmax weight of one candidate operation; parameter-free operations are dashed.");
    const wsvg = svg({ id: "nf-oneshot-weights", class: "nf-chart nf-small-multiples", role: "img", "aria-label": "Architecture weights per epoch" });
    weights.appendChild(wsvg);
    if (o.groups && o.groups.length) C.smallMultiples(wsvg, o.groups, o.epochs, { width: 1180, columns: 4 });
    else C.emptyChart(wsvg, "This method keeps no architecture weights (it samples paths), or none were recorded.", 1180, 60);
    fill(ui.oneshot, h("div", { class: "nf-grid2" }, share.box, perEpoch.box), weights);
  }

  /* ---- Trial table ---------------------------------------------------------------------- */

  function columns() {
    const s = app.study;
    const metrics = s.trials.metrics || [];
    const cols = [
      { key: "number", label: "#", num: true },
      { key: "state", label: "State" },
      { key: "arch", label: "Architecture" },
    ];
    for (const m of metrics) cols.push({ key: m, label: m, num: true, metric: true });
    cols.push({ key: "cost", label: "Cost", num: true }, { key: "seconds", label: "Seconds", num: true },
      { key: "worker", label: "Worker" }, { key: "finished_at", label: "Finished" }, { key: "fail_reason", label: "Note" });
    return cols;
  }

  function filteredRows() {
    const t = app.table;
    const needle = t.text.trim().toLowerCase();
    const out = [];
    for (const row of app.rows.values()) {
      if (t.state && row.state !== t.state) continue;
      if (needle) {
        const hay = (String(row.number) + " " + row.arch + " " + (row.fail_reason || "") + " " + (row.worker || "") + " " + row.state).toLowerCase();
        if (hay.indexOf(needle) < 0) continue;
      }
      out.push(row);
    }
    const key = t.key;
    const dir = t.dir;
    out.sort(function (a, b) {
      const x = a[key];
      const y = b[key];
      const xm = x === null || x === undefined;
      const ym = y === null || y === undefined;
      if (xm || ym) return xm && ym ? a.number - b.number : xm ? 1 : -1; // missing values last
      if (typeof x === "number" && typeof y === "number") return (x - y) * dir || a.number - b.number;
      return String(x).localeCompare(String(y)) * dir || a.number - b.number;
    });
    return out;
  }

  function renderTable() {
    const ui = app.ui;
    const cols = columns();
    fill(ui.thead, h("tr", null, cols.map(function (c) {
      const active = app.table.key === c.key;
      return h("th", {
        "data-key": c.key, class: (c.num ? "nf-num " : "") + "nf-sortable" + (active ? " nf-sorted" : ""),
        title: "Sort by " + c.label, "aria-sort": active ? (app.table.dir > 0 ? "ascending" : "descending") : null,
        onclick: function () {
          if (app.table.key === c.key) app.table.dir = -app.table.dir;
          else {
            app.table.key = c.key;
            app.table.dir = c.metric ? metricDir(c.key) : 1;
          }
          app.table.page = 0;
          renderTable();
        },
      }, c.label, active ? (app.table.dir > 0 ? " ▲" : " ▼") : null);
    })));
    const rows = filteredRows();
    const pages = Math.max(1, Math.ceil(rows.length / PAGE_SIZE));
    app.table.page = Math.min(Math.max(0, app.table.page), pages - 1);
    const start = app.table.page * PAGE_SIZE;
    const page = rows.slice(start, start + PAGE_SIZE);
    fill(ui.tbody, page.map(function (row) {
      return h("tr", {
        "data-number": row.number, "data-state": row.state, tabindex: 0,
        class: "nf-clickable" + (row.number === app.detail ? " nf-selected" : ""),
        onclick: function (ev) {
          if (ev.target.closest("button") || String(window.getSelection() || "").length) return;
          openDetail(row.number);
        },
        onkeydown: function (ev) {
          if (ev.key === "Enter") openDetail(row.number);
        },
      }, cols.map(function (c) { return cell(c, row); }));
    }));
    if (!page.length) {
      ui.tbody.appendChild(h("tr", null, h("td", { colspan: cols.length, class: "nf-muted" }, app.rows.size ? "No trial matches the filter." : "No trial yet.")));
    }
    ui.pageInfo.textContent = rows.length
      ? (start + 1) + "–" + (start + page.length) + " of " + rows.length + (rows.length !== app.rows.size ? " (filtered from " + app.rows.size + ")" : "")
      : "0 of " + app.rows.size;
    ui.prev.disabled = app.table.page === 0;
    ui.next.disabled = app.table.page >= pages - 1;
  }

  function metricDir(metric) {
    const o = (app.study.objectives || []).find(function (x) { return x.metric === metric; });
    return o && o.direction === "min" ? 1 : -1; // best first
  }

  function cell(c, row) {
    const v = row[c.key];
    if (c.key === "state") return h("td", { title: row.fail_reason || null }, stateBadge(v));
    if (c.key === "arch") return h("td", { class: "nf-arch-cell" }, archCode(v));
    if (c.key === "cost") return h("td", { class: "nf-num" }, fmt(v));
    if (c.key === "seconds") return h("td", { class: "nf-num" }, v === null || v === undefined ? "—" : fmt(v, 3));
    if (c.key === "finished_at") return h("td", { class: "nf-time" }, time(v));
    if (c.key === "fail_reason") {
      const note = v || (row.duplicate_of !== null && row.duplicate_of !== undefined ? "duplicate of #" + row.duplicate_of : "");
      return h("td", { class: v ? "nf-reason" : "nf-muted" }, note);
    }
    if (c.num) return h("td", { class: "nf-num" }, v === null || v === undefined ? "—" : fmt(v));
    return h("td", null, v === null || v === undefined ? "—" : String(v));
  }

  /* ---- Trial detail ----------------------------------------------------------------------- */

  async function openDetail(number, refresh) {
    const ui = app.ui;
    if (!ui) return;
    const name = app.study.name;
    const token = app.token;
    app.detail = number;
    for (const tr of ui.tbody.querySelectorAll("tr.nf-selected")) tr.classList.remove("nf-selected");
    const tr = ui.tbody.querySelector('tr[data-number="' + Number(number) + '"]');
    if (tr) tr.classList.add("nf-selected");
    ui.detail.hidden = false;
    if (!refresh) fill(ui.detail, detailHeader(number), h("p", { class: "nf-muted" }, "Loading trial " + number + "…"));
    let trial = null;
    let note = null;
    if (app.report) {
      const stored = ((app.report.trials || {})[name] || {})[number];
      if (stored) trial = stored;
      else {
        const row = app.rows.get(number);
        if (!row) return;
        trial = Object.assign({ metrics: rowMetrics(row), drawing: null }, row);
        note = "This report holds drawings and full metrics for the best trials and the Pareto front only; this one is shown from the trial table.";
      }
    } else {
      try {
        trial = await api("api/study/" + encodeURIComponent(name) + "/trial/" + encodeURIComponent(number));
      } catch (err) {
        if (token !== app.token || app.detail !== number) return;
        fill(ui.detail, detailHeader(number), h("p", { class: "nf-error" }, err.network ? lostMessage() : err.message));
        return;
      }
    }
    if (token !== app.token || app.detail !== number) return;
    renderDetail(trial, note);
  }

  function rowMetrics(row) {
    const out = {};
    for (const m of app.study.trials.metrics || []) if (row[m] !== null && row[m] !== undefined) out[m] = row[m];
    return out;
  }

  function closeDetail() {
    app.detail = null;
    if (!app.ui) return;
    app.ui.detail.hidden = true;
    app.ui.detail.replaceChildren();
    for (const tr of app.ui.tbody.querySelectorAll("tr.nf-selected")) tr.classList.remove("nf-selected");
  }

  function detailHeader(number, state) {
    return h("div", { class: "nf-detail-head" },
      h("h2", null, "Trial " + number), state ? stateBadge(state) : null,
      h("button", { type: "button", class: "nf-close", title: "Close (Esc)", "aria-label": "Close", onclick: closeDetail }, "×"));
  }

  /* A drawing's network-wide settings (resolution, a recipe's choices, per-layer precisions)
   * as a wrapped list under the drawing, for cells and strips alike; a long list (a
   * quantized network's precision per layer: a hundred or more) folded, so that the
   * trial's metrics stay in view under the drawing. */
  const SETTINGS_SHOWN = 12;
  function drawingSettings(drawing) {
    const settings = Object.entries((drawing && drawing.settings) || {});
    if (!settings.length) return null;
    const list = h("ul", { class: "nf-settings", id: "nf-drawing-settings" }, settings.map(function (kv) {
      return h("li", null, h("span", { class: "nf-muted" }, String(kv[0]) + " "), String(kv[1]));
    }));
    if (settings.length <= SETTINGS_SHOWN) return list;
    return h("details", { class: "nf-settings-fold" }, h("summary", null, settings.length + " settings"), list);
  }

  function renderDetail(t, note) {
    const ui = app.ui;
    const objectives = (app.study.objectives || []).map(function (o) { return o.metric; });
    const metrics = Object.entries(t.metrics || {}).sort(function (a, b) {
      const ia = objectives.indexOf(a[0]);
      const ib = objectives.indexOf(b[0]);
      if (ia >= 0 || ib >= 0) return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib);
      return a[0].localeCompare(b[0]);
    });
    const drawing = svg({ id: "nf-drawing", class: "nf-drawing", role: "img", "aria-label": "Drawing of the architecture" });
    let drawingNote = null;
    if (t.drawing) C.drawArchitecture(drawing, t.drawing);
    else {
      C.emptyChart(drawing, "No drawing", 500, 50);
      drawingNote = h("p", { class: "nf-muted" }, t.drawing_error || note || "No drawing for this architecture.");
    }
    const info = [
      ["cost", fmt(t.cost)], ["seconds", t.seconds === null || t.seconds === undefined ? "—" : fmt(t.seconds, 3)],
      ["worker", t.worker || "—"], ["started", time(t.started_at)], ["finished", time(t.finished_at)],
    ];
    if (t.duplicate_of !== null && t.duplicate_of !== undefined) info.push(["duplicate of", "trial " + t.duplicate_of]);
    fill(ui.detail,
      detailHeader(t.number, t.state),
      h("div", { class: "nf-detail-arch" }, archCode(t.arch, { id: "nf-detail-arch" }),
        copyButton(function () { return t.arch; }, "nf-copy-arch")),
      t.fail_reason ? h("p", { class: "nf-error" }, "Failed: " + t.fail_reason) : null,
      h("h3", null, "Drawing"),
      h("div", { class: "nf-drawing-box" }, drawing), drawingNote, drawingSettings(t.drawing),
      h("h3", null, "Metrics"),
      metrics.length
        ? h("table", { class: "nf-table nf-kv" }, h("tbody", null, metrics.map(function (kv) {
            return h("tr", { class: objectives.indexOf(kv[0]) >= 0 ? "nf-objective" : null }, h("th", null, kv[0]), h("td", { class: "nf-num" }, fmt(kv[1], 6)));
          })))
        : h("p", { class: "nf-muted" }, "No metric (yet)."),
      h("table", { class: "nf-table nf-kv" }, h("tbody", null, info.map(function (kv) {
        return h("tr", null, h("th", null, kv[0]), h("td", null, kv[1]));
      }))),
      note && t.drawing ? h("p", { class: "nf-muted" }, note) : null);
  }

  /* ---- Comparisons ------------------------------------------------------------------------ */

  async function loadComparisons() {
    if (app.report) return app.report.comparisons || [];
    if (!app.comparisons) app.comparisons = await api("api/comparisons");
    return app.comparisons;
  }

  function showCompare(id, token) {
    poll(token, async function () {
      const all = await loadComparisons();
      if (token !== app.token) return false;
      clearBanner("lost");
      const comp = all.find(function (c) { return String(c.id) === String(decodeURIComponent(id)); });
      if (!comp) {
        fill(byId("nf-main"), h("a", { href: "#/", class: "nf-back" }, "← All studies"),
          h("p", { class: "nf-muted" }, "No comparison " + id + "; loaded: " + (all.map(function (c) { return c.id + " (" + c.name + ")"; }).join(", ") || "none") + "."));
        return false;
      }
      renderCompare(comp);
      stamp();
      return false; // comparison folders do not change while the dashboard runs
    });
  }

  function renderCompare(c) {
    document.title = c.name + " · nasforge";
    const datasets = Object.keys(c.datasets || {});
    const head = h("tr", null, ["Dataset", "Strategy", "Test accuracy (mean ± std)", "Validation accuracy (mean)", "Optimum rate", "RI", "Knowledge"]
      .map(function (t, i) { return h("th", { class: i > 1 ? "nf-num" : null }, t); }));
    const body = h("tbody");
    for (const ds of datasets) {
      const rows = c.datasets[ds];
      const strategies = Object.keys(rows);
      let bestMean = -Infinity;
      for (const st of strategies) if (typeof rows[st].mean_test === "number") bestMean = Math.max(bestMean, rows[st].mean_test);
      strategies.forEach(function (st, i) {
        const r = rows[st];
        body.appendChild(h("tr", { "data-dataset": ds, "data-strategy": st, class: r.mean_test === bestMean ? "nf-best-row" : null },
          h("td", null, i === 0 ? ds : ""), h("td", null, st),
          h("td", { class: "nf-num" }, fmt(r.mean_test) + " ± " + fmt(r.std_test)),
          h("td", { class: "nf-num" }, fmt(r.mean_valid)),
          h("td", { class: "nf-num" }, r.optimum_rate === null || r.optimum_rate === undefined ? "—" : (100 * r.optimum_rate).toFixed(0) + "%"),
          h("td", { class: "nf-num" }, r.ri === null || r.ri === undefined ? "—" : (r.ri > 0 ? "+" : "") + fmt(r.ri, 3) + "%"),
          h("td", { class: "nf-num" }, r.knowledge === null || r.knowledge === undefined ? "—" : fmt(r.knowledge))));
      });
    }
    const curves = Object.keys(c.curves || {}).map(function (ds) {
      const box = section(null, ds, "Best test accuracy so far over " + c.n_seeds + " seeds: mean line, ±1 std band, per strategy.");
      const chart = svg({ class: "nf-chart nf-compare-curve", "data-dataset": ds, role: "img", "aria-label": "Curves on " + ds });
      box.appendChild(chart);
      const per = c.curves[ds];
      C.lineChart(chart, {
        xLabel: "queries", yLabel: "best test accuracy", xInteger: true,
        series: Object.keys(per).map(function (st) {
          const cv = per[st];
          return {
            name: st,
            points: cv.x.map(function (x, i) { return [x, cv.mean[i]]; }),
            band: cv.x.map(function (x, i) { return [x, cv.low[i], cv.high[i]]; }),
          };
        }),
      });
      return box;
    });
    fill(byId("nf-main"),
      h("a", { href: "#/", class: "nf-back" }, "← All studies"),
      h("div", { class: "nf-title-row" }, h("h1", null, c.name)),
      h("p", { class: "nf-meta" }, "benchmark ", h("b", null, c.benchmark), " · budget ", h("b", null, String(c.budget)),
        " queries · ", h("b", null, String(c.n_seeds)), " seeds · datasets ", h("b", null, datasets.join(", "))),
      h("section", { class: "nf-card" }, h("h2", null, "Summary"),
        h("p", { class: "nf-hint" }, "Optimum rate: share of the runs that reached the table's best validation accuracy. RI: relative improvement of the mean test accuracy over random search. Knowledge: what the strategy knew of architectures that compute the same function."),
        h("div", { class: "nf-scroll" }, h("table", { id: "nf-compare-table", class: "nf-table" }, h("thead", null, head), body))),
      h("div", { class: "nf-grid2" }, curves));
    setReady("compare");
  }

  /* ---- Start ------------------------------------------------------------------------------ */

  function start() {
    const embedded = byId("nasforge-data");
    if (embedded) {
      try {
        app.report = JSON.parse(embedded.textContent);
      } catch (err) {
        banner("error", "This report's embedded data cannot be read (" + err.message + "); write it again with `nasforge report`.");
        return;
      }
      document.body.classList.add("nf-report");
      const ov = app.report.overview || {};
      status("report · " + (ov.generated_at ? "written " + time(ov.generated_at) : "offline"));
      byId("nf-source").textContent = ov.storage || "";
    }
    document.addEventListener("keydown", function (ev) {
      if (ev.key === "Escape" && app.detail !== null) closeDetail();
    });
    window.addEventListener("hashchange", route);
    window.addEventListener("resize", topResized);
    topResized();
    route();
    if (!app.report) {
      // The storage's label for the header, whichever page was opened first (api/info
      // reads no study, so it never delays the page's own data).
      api("api/info").then(function (info) {
        byId("nf-source").textContent = info.storage || "";
      }, function () {});
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
