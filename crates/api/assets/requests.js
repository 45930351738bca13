// The Requests view: requests measured by the proxy, newest first, each with a small chart of
// its inter-token gaps (their summary: min, p50, p90, p99, max).

import { h, cell, table, time } from "./fmt.js";
import { get } from "./api.js";

const $ = (id) => document.getElementById(id);
const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

/** A 120×18 strip on a shared scale: min–max whisker, p50–p90 box, p99 tick, p50 dot. */
function gapChart(itl, top) {
  const w = 120, x = (v) => 2 + (Math.min(v, top) / top) * (w - 4);
  const s = svg("svg", { class: "gaps", width: w, height: 18, viewBox: "0 0 " + w + " 18", role: "img",
    "aria-label": "inter-token gaps: min " + itl.min.toFixed(1) + ", p50 " + itl.p50.toFixed(1) + ", p99 " + itl.p99.toFixed(1) + ", max " + itl.max.toFixed(1) + " ms" });
  s.append(
    svg("line", { x1: x(itl.min), x2: x(itl.max), y1: 9, y2: 9 }),
    svg("rect", { x: x(itl.p50), y: 4, width: Math.max(1, x(itl.p90) - x(itl.p50)), height: 10 }),
    svg("line", { x1: x(itl.p99), x2: x(itl.p99), y1: 3, y2: 15 }),
    svg("circle", { cx: x(itl.p50), cy: 9, r: 2.5 }),
  );
  const t = svg("title", {});
  t.textContent = "ITL ms: min " + itl.min.toFixed(1) + " · p50 " + itl.p50.toFixed(1) + " · p90 " + itl.p90.toFixed(1) + " · p99 " + itl.p99.toFixed(1) + " · max " + itl.max.toFixed(1);
  s.append(t);
  return s;
}

/** Reloads the newest 100 requests. */
export async function show() {
  let rs;
  try {
    ({ requests: rs } = await get("api/v1/requests?limit=100"));
  } catch (e) {
    table($("requests"), ["requests"], [["unavailable: " + e.message]]);
    return;
  }
  const top = Math.max(1, ...rs.filter((r) => r.itl_ms).map((r) => r.itl_ms.max));
  table($("requests"), ["time", "model", "API", "status", "outcome", "TTFT", "TPOT", "E2E", "tokens in / out", "inter-token gaps (shared scale, max " + top.toFixed(0) + " ms)"],
    rs.map((r) => [time(r.ts_unix_ms), r.model, r.api + (r.stream ? " (stream)" : ""),
      h("td", { class: r.status >= 400 ? "bad num" : "num", text: String(r.status) }),
      h("td", { class: r.outcome === "ok" ? "" : "bad", text: r.outcome + (r.error ? ": " + r.error : "") }),
      cell(r.ttft_ms, "ms", "no token"), cell(r.tpot_ms, "ms", "fewer than 2 tokens"), cell(r.e2e_ms, "ms"),
      h("td", { class: "num", text: (r.prompt_tokens ?? "?") + " / " + (r.completion_tokens ?? "?") }),
      r.itl_ms ? h("td", {}, gapChart(r.itl_ms, top)) : h("td", { class: "na", text: "no gaps: fewer than 2 token chunks" })]),
    "no request measured yet: send requests through a proxy (agent --proxy LISTEN=UPSTREAM)");
}
