// The oidb viewer: runs, an intent's timeline (live), trace waterfalls, usage and costs, and
// proofs, from the server's /api/oidb routes and the intent streams. Pages are chosen by the
// address's fragment (#/, #/intent/ID, #/trace/ID, #/costs, #/proofs).

import { barChart } from "./charts.js";

const main = document.getElementById("main");
const problem = document.getElementById("problem");
let leaving = () => {}; // stops what the current page runs (its live stream)

// ---- building the page ---------------------------------------------------------------------

/** An element: h("a", {href: "#/"}, "text", child, ...). Text is always set as text. */
function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function show(...nodes) {
  main.replaceChildren(...nodes.flat(Infinity).filter((n) => n !== null && n !== undefined && n !== false));
}

function say(message) {
  problem.textContent = message;
  problem.hidden = !message;
}

// ---- reading the server --------------------------------------------------------------------

function key() {
  return sessionStorage.getItem("oidb-api-key") || "";
}

async function read(path) {
  for (;;) {
    const headers = key() ? { "X-API-Key": key() } : {};
    const response = await fetch(path, { headers });
    if (response.status === 401) {
      const given = window.prompt("This server needs its API key (X-API-Key):");
      if (!given) throw new Error("the server needs its API key");
      sessionStorage.setItem("oidb-api-key", given);
      continue;
    }
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      const detail = body && (body.detail || body.error || body.message);
      throw new Error(`${path}: ${response.status} ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
    }
    return body;
  }
}

/** Follows an intent's stream (server-sent events) from after `position`, calling `onEvent`
 *  with each event; reconnects after a break from the last event it had. Returns a stop. */
function follow(intentId, position, onEvent) {
  let stopped = false;
  let controller = null;
  let last = position;
  (async () => {
    while (!stopped) {
      controller = new AbortController();
      try {
        const headers = key() ? { "X-API-Key": key() } : {};
        const response = await fetch(
          `/api/v1/subscribe/intents/${encodeURIComponent(intentId)}?after=${last}`,
          { headers, signal: controller.signal },
        );
        if (!response.ok || !response.body) throw new Error(`stream: ${response.status}`);
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const message = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            let data = "", id = null, kind = "message";
            for (const line of message.split("\n")) {
              if (line.startsWith("data:")) data += line.slice(5).trimStart();
              else if (line.startsWith("id:")) id = line.slice(3).trim();
              else if (line.startsWith("event:")) kind = line.slice(6).trim();
            }
            if (!data || kind === "error") continue;
            const event = JSON.parse(data);
            if (id !== null) last = Number(id);
            onEvent(event);
          }
        }
      } catch (error) {
        if (stopped) return;
      }
      if (!stopped) await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  })();
  return () => {
    stopped = true;
    if (controller) controller.abort();
  };
}

// ---- formatting ----------------------------------------------------------------------------

const number = new Intl.NumberFormat("en");
function count(n) {
  return n === null || n === undefined ? "–" : number.format(n);
}
function duration(ms) {
  if (ms === null || ms === undefined) return "–";
  if (ms === 0) return "0 ms";
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}
function money(amount, unit) {
  const digits = Math.abs(amount) < 1 ? 6 : 2;
  return `${Number(amount.toFixed(digits))} ${unit}`;
}
function costs(cost) {
  const parts = Object.entries(cost || {}).map(([unit, amount]) => money(amount, unit));
  return parts.length ? parts.join(", ") : "–";
}
function when(text) {
  return text ? text.replace("T", " ").replace(/(\.\d{3})\d*/, "$1").replace("+00:00", "").replace("Z", "") : "–";
}
function short(id) {
  return id.length > 14 ? `${id.slice(0, 6)}…${id.slice(-6)}` : id;
}
function levelOf(event) {
  return (event.level || "INFO").toUpperCase();
}
/** A line saying what an event's payload holds: its first few members. */
function gist(payload) {
  if (!payload || typeof payload !== "object") return "";
  return Object.entries(payload)
    .slice(0, 5)
    .map(([k, v]) => `${k}=${typeof v === "string" ? JSON.stringify(v.length > 60 ? v.slice(0, 60) + "…" : v) : Array.isArray(v) ? `[${v.length}]` : typeof v === "object" && v ? "{…}" : v}`)
    .join(" ");
}

/** A table whose columns sort when their heading is clicked. `columns`: [{title, value(row),
 *  show(row) -> node|text, num}]. */
function sortableTable(rows, columns, { testid, rowAttrs = () => ({}) } = {}) {
  let by = null, down = false;
  const body = h("tbody");
  const draw = () => {
    const sorted = by === null ? rows : [...rows].sort((a, b) => {
      const x = columns[by].value(a), y = columns[by].value(b);
      const order = x < y ? -1 : x > y ? 1 : 0;
      return down ? -order : order;
    });
    body.replaceChildren(...sorted.map((row) => h("tr", rowAttrs(row),
      columns.map((c) => h("td", { class: c.num ? "num" : c.wide ? "wide" : undefined }, c.show ? c.show(row) : c.value(row))))));
  };
  const head = h("tr", {}, columns.map((c, i) => h("th", { class: c.num ? "num" : c.wide ? "wide" : undefined, scope: "col" },
    h("button", { type: "button", onclick: () => { down = by === i ? !down : false; by = i; draw(); } }, c.title))));
  draw();
  return h("div", { class: "table-wrap" }, h("table", { "data-testid": testid }, h("thead", {}, head), body));
}

// ---- runs ----------------------------------------------------------------------------------

async function runsPage() {
  const runs = [];
  let next = null;
  const filter = h("input", { type: "search", placeholder: "title, id or actor", "aria-label": "Filter runs" });
  const status = h("select", { "aria-label": "Status" }, ["any", "active", "completed", "blocked", "abandoned", "draft"].map((s) => h("option", { value: s }, s)));
  const holder = h("div");
  const more = h("button", { type: "button", hidden: true, onclick: () => load() }, "Load more runs");
  const columns = [
    { title: "Run", value: (r) => r.title, show: (r) => h("a", { href: `#/intent/${encodeURIComponent(r.id)}` }, r.title) },
    { title: "Status", value: (r) => r.status, show: (r) => h("span", { class: `status-${r.status}` }, r.status) },
    { title: "Actors", value: (r) => r.actors.join(", "), wide: true },
    { title: "Events", value: (r) => r.events, show: (r) => count(r.events), num: true },
    { title: "Duration", value: (r) => r.duration_ms ?? -1, show: (r) => duration(r.duration_ms), num: true },
    { title: "Tokens", value: (r) => r.tokens ?? -1, show: (r) => (r.tokens === null ? h("span", { class: "muted", title: "counting" }, "…") : count(r.tokens)), num: true },
    { title: "Cost", value: (r) => Object.values(r.cost)[0] ?? 0, show: (r) => costs(r.cost) + (r.unpriced_requests ? ` + ${r.unpriced_requests} unpriced` : ""), num: true },
    { title: "Errors", value: (r) => r.errors, show: (r) => r.errors ? h("span", { class: "badge level-ERROR" }, count(r.errors)) : "0", num: true },
    { title: "Warnings", value: (r) => r.warnings, show: (r) => r.warnings ? h("span", { class: "badge level-WARN" }, count(r.warnings)) : "0", num: true, wide: true },
  ];
  const draw = () => {
    const text = filter.value.trim().toLowerCase();
    const wanted = runs.filter((r) => (status.value === "any" || r.status === status.value) &&
      (!text || r.title.toLowerCase().includes(text) || r.id.toLowerCase().includes(text) || r.actors.some((a) => a.toLowerCase().includes(text))));
    holder.replaceChildren(wanted.length ? sortableTable(wanted, columns, { testid: "runs" }) : h("p", { class: "muted" }, runs.length ? "No run matches." : "No runs in this file yet."));
  };
  let alive = true;
  leaving = () => { alive = false; };
  // Tokens need a scan of each run's requests: they are filled in after the list shows.
  async function fill(fresh) {
    const queue = [...fresh];
    const worker = async () => {
      while (alive && queue.length) {
        const run = queue.shift();
        const full = await read(`/api/oidb/runs/${encodeURIComponent(run.id)}`).catch(() => null);
        if (full && alive) Object.assign(run, full.run);
      }
    };
    await Promise.all([worker(), worker()]);
    if (alive) draw();
  }
  async function load() {
    const page = await read(`/api/oidb/runs?limit=50${next ? `&after=${encodeURIComponent(next)}` : ""}`);
    runs.push(...page.runs);
    next = page.next;
    more.hidden = !next;
    writer(page.writer);
    draw();
    fill(page.runs);
  }
  filter.addEventListener("input", draw);
  status.addEventListener("change", draw);
  show(h("h1", {}, "Runs"),
    h("div", { class: "controls" }, h("label", {}, "Filter", filter), h("label", {}, "Status", status)),
    holder, more);
  await load();
}

function writer(status) {
  const text = { "this server": "written by this server", live: "live: another process is writing", closed: "closed by its writer", stopped: "its writer stopped without closing it" }[status] || status;
  document.getElementById("writer").textContent = text || "";
}

// ---- an intent's timeline ------------------------------------------------------------------

function eventRow(event, fresh) {
  const level = levelOf(event);
  return h("tr", { class: `level-${level}${fresh ? " new" : ""}`, "data-position": event.position, "data-type": event.event_type },
    h("td", { class: "num" }, event.position),
    h("td", { class: "wide" }, when(event.created_at)),
    h("td", {}, event.event_type),
    h("td", {}, level === "INFO" ? "" : h("span", { class: `badge level-${level}` }, level)),
    h("td", {}, event.actor),
    h("td", {}, h("details", {}, h("summary", { class: "summary-line" }, gist(event.payload) || "payload"),
      h("pre", {}, JSON.stringify(event, null, 2)))));
}

function matches(event, f) {
  if (f.type) {
    const prefix = f.type.endsWith("*") ? f.type.slice(0, -1) : null;
    if (prefix !== null ? !event.event_type.startsWith(prefix) : event.event_type !== f.type) return false;
  }
  if (f.actor && event.actor !== f.actor) return false;
  const order = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
  if (f.level && order.indexOf(levelOf(event)) < order.indexOf(f.level.toUpperCase())) return false;
  if (f.since && event.created_at < f.since) return false;
  if (f.until && event.created_at > f.until) return false;
  return true;
}

async function intentPage(intentId) {
  const [runPage, traces, blocks] = await Promise.all([
    read(`/api/oidb/runs/${encodeURIComponent(intentId)}`),
    read(`/api/oidb/intents/${encodeURIComponent(intentId)}/traces`),
    read(`/api/oidb/intents/${encodeURIComponent(intentId)}/blocks`),
  ]);
  const run = runPage.run;
  writer(runPage.writer);
  const inputs = {
    type: h("input", { name: "type", placeholder: "llm_request_* or comment", "aria-label": "Event type" }),
    actor: h("input", { name: "actor", placeholder: "any", "aria-label": "Actor" }),
    level: h("select", { name: "level", "aria-label": "Level at least" }, ["", "debug", "info", "warn", "error"].map((l) => h("option", { value: l }, l || "any"))),
    since: h("input", { name: "since", type: "datetime-local", step: "0.001", "aria-label": "Since (UTC)" }),
    until: h("input", { name: "until", type: "datetime-local", step: "0.001", "aria-label": "Until (UTC)" }),
  };
  const body = h("tbody");
  const older = h("button", { type: "button", hidden: true }, "Older events");
  let next = null, filters = {};
  const params = () => {
    const p = new URLSearchParams({ limit: "100" });
    for (const [name, value] of Object.entries(filters)) if (value) p.set(name, value);
    if (next) p.set("after", next);
    return p;
  };
  const loadPage = async () => {
    const page = await read(`/api/oidb/intents/${encodeURIComponent(intentId)}/events?${params()}`);
    body.append(...page.events.map((e) => eventRow(e, false)));
    next = page.next;
    older.hidden = !next;
    return page;
  };
  older.addEventListener("click", () => loadPage().catch((e) => say(e.message)));
  const apply = async () => {
    const utc = (v) => (v ? `${v}Z` : "");
    filters = { type: inputs.type.value.trim(), actor: inputs.actor.value.trim(), level: inputs.level.value, since: utc(inputs.since.value), until: utc(inputs.until.value) };
    next = null;
    body.replaceChildren();
    await loadPage();
  };
  for (const input of Object.values(inputs)) input.addEventListener("change", () => apply().catch((e) => say(e.message)));

  const header = run
    ? h("div", { class: "cards" },
        card("Status", run.status), card("Events", count(run.events)), card("Duration", duration(run.duration_ms)),
        card("Tokens", count(run.tokens)), card("Cost", costs(run.cost)), card("Errors", count(run.errors)), card("Actors", run.actors.join(", ")))
    : null;
  const traceList = traces.length
    ? h("ul", {}, traces.map((t) => h("li", {}, h("a", { href: `#/trace/${encodeURIComponent(t.trace_id)}` }, `trace ${short(t.trace_id)}`), ` · ${t.events} events from ${when(t.first_at)}`)))
    : h("p", { class: "muted" }, "No traces.");
  const blockList = blocks.length
    ? blocks.map((b) => h("details", { "data-testid": "block" }, h("summary", {}, `${b.kind} ${b.id || ""} · events ${b.first_sequence}–${b.last_sequence}${b.ended_at ? "" : " · never ended"}`), h("pre", {}, b.text)))
    : [h("p", { class: "muted" }, "No thinking or code blocks.")];
  show(
    h("p", {}, h("a", { href: "#/" }, "← Runs")),
    h("h1", {}, run ? run.title : intentId),
    h("p", { class: "muted" }, `intent ${intentId}`),
    header,
    h("h2", {}, "Timeline"),
    h("div", { class: "controls" }, Object.entries(inputs).map(([name, input]) => h("label", {}, name, input))),
    h("div", { class: "table-wrap" }, h("table", { "data-testid": "timeline" },
      h("thead", {}, h("tr", {}, ["Pos", "Time (UTC)", "Type", "Level", "Actor", "Payload"].map((t, i) => h("th", { scope: "col", class: i === 0 ? "num" : i === 1 ? "wide" : undefined }, t)))),
      body)),
    older,
    h("h2", {}, "Traces"), traceList,
    h("h2", {}, "Thinking and code"), ...blockList,
  );
  const first = await loadPage();
  const stop = follow(intentId, first.last_position, (event) => {
    if (!matches(event, filters) || body.querySelector(`tr[data-position="${event.position}"]`)) return;
    body.prepend(eventRow(event, true));
  });
  leaving = stop;
}

function card(title, value) {
  return h("div", { class: "card" }, h("span", { class: "muted" }, title), h("b", {}, value));
}

// ---- a trace's waterfall -------------------------------------------------------------------

async function tracePage(traceId) {
  const trace = await read(`/api/oidb/traces/${encodeURIComponent(traceId)}`);
  const nodes = trace.nodes;
  const time = (e) => Date.parse(e.created_at);
  const t0 = Math.min(...nodes.map((n) => time(n.event)));
  const t1 = Math.max(...nodes.map((n) => (n.span ? time(n.span.end) : time(n.event))));
  const total = Math.max(1, t1 - t0);
  const panel = h("div", { class: "attributes", "aria-live": "polite" });
  const rows = [];
  const select = (row, node) => {
    rows.forEach((r) => r.setAttribute("aria-selected", "false"));
    row.setAttribute("aria-selected", "true");
    const end = node.span ? node.span.end.payload || {} : {};
    const start = node.event.payload || {};
    const pick = (name) => end[name] ?? start[name];
    const usage = end.usage || {};
    const facts = [
      ["event", `${node.event.event_type} · ${node.event.intent_id} #${node.event.sequence}`],
      ["actor", node.event.actor],
      ["started", when(node.event.created_at)],
      node.span && ["kind", node.span.kind], node.span && ["outcome", node.span.outcome],
      node.span && ["duration", duration(node.span.duration_ms)],
      pick("model") && ["model", pick("model")], pick("provider") && ["provider", pick("provider")],
      pick("tool_name") && ["tool", pick("tool_name")],
      (end.prompt_tokens ?? usage.prompt_tokens ?? usage.input_tokens) !== undefined && ["tokens", `${end.prompt_tokens ?? usage.prompt_tokens ?? usage.input_tokens ?? 0} in + ${end.completion_tokens ?? usage.completion_tokens ?? usage.output_tokens ?? 0} out`],
      pick("finish_reason") && ["finish reason", pick("finish_reason")],
      pick("cost") !== undefined && ["cost", String(pick("cost"))],
      pick("error") && ["error", typeof pick("error") === "string" ? pick("error") : JSON.stringify(pick("error"))],
    ].filter(Boolean);
    panel.replaceChildren(h("h2", {}, "Span"), h("table", { "data-testid": "span-attributes" }, facts.map(([k, v]) => h("tr", {}, h("th", { scope: "row" }, k), h("td", {}, v)))),
      h("details", {}, h("summary", {}, "Start event"), h("pre", {}, JSON.stringify(node.event, null, 2))),
      node.span ? h("details", {}, h("summary", {}, "End event"), h("pre", {}, JSON.stringify(node.span.end, null, 2))) : null);
  };
  const ends = new Set(nodes.filter((n) => n.span).map((n) => n.span.end.id));
  const shown = nodes.filter((n) => !ends.has(n.event.id));
  const list = h("div", { class: "waterfall", role: "listbox", "aria-label": "Spans", "data-testid": "waterfall" });
  for (const node of shown) {
    const start = time(node.event) - t0;
    const span = node.span;
    const failed = span && span.outcome !== "completed";
    const bar = h("span", {
      class: `wf-bar ${span ? span.kind : "point"}${failed ? " failed" : ""}`,
      style: `left:${(start / total) * 100}%;${span ? `width:${(span.duration_ms / total) * 100}%` : ""}`,
    });
    const label = span ? `${span.kind.replace("_", " ")} · ${node.event.payload?.model || node.event.payload?.tool_name || node.event.event_type}` : node.event.event_type;
    const row = h("div", {
      class: "wf-row", role: "option", tabindex: "0", "aria-selected": "false",
      "data-kind": span ? span.kind : "event", "data-outcome": span ? span.outcome : "", "data-duration-ms": span ? span.duration_ms : "",
      "data-start-ms": start,
    },
      h("span", { class: "wf-name", style: `padding-left:${node.depth * 1.1}rem`, title: label }, label, failed ? h("span", { class: "failed-mark" }, ` ✗ ${span.outcome}`) : null),
      h("span", { class: "wf-track" }, bar),
      h("span", { class: "wf-dur" }, span ? duration(span.duration_ms) : ""));
    row.addEventListener("click", () => select(row, node));
    row.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); select(row, node); }
      if (e.key === "ArrowDown") row.nextElementSibling?.focus();
      if (e.key === "ArrowUp") row.previousElementSibling?.focus();
    });
    rows.push(row);
    list.append(row);
  }
  const intents = [...new Set(nodes.map((n) => n.event.intent_id))];
  show(
    h("p", {}, h("a", { href: "#/" }, "← Runs")),
    h("h1", {}, `Trace ${traceId}`),
    h("div", { class: "cards" }, card("Spans", count(nodes.filter((n) => n.span).length)), card("Events", count(nodes.length)), card("Duration", duration(total)),
      card("Failed", count(nodes.filter((n) => n.span && n.span.outcome !== "completed").length))),
    h("p", { class: "muted" }, "Intents: ", intents.map((id, i) => [i ? ", " : "", h("a", { href: `#/intent/${encodeURIComponent(id)}` }, short(id))])),
    list,
    panel,
  );
}

// ---- usage and costs -----------------------------------------------------------------------

async function costsPage() {
  const bucket = h("select", { "aria-label": "Time buckets" }, ["minute", "hour", "day"].map((b) => h("option", { value: b }, b)));
  const [cost, byModel, byProvider, byAgent] = await Promise.all([
    read("/api/oidb/costs"), read("/api/oidb/usage?group_by=model"), read("/api/oidb/usage?group_by=provider"), read("/api/oidb/usage?group_by=agent"),
  ]);
  const units = Object.entries(cost.summary.by_unit);
  const totals = h("div", { class: "cards", "data-testid": "cost-totals" },
    units.length ? units.map(([unit, s]) => h("div", { class: "card", "data-unit": unit, "data-total": s.total }, h("span", { class: "muted" }, `total ${unit}`), h("b", {}, money(s.total, unit)), h("span", { class: "muted" }, `${s.count} costs`)))
      : card("Costs", "none recorded"),
    cost.summary.unpriced.length ? card("Unpriced", `${cost.summary.unpriced.reduce((n, u) => n + u.requests, 0)} requests`) : null);
  const usageTable = (groups, name) => sortableTable(groups, [
    { title: name, value: (g) => g.key },
    { title: "Requests", value: (g) => g.llm.requests, show: (g) => count(g.llm.requests), num: true },
    { title: "Tokens in", value: (g) => g.llm.input_tokens, show: (g) => count(g.llm.input_tokens), num: true },
    { title: "Tokens out", value: (g) => g.llm.output_tokens, show: (g) => count(g.llm.output_tokens), num: true },
    { title: "Error rate", value: (g) => g.llm.error_rate, show: (g) => `${(g.llm.error_rate * 100).toFixed(1)}%`, num: true },
    { title: "p50", value: (g) => g.llm.latency_ms.p50 ?? -1, show: (g) => duration(g.llm.latency_ms.p50), num: true },
    { title: "p95", value: (g) => g.llm.latency_ms.p95 ?? -1, show: (g) => duration(g.llm.latency_ms.p95), num: true, wide: true },
    { title: "p99", value: (g) => g.llm.latency_ms.p99 ?? -1, show: (g) => duration(g.llm.latency_ms.p99), num: true },
    { title: "Tool calls", value: (g) => g.tools.calls, show: (g) => count(g.tools.calls), num: true, wide: true },
  ], { testid: `usage-${name.toLowerCase()}` });
  const spend = (name, field) => {
    const rows = [];
    for (const [unit, s] of units) for (const [key, amount] of Object.entries(s[field])) rows.push({ key, unit, amount });
    return rows.length ? sortableTable(rows, [
      { title: name, value: (r) => r.key },
      { title: "Cost", value: (r) => r.amount, show: (r) => money(r.amount, r.unit), num: true },
    ], { testid: `cost-${field}` }) : h("p", { class: "muted" }, "None.");
  };
  const priced = new Set(units.flatMap(([, s]) => Object.keys(s.by_model)));
  const unpriced = cost.summary.unpriced.length
    ? h("ul", { "data-testid": "unpriced" }, cost.summary.unpriced.map((u) => h("li", {}, `${u.provider ? u.provider + "/" : ""}${u.model || "(no model)"}: unpriced — ${u.requests} requests, ${count(u.input_tokens)} in + ${count(u.output_tokens)} out tokens; no price covers it, so its cost is unknown (not zero)`)))
    : h("p", { class: "muted" }, priced.size ? "Every model has a price." : "No LLM usage.");
  const budgets = cost.budgets.length
    ? h("div", { class: "table-wrap" }, h("table", { "data-testid": "budgets" }, h("thead", {}, h("tr", {}, ["Intent", "Spent", "Budget", "", "Remaining"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, cost.budgets.map((b) => {
        const share = b.max_cost > 0 ? b.spent / b.max_cost : 1;
        const state = share >= 1 ? "over" : b.alerted ? "alert" : "";
        return h("tr", {}, h("td", {}, h("a", { href: `#/intent/${encodeURIComponent(b.intent_id)}` }, short(b.intent_id))),
          h("td", { class: "num" }, money(b.spent, b.unit)), h("td", { class: "num" }, money(b.max_cost, b.unit)),
          h("td", {}, h("div", { class: `meter ${state}`, role: "meter", "aria-valuemin": 0, "aria-valuemax": b.max_cost, "aria-valuenow": b.spent, "aria-label": "spent" }, h("span", { style: `width:${Math.min(100, share * 100)}%` }))),
          h("td", { class: "num" }, money(b.remaining, b.unit)));
      }))))
    : h("p", { class: "muted" }, "No budgets.");
  const chartHolder = h("div", { class: "grid2" });
  const drawCharts = async () => {
    const [groups, spent] = await Promise.all([
      read(`/api/oidb/usage?group_by=${bucket.value}`), read(`/api/oidb/costs/over_time?bucket=${bucket.value}`),
    ]);
    const label = (k) => (bucket.value === "day" ? k.slice(5, 10) : k.slice(11, 16));
    const spentUnits = [...new Set(spent.flatMap((b) => Object.keys(b.by_unit)))].sort();
    chartHolder.replaceChildren(
      ...spentUnits.map((unit) => h("div", { class: "chart", "data-testid": "cost-over-time", "data-unit": unit }, h("h2", {}, `Cost per ${bucket.value} (${unit})`),
        barChart(spent.map((b) => ({ label: label(b.start), value: b.by_unit[unit] ?? 0 })), { title: `${unit} per ${bucket.value}`, format: (v) => String(Number(v.toPrecision(3))) }))),
      h("div", { class: "chart" }, h("h2", {}, `Tokens per ${bucket.value}`), barChart(groups.map((g) => ({ label: label(g.key), value: g.llm.total_tokens })), { title: `tokens per ${bucket.value}`, format: (v) => count(Math.round(v)) })),
      h("div", { class: "chart" }, h("h2", {}, `Requests per ${bucket.value}`), barChart(groups.map((g) => ({ label: label(g.key), value: g.llm.requests })), { title: `requests per ${bucket.value}`, format: (v) => count(Math.round(v)) })),
    );
  };
  bucket.addEventListener("change", () => drawCharts().catch((e) => say(e.message)));
  show(
    h("h1", {}, "Usage and costs"),
    totals,
    h("div", { class: "controls" }, h("label", {}, "Buckets", bucket)),
    chartHolder,
    h("h2", {}, "By model"), usageTable(byModel, "Model"),
    h("h2", {}, "By provider"), usageTable(byProvider, "Provider"),
    h("h2", {}, "By agent"), usageTable(byAgent, "Agent"),
    h("div", { class: "grid2" }, h("div", {}, h("h2", {}, "Cost by model"), spend("Model", "by_model")), h("div", {}, h("h2", {}, "Cost by agent"), spend("Agent", "by_agent"))),
    h("h2", {}, "Unpriced"), unpriced,
    h("h2", {}, "Budgets"), budgets,
  );
  await drawCharts();
}

// ---- proofs --------------------------------------------------------------------------------

async function proofsPage() {
  const proofs = await read("/api/oidb/proofs");
  const v = proofs.verification;
  const chains = sortableTable(v.chains, [
    { title: "Intent", value: (c) => c.intent_id, show: (c) => h("a", { href: `#/intent/${encodeURIComponent(c.intent_id)}` }, c.intent_id) },
    { title: "Events", value: (c) => c.event_count, show: (c) => count(c.event_count), num: true },
    { title: "Sequences", value: (c) => c.last_sequence, show: (c) => `${c.first_sequence}–${c.last_sequence}`, num: true },
    { title: "Chain", value: (c) => (c.valid ? 1 : 0), show: (c) => (c.valid ? h("span", { class: "ok" }, "✓ holds") : h("span", { class: "bad" }, `✗ ${c.breaks.length} break${c.breaks.length === 1 ? "" : "s"}`)) },
  ], { testid: "chains" });
  const breaks = v.chains.flatMap((c) => c.breaks.map((b) => ({ ...b, intent_id: c.intent_id })));
  const checkpoints = proofs.checkpoints || [];
  show(
    h("h1", {}, "Proofs"),
    h("div", { class: "cards" },
      h("div", { class: "card", "data-testid": "verdict" }, h("span", { class: "muted" }, "Log"), h("b", { class: v.valid ? "ok" : "bad" }, v.valid ? "✓ verified" : "✗ broken")),
      card("Events", count(v.event_count)), card("Chains", count(v.chains.length)), card("Checkpoints", `${count(checkpoints.filter((c) => c.verification.valid).length)} of ${count(checkpoints.length)} match`)),
    breaks.length ? h("h2", {}, "Breaks") : null,
    breaks.map((b) => h("div", { class: "break", "data-testid": "break", "data-position": b.position ?? "", "data-sequence": b.sequence },
      h("b", {}, `${b.kind} at sequence ${b.sequence}`), b.position ? [" · event at position ", h("a", { href: `#/intent/${encodeURIComponent(b.intent_id)}` }, String(b.position))] : null,
      h("div", {}, `intent ${b.intent_id}${b.event_id ? ` · event ${b.event_id}` : ""}`),
      b.expected ? h("div", {}, "expected: ", h("code", {}, b.expected)) : null,
      b.found ? h("div", {}, "found: ", h("code", {}, b.found)) : null)),
    (v.problems || []).length ? [h("h2", {}, "Store problems"), h("ul", {}, v.problems.map((p) => h("li", {}, `${p.kind} in ${p.table}${p.position ? ` at position ${p.position}` : ""}${p.detail ? `: ${p.detail}` : ""}`)))] : null,
    h("h2", {}, "Chains"), chains,
    h("h2", {}, "Checkpoints"),
    checkpoints.length ? sortableTable(checkpoints, [
      { title: "Checkpoint", value: (c) => c.checkpoint.checkpoint_id },
      { title: "Scope", value: (c) => (c.checkpoint.intent_id ? `intent ${c.checkpoint.intent_id}` : c.checkpoint.scope) },
      { title: "Events", value: (c) => c.checkpoint.event_count, show: (c) => count(c.checkpoint.event_count), num: true },
      { title: "Sealed", value: (c) => c.checkpoint.created_at, show: (c) => when(c.checkpoint.created_at), wide: true },
      { title: "Merkle root", value: (c) => c.checkpoint.merkle_root, wide: true },
      { title: "State", value: (c) => (c.verification.valid ? 1 : 0), show: (c) => (c.verification.valid ? h("span", { class: "ok" }, "✓ matches the log")
        : h("span", { class: "bad" }, `✗ ${c.verification.problems.map(problemText).join("; ") || "does not match"}`)) },
    ], { testid: "checkpoints" }) : h("p", { class: "muted" }, "No checkpoints."),
  );
}

/** What a checkpoint problem ({kind, ...its fields}) says. */
function problemText(problem) {
  const { kind = "problem", ...fields } = problem || {};
  const parts = Object.entries(fields).map(([k, v]) => `${k.replace(/_/g, " ")} ${v}`);
  return `${String(kind).replace(/_/g, " ")}${parts.length ? ` (${parts.join(", ")})` : ""}`;
}

// ---- choosing the page ---------------------------------------------------------------------

async function route() {
  leaving();
  leaving = () => {};
  say("");
  const hash = decodeURIComponent(location.hash.replace(/^#\/?/, ""));
  const [page, ...rest] = hash.split("/");
  const arg = rest.join("/");
  for (const link of document.querySelectorAll("header nav a")) {
    const current = link.dataset.page === (page || "runs") || (link.dataset.page === "runs" && (page === "intent" || page === "trace"));
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  try {
    if (page === "intent" && arg) await intentPage(arg);
    else if (page === "trace" && arg) await tracePage(arg);
    else if (page === "costs") await costsPage();
    else if (page === "proofs") await proofsPage();
    else await runsPage();
  } catch (error) {
    say(error.message);
  }
  main.focus({ preventScroll: true });
}

window.addEventListener("hashchange", route);
route();
