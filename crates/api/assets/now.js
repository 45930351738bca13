// The Now view: what the latest snapshot says, and live charts fed by the event stream.

import { h, absent, unit, cell, why, whyShort, table, time } from "./fmt.js";
import { timeChart } from "./chart.js";

const $ = (id) => document.getElementById(id);
const WES_WHY = {
  no_token_rate: "no token rate measured (no engine with counters)",
  idle: "engines idle: no tokens generated in the window",
  no_power: "no power reading on this node",
  non_positive_power: "power read as zero or negative",
};
const POWER = ["host.rapl", "gpu."];

/** A card: label, value with unit or "unavailable: why", optional second line. */
function card(key, label, v, u, reason, sub, d) {
  const title = absent(v) ? reason : null;
  const val = absent(v)
    ? h("span", { class: "v na", text: "unavailable" + (reason ? ": " + reason : "") })
    : h("span", { class: "v", text: unit(v, u, d) });
  return h("div", { class: "card", "data-key": key, "data-value": absent(v) ? null : v, title },
    val, h("span", { class: "l", text: label }), sub ? h("span", { class: "sub", text: sub }) : null);
}

function textCard(key, label, text, sub, na) {
  return h("div", { class: "card", "data-key": key }, h("span", { class: na ? "v na" : "v", text }),
    h("span", { class: "l", text: label }), sub ? h("span", { class: "sub", text: sub }) : null);
}

function cards(s) {
  const e = s.efficiency, x = s.host;
  const tokWhy = s.engines.length ? whyShort(s, "engine.") || "no engine reports token counters" : "no engine found";
  const powerWhy = whyShort(s, ...POWER) || "no power reading";
  const wes = e.wes.Ok;
  const therm = e.thermal.state + (e.thermal.reasons.length ? " (" + e.thermal.reasons.join(", ") + ")" : "");
  const out = [
    card("tok_s", "generation tok/s, all engines", e.generation_tokens_per_second, "tok/s", tokWhy),
    card("power", "power (" + (e.power_sources.join(", ") || "none") + ")", e.power_watts, "watts", powerWhy),
    card("tok_j", "tokens per joule", e.tokens_per_joule, "tok/J",
      absent(e.power_watts) ? powerWhy : "no tokens in the window"),
    wes
      ? textCard("wes", "WES raw / penalized", wes.raw + " / " + wes.penalized, "thermal cost " + wes.thermal_cost_percent + " %")
      : textCard("wes", "WES raw / penalized", "unavailable: " + (WES_WHY[e.wes.Err] || e.wes.Err), null, true),
    textCard("thermal", "thermal state", therm, "penalty ×" + e.thermal_penalty),
    card("cpu", "CPU busy (" + (x.cpu_count ?? "?") + " CPUs)", x.cpu_utilization_ratio, "ratio", why(s, "host.cpu")),
    card("mem_avail", "host memory available", x.memory_available_bytes, "bytes", why(s, "host.memory"),
      absent(x.memory_total_bytes) ? null : "of " + unit(x.memory_total_bytes, "bytes")),
    card("swap_used", "swap used", x.swap_used_bytes, "bytes", why(s, "host.memory"),
      absent(x.swap_total_bytes) ? null : "of " + unit(x.swap_total_bytes, "bytes") +
        (absent(x.swap_in_bytes_per_second) ? "" : ", in " + unit(x.swap_in_bytes_per_second, "bytes/s") +
          ", out " + unit(x.swap_out_bytes_per_second, "bytes/s"))),
    card("psi_mem", "memory pressure (some, 10 s)", x.pressure_memory_some_ratio, "ratio", why(s, "host.pressure")),
  ];
  for (const g of s.gpus) {
    const name = "GPU " + g.index + " " + (g.name || g.id);
    const gwhy = g.unavailable.join("; ");
    out.push(card("gpu" + g.index + "_busy", name + " busy", g.utilization_ratio, "ratio", gwhy));
    out.push(card("gpu" + g.index + "_vram", name + " VRAM used", g.vram_used_bytes, "bytes", gwhy,
      absent(g.vram_total_bytes) ? null : "of " + unit(g.vram_total_bytes, "bytes")));
    if (!absent(g.gtt_total_bytes) || !absent(g.gtt_used_bytes)) {
      out.push(card("gpu" + g.index + "_gtt", name + " GTT used", g.gtt_used_bytes, "bytes", gwhy,
        absent(g.gtt_total_bytes) ? null : "of " + unit(g.gtt_total_bytes, "bytes")));
    }
  }
  if (!s.gpus.length) out.push(textCard("gpus", "GPUs", "none found", whyShort(s, "gpu.")));
  const a = s.agent;
  out.push(card("agent", "agent CPU (one core)", a.cpu_ratio, "ratio", "not measured yet",
    "every " + a.interval_seconds + " s, RSS " + (unit(a.resident_memory_bytes, "bytes") || "unavailable")));
  $("cards").replaceChildren(...out);
}

function kvOf(x) {
  const s = x.scheduler.map((m) => m.kv_usage_ratio).filter((v) => !absent(v));
  return s.length ? s[0] : null;
}

function engines(s) {
  table($("engines"), ["engine", "model", "health", "tok/s per stream", "tok/s total", "prompt tok/s",
    "running", "waiting", "slots", "KV use", "memory (RSS)", "notes"],
  s.engines.map((x) => {
    const mwhy = x.metrics_available ? (x.counters_reset ? "counters reset this window" : "no window yet")
      : (x.metrics_reason || "metrics unavailable");
    const models = x.models ? x.models.map((m) => m.name + " " + m.state).filter(Boolean).join(", ") : "";
    return [
      x.kind + " " + x.instance,
      x.model + (models ? " (" + models + ")" : ""),
      h("td", { class: x.up ? "ok" : "bad", text: x.up ? "up" : "down: " + x.health }),
      cell(x.generation_tokens_per_second, "tok/s", mwhy),
      cell(x.generation_throughput_tokens_per_second, "tok/s", mwhy),
      cell(x.prompt_tokens_per_second, "tok/s", mwhy),
      cell(x.requests_running, "", mwhy, 0),
      cell(x.requests_waiting, "", mwhy, 0),
      absent(x.slots_total) ? cell(null, "", why(s, "engine." + x.kind + "[" + x.instance + "].slots") || "not reported") :
        h("td", { class: "num", text: x.slots_processing + " / " + x.slots_total }),
      cell(kvOf(x), "ratio", x.scheduler.length ? "not reported" : "this engine reports no KV use"),
      cell(x.memory_resident_bytes, "bytes", x.memory_unavailable.join("; ") || "no local process"),
      x.notes.join("; "),
    ];
  }), "no engine found");
}

const pct = (summary, k) => (summary ? summary[k] : null);

function latency(s) {
  table($("now-latency"), ["upstream", "model", "requests", "TTFT p50", "TTFT p99", "TPOT p50", "TPOT p99",
    "ITL p50", "ITL p99", "output tok/s", "errors"],
  s.requests.map((r) => {
    const none = r.requests ? "no completed token stream" : "no requests in the window";
    return [r.upstream, r.model, h("td", { class: "num", text: String(r.requests) }),
      cell(pct(r.ttft_ms, "p50"), "ms", none), cell(pct(r.ttft_ms, "p99"), "ms", none),
      cell(pct(r.tpot_ms, "p50"), "ms", none), cell(pct(r.tpot_ms, "p99"), "ms", none),
      cell(pct(r.itl_ms, "p50"), "ms", none), cell(pct(r.itl_ms, "p99"), "ms", none),
      cell(r.output_tokens_per_second, "tok/s"), cell(r.error_ratio, "ratio")];
  }), "no proxy runs, or no request through it yet: start the agent with --proxy LISTEN=UPSTREAM");
}

function gpus(s) {
  table($("gpus"), ["GPU", "busy", "VRAM", "GTT", "power", "temp", "clock", "thermal", "unavailable"],
    s.gpus.map((g) => {
      const w = g.unavailable.join("; ");
      return [g.vendor + " " + g.index + " " + (g.name || g.id),
        cell(g.utilization_ratio, "ratio", w), cell(g.vram_used_bytes, "bytes", w), cell(g.gtt_used_bytes, "bytes", w),
        cell(g.power_watts, "watts", w), cell(g.temperature_celsius, "celsius", w), cell(g.clock_hertz, "hertz", w),
        g.thermal ? g.thermal.state + " " + g.thermal.reasons.join(", ") : "the device gives no throttle signal", w];
    }), "no GPU: " + (why(s, "gpu.") || "none found"));
}

function sources(s) {
  table($("sources"), ["source", "reason"], s.sources.filter((x) => !x.ok).map((x) => [x.source, x.reason || ""]),
    "every source was read");
}

// Live charts: the last 150 snapshots of a few figures, as the stream delivers them.
const KEEP = 150;
const live = [];
let liveCharts = null;
const LIVE = [
  { title: "generation tok/s, all engines", unit: "tok/s", get: (s) => s.efficiency.generation_tokens_per_second, why: (s) => whyShort(s, "engine.") },
  { title: "power", unit: "watts", get: (s) => s.efficiency.power_watts, why: (s) => whyShort(s, ...POWER) },
  { title: "host memory available", unit: "bytes", get: (s) => s.host.memory_available_bytes, why: (s) => whyShort(s, "host.memory") },
  { title: "CPU busy", unit: "ratio", get: (s) => s.host.cpu_utilization_ratio, why: (s) => whyShort(s, "host.cpu") },
];

function liveChart(s) {
  if (live.length && live[live.length - 1].ts_unix_ms === s.ts_unix_ms) return;
  live.push(s);
  if (live.length > KEEP) live.shift();
  if (!liveCharts) {
    liveCharts = LIVE.map((c) => {
      const box = h("div", { class: "chart", "data-live": c.title }, h("div", { class: "title", text: c.title }));
      $("live").append(box);
      return timeChart(box, { unit: c.unit, height: 120, legend: false, series: [{ label: c.title }], window: 300 });
    });
  }
  const xs = live.map((x) => x.ts_unix_ms / 1000);
  LIVE.forEach((c, i) => {
    const ys = live.map((x) => (absent(c.get(x)) ? null : c.get(x)));
    liveCharts[i].set([xs, ys]);
    const n = ys.filter((y) => y !== null).length;
    liveCharts[i].el.dataset.points = String(n);
    liveCharts[i].el.firstChild.textContent = c.title + (n ? "" : " — unavailable: " + (c.why(s) || "not reported"));
  });
}

/** Renders a snapshot into the Now view. */
export function render(s) {
  cards(s);
  engines(s);
  latency(s);
  gpus(s);
  sources(s);
  liveChart(s);
  document.body.dataset.snapshotTs = String(s.ts_unix_ms);
  $("state").textContent = "sample of " + time(s.ts_unix_ms);
}
