// The History view: any stored series over 1 h, 24 h, 7 d or 30 d, at the resolution the
// range needs (raw points, 1-minute or 1-hour rollups), with zoom and pan.

import { h, seriesUnit, unit } from "./fmt.js";
import { get } from "./api.js";
import { timeChart } from "./chart.js";

const $ = (id) => document.getElementById(id);
const RANGES = {
  "1h": { ms: 3600e3, resolution: "raw" },
  "24h": { ms: 86400e3, resolution: "1m" },
  "7d": { ms: 7 * 86400e3, resolution: "1h" },
  "30d": { ms: 30 * 86400e3, resolution: "1h" },
};
const DEFAULT = "infermon_node_memory_available_bytes";

let range = "1h";
let end = null; // the range's end, ms; null: now
let chart = null;
let chartUnit = null;
let list = [];
let loaded = false;

const labelText = (labels) => Object.entries(labels).map(([k, v]) => k + "=" + v).join(", ");

async function loadSeries() {
  const { series } = await get("api/v1/series");
  list = series.sort((a, b) => (a.name + labelText(a.labels)).localeCompare(b.name + labelText(b.labels)));
  const pick = $("series-pick");
  pick.replaceChildren(...list.map((s, i) => {
    const u = seriesUnit(s.name);
    const l = labelText(s.labels);
    return h("option", { value: i, text: s.name + (l ? " {" + l + "}" : "") + (u ? " [" + u + "]" : "") });
  }));
  const d = list.findIndex((s) => s.name === DEFAULT);
  if (d >= 0) pick.value = String(d);
}

/** Applies `#history?metric=NAME&label=K=V&range=30d&to=MS` (a link to one chart). */
function fromLink(params) {
  const name = params.get("metric");
  if (name) {
    const labels = Object.fromEntries(params.getAll("label").map((l) => [l.split("=")[0], l.split("=").slice(1).join("=")]));
    let i = list.findIndex((s) => s.name === name && labelText(s.labels) === labelText(labels));
    if (i < 0) {
      // A stored series the latest sample does not have (any more).
      list.push({ name, labels, kind: "" });
      i = list.length - 1;
      const l = labelText(labels);
      $("series-pick").append(h("option", { value: i, text: name + (l ? " {" + l + "}" : "") + " (not in the latest sample)" }));
    }
    $("series-pick").value = String(i);
  }
  const r = params.get("range");
  if (r in RANGES) range = r;
  const to = Number(params.get("to"));
  end = params.get("to") && Number.isFinite(to) ? to : null;
  for (const b of document.querySelectorAll("[data-range]")) b.setAttribute("aria-pressed", String(b.dataset.range === range));
}

let shown = null; // what the chart holds: {s, resolution, from, to}
let refetch = null;

/** Points for `s` over [from, to] at `resolution`; the series with exactly the chosen labels. */
async function fetchPoints(s, from, to, resolution) {
  const q = new URLSearchParams({ metric: s.name, from: String(Math.round(from)), to: String(Math.round(to)), resolution });
  for (const [k, v] of Object.entries(s.labels)) q.append("label", k + "=" + v);
  const body = await get("api/v1/history?" + q);
  // A label filter matches supersets too: keep the series whose labels are exactly these.
  const want = labelText(s.labels);
  return body.series.find((x) => labelText(Object.fromEntries(x.labels)) === want) || body.series[0] || null;
}

function chartData(found) {
  const pts = found ? found.points : [];
  const data = [pts.map((p) => p.ts_ms / 1000), pts.map((p) => p.value)];
  if (found && found.resolution !== "raw") data.push(pts.map((p) => p.min), pts.map((p) => p.max));
  return data;
}

/** After a zoom into rollups, the finer points of the window shown (the store picks them). */
function finer(u) {
  clearTimeout(refetch);
  refetch = setTimeout(async () => {
    if (!shown || shown.resolution === "raw") return;
    const from = u.scales.x.min * 1000, to = u.scales.x.max * 1000;
    if (to - from > (shown.to - shown.from) / 4) return;
    let found;
    try {
      found = await fetchPoints(shown.s, from, to, "auto");
    } catch (_) {
      return;
    }
    if (!found || found.resolution === shown.resolution || found.points.length < 2) return;
    // The chart's series (mean, min, max) stay; raw points have no min and max of their own.
    const data = chartData(found);
    if (data.length === 2) data.push(data[1], data[1]);
    chart.set(data, true);
    shown = { s: shown.s, resolution: found.resolution, from, to };
    $("history-note").textContent = found.points.length + " points at " + found.resolution + " resolution in the zoomed window";
  }, 300);
}

/** Wheel zoom around the cursor, shift-drag and arrow-key pan, 0 to reset. */
function zoomPan() {
  return {
    hooks: {
      setScale: (u, key) => {
        if (key === "x") finer(u);
      },
      ready: (u) => {
        const over = u.over;
        const x = u.scales.x;
        const span = () => x.max - x.min;
        // Back to the whole range at its own resolution (after a zoom fetched finer points).
        over.addEventListener("dblclick", () => draw());
        over.addEventListener("wheel", (e) => {
          e.preventDefault();
          const at = u.posToVal(e.offsetX, "x");
          const f = e.deltaY < 0 ? 0.8 : 1.25;
          u.setScale("x", { min: at - (at - x.min) * f, max: at + (x.max - at) * f });
        }, { passive: false });
        over.addEventListener("mousedown", (e) => {
          if (!e.shiftKey) return;
          e.stopPropagation();
          const x0 = e.clientX, min = x.min, max = x.max, per = span() / over.clientWidth;
          const move = (m) => u.setScale("x", { min: min - (m.clientX - x0) * per, max: max - (m.clientX - x0) * per });
          const up = () => { document.removeEventListener("mousemove", move); document.removeEventListener("mouseup", up); };
          document.addEventListener("mousemove", move);
          document.addEventListener("mouseup", up);
        }, true);
      },
    },
  };
}

function onKey(e) {
  if (!chart) return;
  const u = chart.u, x = u.scales.x, s = x.max - x.min;
  const moves = { ArrowLeft: -0.2, ArrowRight: 0.2 };
  if (e.key in moves) u.setScale("x", { min: x.min + s * moves[e.key], max: x.max + s * moves[e.key] });
  else if (e.key === "+" || e.key === "=") u.setScale("x", { min: x.min + s * 0.1, max: x.max - s * 0.1 });
  else if (e.key === "-") u.setScale("x", { min: x.min - s * 0.125, max: x.max + s * 0.125 });
  else if (e.key === "0") draw();
  else return;
  e.preventDefault();
}

/** Fetches and draws the chosen series over the chosen range; records the time it took. */
export async function draw() {
  const s = list[Number($("series-pick").value)];
  if (!s) return;
  const r = RANGES[range];
  const t0 = performance.now();
  const to = end ?? Date.now();
  const box = $("history-chart");
  let found;
  try {
    found = await fetchPoints(s, to - r.ms, to, r.resolution);
  } catch (e) {
    $("history-note").textContent = "history unavailable: " + e.message;
    box.dataset.points = "0";
    return;
  }
  const pts = found ? found.points : [];
  const u = seriesUnit(s.name);
  const data = chartData(found);
  const rollup = data.length > 2;
  if (!chart || chartUnit !== u + rollup) {
    box.replaceChildren();
    const series = [{ label: rollup ? "mean" : "value", width: 2 }];
    if (rollup) series.push({ label: "min", width: 1, dash: [4, 4] }, { label: "max", width: 1, dash: [4, 4] });
    chart = timeChart(box, { unit: u, height: 320, series, plugins: [zoomPan()] });
    chartUnit = u + rollup;
  }
  shown = null;
  chart.set(data);
  chart.u.setScale("x", { min: (to - r.ms) / 1000, max: to / 1000 });
  shown = { s, resolution: found ? found.resolution : "raw", from: to - r.ms, to };
  box.dataset.points = String(pts.length);
  box.dataset.resolution = found ? found.resolution : "";
  box.setAttribute("aria-label", s.name + " over " + range + ": " + pts.length + " points");
  const ms = performance.now() - t0;
  performance.measure("infermon:history-" + range, { start: t0, end: t0 + ms });
  const last = pts.length ? unit(pts[pts.length - 1].value, u) : "";
  $("history-note").textContent = pts.length
    ? pts.length + " points at " + found.resolution + " resolution, latest " + last + "; fetched and drawn in " + ms.toFixed(0) + " ms"
    : "no stored points in this range";
}

/** Sets the range and redraws. */
export function setRange(r) {
  range = r;
  for (const b of document.querySelectorAll("[data-range]")) b.setAttribute("aria-pressed", String(b.dataset.range === r));
  return draw();
}

/** First showing: list the series, then draw. `params`: the link's query, if any. */
export async function show(params) {
  if (!loaded) {
    loaded = true;
    try {
      await loadSeries();
    } catch (e) {
      loaded = false;
      $("history-note").textContent = "series unavailable: " + e.message;
      return;
    }
    $("series-pick").addEventListener("change", () => { end = null; draw(); });
    for (const b of document.querySelectorAll("[data-range]")) b.addEventListener("click", () => { end = null; setRange(b.dataset.range); });
    $("history-chart").addEventListener("keydown", onKey);
  }
  if (params) fromLink(params);
  await draw();
}
