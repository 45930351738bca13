// The Requests view: requests measured by the proxy, newest first, each with a small chart of
// every inter-token gap in order (a stall shows where it happened), on a scale shared by the
// rows; its summary (min, p50, p90, p99, max) is the chart's title.

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

/** Every gap in order, 160×20, on the shared scale `top`: at most one point per pixel column
 * (its largest gap, so no stall is averaged away); the largest gap is marked. */
function gapLine(gaps, itl, top, ts) {
  const w = 160, hgt = 20, cols = Math.min(gaps.length, w - 4);
  const per = gaps.length / cols, pts = [];
  let peak = [0, 0];
  for (let c = 0; c < cols; c++) {
    let g = 0;
    for (let i = Math.floor(c * per); i < Math.max(Math.floor((c + 1) * per), Math.floor(c * per) + 1); i++) g = Math.max(g, gaps[i]);
    const x = 2 + (cols === 1 ? 0 : (c / (cols - 1)) * (w - 4)), y = hgt - 2 - (Math.min(g, top) / top) * (hgt - 4);
    pts.push(x.toFixed(1) + "," + y.toFixed(1));
    if (g > peak[0]) peak = [g, pts.length - 1];
  }
  const s = svg("svg", { class: "gapline", width: w, height: hgt, viewBox: "0 0 " + w + " " + hgt, role: "img",
    "data-gaps": gaps.length, "data-ts": ts, "aria-label": gaps.length + " inter-token gaps, largest " + peak[0].toFixed(1) + " ms" });
  const [px, py] = pts[peak[1]].split(",");
  s.append(svg("polyline", { points: pts.join(" ") }), svg("circle", { cx: px, cy: py, r: 2 }));
  const t = svg("title", {});
  t.textContent = gaps.length + " gaps, ms: min " + itl.min.toFixed(1) + " · p50 " + itl.p50.toFixed(1) + " · p90 " + itl.p90.toFixed(1)
    + " · p99 " + itl.p99.toFixed(1) + " · max " + itl.max.toFixed(1);
  s.append(t);
  return s;
}

/** Reloads the newest 100 requests, each with every gap. */
export async function show() {
  let rs;
  try {
    ({ requests: rs } = await get("api/v1/requests?limit=100&gaps=true"));
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
      !r.itl_ms ? h("td", { class: "na", text: "no gaps: fewer than 2 token chunks" })
        : h("td", {}, r.itl_gaps_ms && r.itl_gaps_ms.length ? gapLine(r.itl_gaps_ms, r.itl_ms, top, r.ts_unix_ms) : gapChart(r.itl_ms, top))]),
    "no request measured yet: send requests through a proxy (agent --proxy LISTEN=UPSTREAM)");
}
