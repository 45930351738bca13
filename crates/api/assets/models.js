// The Models and Memory views, from the snapshot: per-model request figures measured by the
// proxy, the engines' own latency histograms, and the fit estimate against measured memory.

import { h, unit, cell, table } from "./fmt.js";

const $ = (id) => document.getElementById(id);
const p = (summary, k) => (summary ? summary[k] : null);

function models(s) {
  table($("models"), ["model (upstream)", "requests (ok / errors / cancelled)", "error rate",
    "output tok/s", "req/s", "goodput req/s", "SLO met", "TTFT p50 / p90 / p99", "TPOT p50 / p90 / p99",
    "ITL p50 / p99", "E2E p50 / p99"],
  s.requests.map((r) => {
    const none = r.requests ? "no completed token stream" : "no requests in the window";
    const trio = (sm, ks) => (sm ? h("td", { class: "num", text: ks.map((k) => unit(sm[k], "ms")).join(" / ") }) : cell(null, "ms", none));
    const slo = "no SLO set";
    return [h("td", {}, r.model, h("span", { class: "sub", text: r.upstream + ", last " + unit(r.window_seconds, "s", 0) })),
      h("td", { class: "num", text: r.requests + " (" + r.completed + " / " + r.errors + " / " + r.cancelled + ")" }),
      cell(r.error_ratio, "ratio"), cell(r.output_tokens_per_second, "tok/s"), cell(r.requests_per_second, "req/s"),
      cell(r.goodput_requests_per_second, "req/s", slo), cell(r.slo_attainment_ratio, "ratio", slo),
      trio(r.ttft_ms, ["p50", "p90", "p99"]), trio(r.tpot_ms, ["p50", "p90", "p99"]),
      trio(r.itl_ms, ["p50", "p99"]), trio(r.e2e_ms, ["p50", "p99"])];
  }), "no request measured in the window: send requests through a proxy (agent --proxy LISTEN=UPSTREAM)");
  const rows = [];
  for (const x of s.engines) {
    for (const l of x.latency) {
      rows.push([x.kind + " " + x.instance, l.model, l.metric, h("td", { class: "num", text: String(l.count) }),
        cell(l.p50_seconds, "seconds"), cell(l.p90_seconds, "seconds"), cell(l.p99_seconds, "seconds"),
        cell(l.mean_seconds, "seconds")]);
    }
  }
  table($("engine-latency"), ["engine", "model", "figure", "observations", "p50", "p90", "p99", "mean"], rows,
    "no engine reports latency histograms (llama.cpp does not; its requests are measured by the proxy above)");
}

function memory(s) {
  table($("memory"), ["engine", "model", "estimated (fit)", "measured (RSS)", "error", "", "PSS", "unavailable"],
    s.engines.map((x) => {
      const c = x.memory_estimate;
      const w = x.memory_unavailable.join("; ") || "no local process or model file";
      let bars = "";
      if (c) {
        const top = Math.max(c.estimated_bytes, c.measured_bytes) || 1;
        bars = h("td", {},
          h("div", { title: "estimated" }, h("span", { class: "bar", "data-w": c.estimated_bytes / top })),
          h("div", { title: "measured" }, h("span", { class: "bar", "data-w": c.measured_bytes / top })));
      }
      return [x.kind + " " + x.instance, x.model,
        cell(c ? c.estimated_bytes : null, "bytes", w), cell(c ? c.measured_bytes : null, "bytes", w),
        c ? h("td", { class: "num", text: (c.error_bytes >= 0 ? "+" : "") + unit(c.error_bytes, "bytes") + " (" + c.error_percent.toFixed(1) + " %)" })
          : cell(null, "", w),
        bars, cell(x.memory_proportional_bytes, "bytes", w), x.memory_unavailable.join("; ")];
    }), "no engine found");
  // Bar widths are set from script: the page's policy allows no inline style attributes.
  for (const b of document.querySelectorAll("#memory .bar")) b.style.width = (Number(b.dataset.w) * 8).toFixed(2) + "rem";
}

/** Renders a snapshot into the Models and Memory views. */
export function render(s) {
  models(s);
  memory(s);
}
