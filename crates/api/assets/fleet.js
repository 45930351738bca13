// The hub's page: the leaderboard, a row per node with a tok/s sparkline, the fleet's
// observations, and a node's own view (its history from the hub's store, drawn with the
// agent dashboard's chart). Every figure is the hub's API's as it is.

import { get } from "./api.js";
import { h, absent, unit, cell, table } from "./fmt.js";
import { timeChart } from "./chart.js";

const $ = (id) => document.getElementById(id);
const TOKS = "infermon_node_generation_tokens_per_second";
const SPARK_MS = 30 * 60e3;
const RANGES = { "1h": [3600e3, "raw"], "24h": [86400e3, "1m"], "7d": [7 * 86400e3, "1h"], "30d": [30 * 86400e3, "1h"] };
const CHARTS = [
  { metric: TOKS, title: "generation tok/s", unit: "tok/s" },
  { metric: "infermon_node_power_watts", title: "power", unit: "watts" },
  { metric: "infermon_wes", label: ["kind", "penalized"], title: "WES penalized", unit: "" },
  { metric: "infermon_node_memory_available_bytes", title: "host memory available", unit: "bytes" },
];

const q = (s) => encodeURIComponent(s);
let nodes = [];
let view = "fleet";
let range = "1h";
const sparks = new Map();

function liveness(n) {
  const cls = { up: "ok", stale: "warn", down: "bad" }[n.liveness] || "na";
  const age = absent(n.age_s) ? "never pushed" : n.age_s < 90 ? n.age_s.toFixed(0) + " s ago" : (n.age_s / 60).toFixed(0) + " min ago";
  return h("td", { class: cls, "data-liveness": n.liveness, "data-ts": n.sample_ts_unix_ms }, n.liveness + (n.revoked ? " (revoked)" : ""), h("span", { class: "sub", text: age }));
}

/** A small SVG line of `points` (history points), or a note when there are none. */
function sparkline(points) {
  const vals = points.map((p) => p.value);
  if (vals.length < 2) return h("span", { class: "na", text: vals.length ? "one sample" : "no samples" });
  const w = 120, ht = 24, lo = Math.min(...vals), hi = Math.max(...vals);
  const t0 = points[0].ts_ms, t1 = points[points.length - 1].ts_ms;
  const xy = points.map((p) => [((p.ts_ms - t0) / Math.max(1, t1 - t0)) * w, ht - 2 - ((p.value - lo) / Math.max(1e-9, hi - lo)) * (ht - 4)]);
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${ht}`);
  svg.setAttribute("width", w);
  svg.setAttribute("height", ht);
  svg.setAttribute("class", "spark");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `tok/s over 30 min: ${unit(lo, "tok/s")} to ${unit(hi, "tok/s")}`);
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", xy.map(([x, y]) => x.toFixed(1) + "," + y.toFixed(1)).join(" "));
  svg.append(line);
  return svg;
}

async function refreshSparks() {
  const to = Date.now();
  await Promise.all(nodes.map(async (n) => {
    try {
      const v = await get(`api/v1/fleet/history?node=${q(n.name)}&metric=${TOKS}&from=${to - SPARK_MS}&to=${to}&resolution=raw`);
      sparks.set(n.name, v.series.length ? v.series[0].points : []);
    } catch (_) {
      sparks.set(n.name, []);
    }
  }));
}

function renderBoard(b) {
  const rows = b.ranked.map((r) => [h("td", { class: "num", text: String(r.rank) }), nodeLink(r.node),
    cell(r.wes_penalized, "", null, 1), cell(r.wes_raw, "", null, 1), cell(r.thermal_cost_percent, "%", null, 1),
    cell(r.tokens_per_second, "tok/s"), cell(r.power_watts, "watts")]);
  for (const u of b.unranked) {
    rows.push([h("td", { class: "na", text: "–" }), nodeLink(u.node), h("td", { class: "na", colspan: 5, text: u.liveness + ": " + u.why })]);
  }
  table($("board"), ["rank", "node", "WES penalized", "WES raw", "thermal cost", "tok/s", "power"], rows, "no node has joined yet");
}

/** Why a node has no WES, without the "WES unavailable: " the hub puts first. */
const noWes = (n) => (n.wes_unavailable || "").replace(/^WES unavailable: /, "");

function nodeLink(name) {
  return h("td", {}, h("a", { href: "#node?name=" + q(name), text: name }));
}

function renderNodes() {
  table($("nodes"), ["node", "liveness", "hardware", "engines", "tok/s (30 min)", "tok/s", "power", "WES", "thermal", "observations"],
    nodes.map((n) => {
      const hw = [n.cpu_count ? n.cpu_count + " CPUs" : null, absent(n.memory_total_bytes) ? null : unit(n.memory_total_bytes, "bytes"),
        ...n.gpus].filter(Boolean).join(", ");
      const engines = n.engines.map((e) => e.kind + " " + e.model + (e.up ? "" : " (down)")).join("; ");
      const wes = absent(n.wes_penalized) ? cell(null, "", noWes(n)) :
        h("td", { class: "num", text: n.wes_penalized.toFixed(1) + " / " + n.wes_raw.toFixed(1) });
      const th = n.thermal ? n.thermal.state + (n.thermal.reasons.length ? " (" + n.thermal.reasons.join(", ") + ")" : "") : "";
      const obs = n.observations.length;
      return [nodeLink(n.name), liveness(n), hw || "not reported", engines || "no engine",
        h("td", {}, sparkline(sparks.get(n.name) || [])),
        cell(n.tokens_per_second, "tok/s", n.engines.length ? "no token counters" : "no engine"),
        cell(n.power_watts, "watts", "no power reading"), wes, th,
        h("td", { class: obs ? "warn" : "", text: obs ? obs + " open" : "none" })];
    }), "no node has joined yet: start agents with --hub URL --hub-token JOIN_TOKEN");
}

function obsBox(o) {
  return h("div", { class: "obs " + o.severity, "data-kind": o.kind },
    h("div", { class: "head", text: o.node + ": " + o.kind + " (" + o.severity + ")" }),
    h("div", { text: o.summary }), o.action ? h("div", { class: "note", text: "what to do: " + o.action }) : null);
}

async function refreshFleet() {
  const model = $("model-pick").value;
  const [n, b, o] = await Promise.all([get("api/v1/fleet/nodes"), get("api/v1/fleet/leaderboard" + (model ? "?model=" + q(model) : "")),
    get("api/v1/fleet/observations")]);
  nodes = n.nodes;
  const models = [...new Set(nodes.flatMap((x) => x.engines.map((e) => e.model)).filter(Boolean))].sort();
  const pick = $("model-pick");
  const have = [...pick.options].map((x) => x.value);
  for (const m of models) if (!have.includes(m)) pick.append(h("option", { value: m, text: m }));
  renderBoard(b);
  renderNodes();
  $("fleet-obs").replaceChildren(...(o.observations.length ? o.observations.map(obsBox) : [h("p", { class: "na", text: "nothing open in the fleet" })]));
  const up = nodes.filter((x) => x.liveness === "up").length;
  $("state").textContent = `${nodes.length} nodes, ${up} up · updated ${new Date().toLocaleTimeString()}`;
  $("state").className = "";
}

// The node view.
let nodeCharts = [];

async function drawNode(name) {
  const n = nodes.find((x) => x.name === name);
  $("node-name").textContent = name;
  $("node-tab").hidden = false;
  if (!n) {
    $("node-cards").replaceChildren(h("p", { class: "bad", text: "no node named " + name + " on this hub" }));
    return;
  }
  const card = (label, v, u, why) => h("div", { class: "card" }, absent(v) ? h("span", { class: "v na", text: "unavailable" + (why ? ": " + why : "") }) :
    h("span", { class: "v", text: unit(v, u) }), h("span", { class: "l", text: label }));
  $("node-cards").replaceChildren(card("generation tok/s", n.tokens_per_second, "tok/s", "no token counters"),
    card("power", n.power_watts, "watts", "no power reading"), card("WES penalized", n.wes_penalized, "", noWes(n)),
    card("WES raw", n.wes_raw, "", noWes(n)),
    h("div", { class: "card" }, h("span", { class: "v", text: n.liveness }), h("span", { class: "l", text: "liveness" })));
  table($("node-engines"), ["engine", "instance", "model", "health", "tok/s"], n.engines.map((e) =>
    [e.kind, e.instance, e.model, h("td", { class: e.up ? "ok" : "bad", text: e.up ? "up" : "down" }), cell(e.tokens_per_second, "tok/s", "not reported")]), "no engine");
  $("node-obs").replaceChildren(...(n.observations.length ? n.observations.map((o) => obsBox({ node: name, kind: o.kind, severity: o.severity,
    summary: o.subject, action: o.action })) : [h("p", { class: "na", text: "nothing open" })]));
  const [span, res] = RANGES[range];
  const to = Date.now();
  if (!nodeCharts.length) {
    nodeCharts = CHARTS.map((c) => {
      const box = h("div", { class: "chart", "data-metric": c.metric }, h("div", { class: "title", text: c.title }));
      $("node-charts").append(box);
      return { c, box, chart: timeChart(box, { unit: c.unit, height: 140, legend: false, series: [{ label: c.title }], window: 300 }) };
    });
  }
  await Promise.all(nodeCharts.map(async ({ c, box, chart }) => {
    let pts = [];
    try {
      const v = await get(`api/v1/fleet/history?node=${q(name)}&metric=${c.metric}&from=${to - span}&to=${to}&resolution=${res}`);
      const s = v.series.find((x) => !c.label || x.labels.some(([k, val]) => k === c.label[0] && val === c.label[1]));
      pts = s ? s.points : [];
    } catch (e) {
      box.firstChild.textContent = c.title + " — unavailable: " + e.message;
    }
    chart.set([pts.map((p) => p.ts_ms / 1000), pts.map((p) => p.value)]);
    chart.u.setScale("x", { min: (to - span) / 1000, max: to / 1000 });
    box.dataset.points = String(pts.length);
    if (!pts.length) box.firstChild.textContent = c.title + " — no stored points in this range";
    else box.firstChild.textContent = c.title;
  }));
}

function route() {
  const [want, query] = location.hash.slice(1).split("?");
  view = want === "node" ? "node" : "fleet";
  $("view-fleet").hidden = view !== "fleet";
  $("view-node").hidden = view !== "node";
  for (const a of document.querySelectorAll("nav a")) {
    if (a.getAttribute("href") === "#" + view) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (view === "node") {
    const name = new URLSearchParams(query || "").get("name") || "";
    $("node-tab").setAttribute("href", "#node?name=" + q(name));
    $("node-tab").setAttribute("aria-current", "page");
    return drawNode(name);
  }
  return Promise.resolve();
}

async function tick() {
  try {
    await refreshFleet();
    if (view === "node") await route();
  } catch (e) {
    $("state").textContent = "hub unreadable: " + e.message;
    $("state").className = "bad";
  }
}

$("model-pick").addEventListener("change", tick);
for (const b of document.querySelectorAll("[data-range]")) {
  b.addEventListener("click", () => {
    range = b.dataset.range;
    for (const x of document.querySelectorAll("[data-range]")) x.setAttribute("aria-pressed", String(x === b));
    route();
  });
}
window.addEventListener("hashchange", route);

(async () => {
  await tick();
  await refreshSparks();
  renderNodes();
  performance.mark("infermon:first-useful-paint");
  await route();
})();
setInterval(tick, 5000);
setInterval(async () => { await refreshSparks(); renderNodes(); }, 30000);
