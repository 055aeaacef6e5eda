// InferGuard dashboard: plain JavaScript, no build step. Everything from the server is text (textContent),
// never HTML: target names and labels come from the engines we watch.
"use strict";
(() => {
  const TOKEN_KEY = "inferguard.token";
  const ORDER = { critical: 0, down: 1, warning: 2, unknown: 3, healthy: 4 };
  const SPARKS = [
    ["kv_usage", "KV", (v) => `${Math.round(v * 100)}%`, 1],
    ["requests_waiting", "waiting", (v) => `${Math.round(v)}`, 0],
    ["ttft_p95_s", "TTFT p95", (v) => (v < 1 ? `${Math.round(v * 1000)} ms` : `${v.toFixed(1)} s`), 0],
    ["preemptions_per_s", "preempt", (v) => `${v.toFixed(v < 10 ? 1 : 0)}/s`, 0],
  ];
  const $ = (id) => document.getElementById(id);
  let token = sessionStorage.getItem(TOKEN_KEY);
  let lastStatus = null;
  let openSignature = "";
  let sideTimer = null;
  let lastSide = 0;

  class AuthError extends Error {}

  // A token may arrive in the fragment (#token=...): fragments never reach the server or its logs.
  if (location.hash.startsWith("#token=")) {
    token = decodeURIComponent(location.hash.slice(7));
    sessionStorage.setItem(TOKEN_KEY, token);
    history.replaceState(null, "", location.pathname + location.search);
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    return node;
  }

  const fmtTime = (ts) => (ts ? new Date(ts * 1000).toLocaleTimeString() : "–");
  const fmtDateTime = (ts) => (ts ? new Date(ts * 1000).toLocaleString() : "–");
  function fmtAge(ts) {
    if (!ts) return "never";
    const s = Math.max(0, Date.now() / 1000 - ts);
    return s < 90 ? `${Math.round(s)} s ago` : s < 5400 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
  }
  function fmtDuration(a, b) {
    const s = Math.max(0, (b || Date.now() / 1000) - a);
    return s < 90 ? `${Math.round(s)} s` : s < 5400 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`;
  }
  const pct = (x) => (x === null || x === undefined ? "–" : `${Math.round(x * 100)}%`);
  const shortTarget = (url) => url.replace(/^https?:\/\//, "").replace(/\/metrics$/, "");
  // Targets behind one host differ at the end of the URL: cut the start, never the end.
  const tail = (text, n) => (text.length > n ? `…${text.slice(text.length - n + 1)}` : text);

  async function api(path) {
    const headers = { Accept: "application/json" };
    if (token) headers.Authorization = `Bearer ${token}`;
    const r = await fetch(path, { headers, cache: "no-store" });
    if (r.status === 401) {
      needLogin(token ? "The token was not accepted." : "");
      throw new AuthError();
    }
    if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
    return r.json();
  }

  // -- login -----------------------------------------------------------------------------------
  function needLogin(message) {
    if (token) sessionStorage.removeItem(TOKEN_KEY);
    token = null;
    $("app").hidden = true;
    $("login").hidden = false;
    $("logout").hidden = true;
    const err = $("login-error");
    err.hidden = !message;
    err.textContent = message || "";
    setConn("down", "login needed");
  }

  $("login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    token = $("token").value.trim();
    $("token").value = "";
    sessionStorage.setItem(TOKEN_KEY, token);
    start();
  });
  $("logout").addEventListener("click", () => needLogin(""));

  function setConn(state, text) {
    const c = $("conn");
    c.className = `conn ${state}`;
    c.textContent = text;
  }

  // -- live status over server-sent events (fetch, so the token travels as a header) -------------
  let streamRun = 0;
  async function stream(run) {
    let backoff = 1000;
    while (run === streamRun) {
      try {
        const headers = { Accept: "text/event-stream" };
        if (token) headers.Authorization = `Bearer ${token}`;
        const r = await fetch("/api/events", { headers, cache: "no-store" });
        if (r.status === 401) {
          needLogin(token ? "The token was not accepted." : "");
          return;
        }
        if (!r.ok || !r.body) throw new Error(`HTTP ${r.status}`);
        setConn("live", "live");
        backoff = 1000;
        const reader = r.body.getReader();
        const decoder = new TextDecoder();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done || run !== streamRun) break;
          buf += decoder.decode(value, { stream: true });
          let cut;
          while ((cut = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, cut);
            buf = buf.slice(cut + 2);
            onBlock(block);
          }
        }
      } catch (e) {
        if (e instanceof AuthError) return;
      }
      if (run !== streamRun) return;
      setConn("down", "reconnecting…");
      await new Promise((res) => setTimeout(res, backoff));
      backoff = Math.min(backoff * 2, 15000);
    }
  }

  function onBlock(block) {
    let event = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
    }
    if (event !== "status" || !data.length) return;
    const doc = JSON.parse(data.join("\n"));
    lastStatus = doc;
    renderStatus(doc);
    const sig = doc.targets.map((t) => t.open_incidents.map((i) => `${i.id}:${i.severity}:${i.root_cause}:${i.codes}`).join(",")).join("|");
    if (sig !== openSignature) {
      openSignature = sig;
      refreshSide(true);
    } else {
      refreshSide(false);
    }
  }

  // -- targets ---------------------------------------------------------------------------------
  function renderStatus(doc) {
    const counts = {};
    for (const t of doc.targets) counts[t.health] = (counts[t.health] || 0) + 1;
    const summary = $("summary");
    summary.replaceChildren(
      el("span", {}, `${doc.targets.length} targets`),
      ...["critical", "down", "warning", "healthy", "unknown"].filter((h) => counts[h]).map((h) => el("span", { class: `sum-${h}` }, `${counts[h]} ${h}`)),
      el("span", { title: "last update" }, `updated ${fmtTime(doc.generated_at)}`),
    );
    const needle = $("filter").value.trim().toLowerCase();
    const shown = doc.targets
      .filter((t) => !needle || `${t.name} ${t.target} ${t.model} ${t.engine}`.toLowerCase().includes(needle))
      .sort((a, b) => (ORDER[a.health] ?? 9) - (ORDER[b.health] ?? 9) || a.name.localeCompare(b.name));
    $("target-count").textContent = needle ? `(${shown.length} of ${doc.targets.length})` : `(${doc.targets.length})`;
    $("targets").replaceChildren(...shown.map(card));
  }

  function card(t) {
    const sub = [t.engine, t.model].filter((x) => x && x !== "unknown").join(" · ") || "engine not identified yet";
    const node = el("article", { class: `card ${t.health}`, "data-target": t.target },
      el("div", { class: "card-head" },
        el("span", { class: "card-name", title: t.target }, tail(t.name === t.target ? shortTarget(t.target) : t.name, 24)),
        el("span", { class: `badge ${t.health}` }, t.health)),
      el("div", { class: "card-sub", title: sub }, sub),
      el("div", { class: "card-sub" + (t.last_error ? " error" : "") }, t.last_error ? `scrape failed: ${t.last_error}` : `scraped ${fmtAge(t.last_scrape)}`),
      el("div", { class: "sparks" }, SPARKS.map(([key, label, fmt, fixedMax]) => spark(t.series[key] || [], label, fmt, fixedMax))));
    for (const inc of t.open_incidents) {
      node.append(el("div", { class: "card-incident", onclick: () => openDetail(inc.id), title: "open the incident" },
        `${inc.severity}: ${inc.codes.join(", ")}${inc.root_cause ? ` → ${inc.root_cause}` : ""}`));
    }
    return node;
  }

  function spark(values, label, fmt, fixedMax) {
    const known = values.filter((v) => v !== null && v !== undefined);
    const last = values.length ? values[values.length - 1] : null;
    const max = fixedMax || Math.max(...known, 1e-9);
    const w = 100;
    const h = 24;
    const box = svg("svg", { viewBox: `0 0 ${w} ${h}`, preserveAspectRatio: "none", role: "img", "aria-label": label });
    // A gap in the data (unknown) is a gap in the line, never a drop to zero.
    let seg = [];
    const flush = () => {
      if (seg.length > 1) box.append(svg("polyline", { points: seg.join(" ") }));
      else if (seg.length === 1) box.append(svg("circle", { cx: seg[0].split(",")[0], cy: seg[0].split(",")[1], r: 1, fill: "currentColor" }));
      seg = [];
    };
    const n = Math.max(values.length - 1, 1);
    values.forEach((v, i) => {
      if (v === null || v === undefined) return flush();
      seg.push(`${((i / n) * w).toFixed(1)},${(h - 1 - (Math.min(v, max) / max) * (h - 2)).toFixed(1)}`);
    });
    flush();
    return el("div", { class: "spark", title: label },
      el("span", { class: "spark-label" }, label),
      el("b", { class: "spark-value" }, last === null || last === undefined ? "–" : fmt(last)),
      box);
  }

  $("filter").addEventListener("input", () => lastStatus && renderStatus(lastStatus));

  // -- incidents, advisories, silences -----------------------------------------------------------
  function refreshSide(now) {
    const due = now || Date.now() - lastSide > 10000;
    if (!due || sideTimer) return;
    sideTimer = setTimeout(async () => {
      sideTimer = null;
      lastSide = Date.now();
      try {
        await Promise.all([renderOpen(), renderProactive(), renderSilences(), renderLog()]);
      } catch (e) {
        if (!(e instanceof AuthError)) setConn("down", "refresh failed");
      }
    }, now ? 50 : 0);
  }

  function empty(text) {
    return el("div", { class: "empty" }, text);
  }

  function diagnosisBox(d) {
    if (!d) return empty("no diagnosis yet");
    return el("div", { class: "diag" },
      el("div", {}, el("b", {}, d.root_cause), " · confidence ", el("span", { class: "conf" }, pct(d.confidence)),
        ` · ${d.source}${d.claim_status ? ` · ${d.claim_status}` : ""}`),
      el("div", {}, d.summary),
      d.evidence && d.evidence.length
        ? el("ul", { class: "evidence" }, d.evidence.map((e) => el("li", {}, evidenceText(e))))
        : null);
  }

  function evidenceText(e) {
    const value = e.value === null || e.value === undefined ? "unknown" : +Number(e.value).toPrecision(4);
    const bound = e.threshold !== null && e.threshold !== undefined ? ` ${e.op || "vs"} ${+Number(e.threshold).toPrecision(4)}` : "";
    return `${e.signal} = ${value}${bound}${e.note ? ` (${e.note})` : ""}`;
  }

  function advisoryBox(a, audits) {
    const audit = (audits || []).filter((x) => x.action === a.action);
    return el("div", { class: "advice" },
      el("span", { class: "pill", title: "advice only: InferGuard never changes an engine by itself" }, "ADVISORY"),
      el("b", {}, a.action), ` · ${a.horizon}${a.confidence !== undefined ? ` · ${pct(a.confidence)}` : ""}`,
      a.rationale ? el("div", {}, a.rationale) : null,
      a.engine_steps && a.engine_steps.length ? el("ul", { class: "steps" }, a.engine_steps.map((s) => el("li", {}, s))) : null,
      audit.map((x) => el("div", { class: "audit" }, `actuation: ${x.outcome}${x.reason ? ` (${x.reason})` : ""}`)));
  }

  async function renderOpen() {
    const doc = await api("/api/incidents?status=open&limit=100");
    const box = $("open");
    if (!doc.incidents.length) {
      box.replaceChildren(empty("No open incidents."));
      return;
    }
    // The actuation audit comes with the detail document: ask for one, and for the rest only when
    // actuation is on (a fleet-wide outage must not turn every refresh into dozens of requests).
    const first = await api(`/api/incidents/${encodeURIComponent(doc.incidents[0].id)}`).catch(() => doc.incidents[0]);
    const rest = first.actions_source && first.actions_source !== "none"
      ? await Promise.all(doc.incidents.slice(1, 10).map((i) => api(`/api/incidents/${encodeURIComponent(i.id)}`).catch(() => i)))
      : doc.incidents.slice(1);
    const details = [first, ...rest];
    box.replaceChildren(...details.map((inc) => el("div", { class: "panel incident", "data-incident": inc.id },
      el("h3", {}, el("span", { class: `badge ${inc.severity}` }, inc.severity),
        el("a", { href: "#", onclick: (ev) => { ev.preventDefault(); openDetail(inc.id); } }, shortTarget(inc.target)),
        el("span", { class: "muted" }, `since ${fmtTime(inc.opened_at)}`)),
      (inc.anomalies || []).filter((a) => a.active).map((a) => el("div", { class: "anomaly" }, el("b", {}, a.code), ` (${a.severity}) ${a.summary || ""}`)),
      diagnosisBox(inc.diagnosis),
      (inc.advisories || []).map((a) => advisoryBox(a, inc.actions)))));
    if (doc.total > doc.incidents.length) box.append(empty(`${doc.total - doc.incidents.length} more in the log below`));
  }

  async function renderProactive() {
    const doc = await api("/api/advisories");
    const box = $("proactive");
    box.replaceChildren(...(doc.proactive.length
      ? doc.proactive.map((a) => el("div", { class: "panel" }, el("h3", {}, shortTarget(a.target)), advisoryBox(a)))
      : [empty("None: no trend worth acting on.")]));
  }

  async function renderSilences() {
    const doc = await api("/api/silences");
    const box = $("silences");
    if (doc.source === "none") {
      box.replaceChildren(empty("Notifications are not configured."));
      return;
    }
    box.replaceChildren(...(doc.silences.length
      ? doc.silences.map((s) => el("div", { class: "panel" },
        el("div", {}, el("b", {}, s.matcher || s.target || s.code || s.id || "silence"),
          s.ends_at ? ` until ${fmtDateTime(s.ends_at)}` : ""),
        s.comment || s.reason ? el("div", { class: "muted" }, s.comment || s.reason) : null))
      : [empty("No active silences.")]));
  }

  async function renderLog() {
    const status = $("log-status").value;
    const doc = await api(`/api/incidents?limit=100${status ? `&status=${status}` : ""}`);
    $("log-count").textContent = doc.total > doc.incidents.length ? `latest ${doc.incidents.length} of ${doc.total}` : `${doc.total}`;
    const rows = doc.incidents.map((i) => el("tr", { "data-incident": i.id, "data-status": i.status, onclick: () => openDetail(i.id) },
      el("td", {}, fmtDateTime(i.opened_at)),
      el("td", {}, el("span", { class: `badge ${i.status}` }, i.status)),
      el("td", {}, i.peak_severity || i.severity),
      el("td", { class: "target", title: i.target }, shortTarget(i.target)),
      el("td", {}, (i.codes || []).join(", ")),
      el("td", {}, (i.diagnosis && i.diagnosis.root_cause) || "–"),
      el("td", {}, fmtDuration(i.opened_at, i.resolved_at))));
    $("log").replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 7, class: "empty" }, "No incidents yet."))]));
  }
  $("log-status").addEventListener("change", () => renderLog().catch(() => {}));

  // -- detail ------------------------------------------------------------------------------------
  async function openDetail(id) {
    let inc;
    try {
      inc = await api(`/api/incidents/${encodeURIComponent(id)}`);
    } catch (e) {
      return;
    }
    $("detail-title").textContent = `${inc.status === "open" ? "Open" : "Resolved"} incident on ${shortTarget(inc.target)}`;
    const signals = inc.signals || [];
    const keys = SPARKS.map((s) => s[0]).filter((k) => signals.some((s) => s.values && k in s.values));
    $("detail-body").replaceChildren(
      el("div", { class: "kv" },
        el("span", {}, "id"), el("span", {}, inc.id),
        el("span", {}, "target"), el("span", {}, inc.target),
        el("span", {}, "engine · model"), el("span", {}, `${inc.engine} · ${inc.model || "–"}`),
        el("span", {}, "severity (peak)"), el("span", {}, `${inc.severity} (${inc.peak_severity})`),
        el("span", {}, "opened"), el("span", {}, fmtDateTime(inc.opened_at)),
        el("span", {}, "resolved"), el("span", {}, inc.resolved_at ? `${fmtDateTime(inc.resolved_at)} (after ${fmtDuration(inc.opened_at, inc.resolved_at)})` : "still open"),
        el("span", {}, "anomalies"), el("span", {}, (inc.codes || []).join(", "))),
      el("h3", {}, "Diagnosis"), diagnosisBox(inc.diagnosis),
      el("h3", {}, "Diagnosis history"),
      (inc.diagnoses || []).length
        ? el("ol", { class: "timeline" }, inc.diagnoses.map((d) => el("li", {}, `${fmtTime(d.ts)} ${d.root_cause} (${d.source}, ${pct(d.confidence)})`)))
        : empty("none"),
      el("h3", {}, "Advisories"),
      (inc.advisories || []).length ? el("div", {}, inc.advisories.map((a) => advisoryBox(a, inc.actions))) : empty("none"),
      el("h3", {}, "Actions"),
      (inc.actions || []).length
        ? el("ol", { class: "timeline" }, inc.actions.map((a) => el("li", {}, `${fmtTime(a.ts)} ${a.action}: ${a.outcome}${a.reason ? ` (${a.reason})` : ""}`)))
        : empty(inc.actions_source === "none" ? "Actuation is not configured." : "none"),
      el("h3", {}, "Events"),
      el("ol", { class: "timeline" }, (inc.events || []).map((e) => el("li", {}, `${fmtTime(e.ts)} ${e.kind || e.event || ""} ${(e.changes || []).join(", ")}`))),
      el("h3", {}, `Signals (last ${signals.length} samples)`),
      signals.length
        ? el("div", { class: "sparks" }, keys.map((k) => {
          const def = SPARKS.find((s) => s[0] === k);
          return spark(signals.map((s) => (s.values && s.values[k] !== undefined ? s.values[k] : null)), def[1], def[2], def[3]);
        }))
        : empty("no samples"));
    const dialog = $("detail");
    if (!dialog.open) dialog.showModal();
  }

  // -- start -----------------------------------------------------------------------------------
  async function start() {
    $("login").hidden = true;
    try {
      await api("/api/status");
    } catch (e) {
      if (!(e instanceof AuthError)) setConn("down", "unreachable");
      if (e instanceof AuthError) return;
    }
    $("app").hidden = false;
    $("logout").hidden = !token;
    streamRun += 1;
    stream(streamRun);
    refreshSide(true);
    // A notification links here as #incident=<id> (a fragment: the page, not the bearer-only API).
    if (location.hash.startsWith("#incident=")) {
      const id = decodeURIComponent(location.hash.slice(10));
      history.replaceState(null, "", location.pathname + location.search);
      openDetail(id);
    }
  }

  start();
})();
