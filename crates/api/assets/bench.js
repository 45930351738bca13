// The Bench view: the reports saved in the agent's reports folder (`infermon bench --save`),
// newest first, and one of them opened (#bench?name=NAME.json): its totals, each
// configuration, and the sweep's models. Every figure is the report's own.

import { h, cell, table, dateTime, unit } from "./fmt.js";
import { get } from "./api.js";

const $ = (id) => document.getElementById(id);
const pair = (s, a, b) => (s ? unit(s[a], "ms") + " / " + unit(s[b], "ms") : null);
const txt = (v, why) => (v === null ? cell(null, "", why) : h("td", { class: "num", text: v }));

async function list() {
  const r = await get("api/v1/reports");
  $("bench-dir").textContent = r.dir
    ? "Saved in " + r.dir + " by infermon bench --save (or any report JSON put there)."
    : "This agent has no reports folder.";
  table($("bench-list"), ["started", "kind", "model", "URL", "status", "requests", "output tok/s", "TTFT p50", "TPOT mean", "report"],
    r.reports.map((e) => {
      const open = h("td", {}, h("a", { href: "#bench?name=" + encodeURIComponent(e.name), text: e.name }));
      if (e.error) return [cell(null, "", e.error), "", "", "", "", "", "", "", "", open];
      return [e.started_unix_ms === null ? "" : dateTime(e.started_unix_ms), e.kind + (e.sweep_points === null ? "" : " (" + e.sweep_points + " models)"),
        e.model || "", e.url || "", e.status || "", txt(e.requests_completed === null ? null : String(e.requests_completed), "not recorded"),
        cell(e.output_tokens_per_second, "tok/s", "no completed request"), cell(e.ttft_p50_ms, "ms", "no token stream"),
        cell(e.tpot_mean_ms, "ms", "no token stream"), open];
    }), "no saved reports: run infermon bench --save (it writes into the folder above)");
}

function figures(f) {
  return [String(f.requests_completed) + " / " + f.requests_failed, cell(f.output_tokens_per_second, "tok/s", "no completed request"),
    cell(f.requests_per_second, "req/s", "no completed request"), cell(f.goodput_requests_per_second, "req/s", "no SLO set"),
    txt(pair(f.ttft_ms, "p50", "p99"), "no token stream"), txt(pair(f.tpot_ms, "p50", "p99"), "no token stream"),
    txt(pair(f.itl_ms, "p50", "p99"), "no token stream"), txt(pair(f.e2e_ms, "p50", "p99"), "no completed request")];
}

const HEAD = ["completed / failed", "output tok/s", "req/s", "goodput req/s", "TTFT p50 / p99", "TPOT p50 / p99", "ITL p50 / p99", "E2E p50 / p99"];

async function open(name) {
  const r = await get("api/v1/reports/" + encodeURIComponent(name));
  $("bench-title").textContent = name + ": " + (r.target.model || "model not named") + " at " + r.target.url;
  $("bench-about").textContent = (r.sweep ? "sweep" : r.settings.profile) + ", " + r.status
    + (r.aborted ? " (stopped: " + r.aborted + ")" : "") + ", started " + dateTime(r.started_unix_ms)
    + ", " + unit(r.duration_s, "s", 1) + ", " + r.settings.requests + " requests per configuration, max_tokens "
    + r.settings.max_tokens + ", infermon " + r.infermon_version + ". The full report with plots is "
    + name.replace(/\.json$/, ".html") + " beside it.";
  table($("bench-totals"), ["", ...HEAD], [["all configurations", ...figures(r)]]);
  const top = Math.max(...r.configs.map((c) => c.output_tokens_per_second || 0)) || 1;
  table($("bench-configs"), ["configuration", ...HEAD, ""], r.configs.map((c) => [c.label, ...figures(c),
    h("td", {}, h("span", { class: "bar", "data-w": (c.output_tokens_per_second || 0) / top, title: "output tok/s" }))]),
  "no configuration ran");
  for (const b of document.querySelectorAll("#bench-configs .bar")) b.style.width = (Number(b.dataset.w) * 8).toFixed(2) + "rem";
  const points = r.sweep ? r.sweep.points : [];
  $("bench-sweep").hidden = !r.sweep;
  table($("bench-sweep"), ["model", "quant", "size", "bits/weight", "output tok/s", "TPOT mean", "perplexity", "why missing"],
    points.map((p) => [p.model || p.file || "", p.quant, cell(p.size_bytes, "bytes", "unknown"), cell(p.bits_per_weight, "", "unknown"),
      cell(p.tokens_per_second, "tok/s", "not measured"), cell(p.tpot_ms, "ms", "not measured"),
      txt(p.perplexity === null ? null : p.perplexity.toFixed(2) + (p.perplexity_stderr === null ? "" : " ± " + p.perplexity_stderr.toFixed(2)), "not measured"),
      [p.error, p.perplexity_error].filter(Boolean).join("; ")]), "no models");
}

/** Shows the list, or one report when the hash names it. */
export function show(query) {
  const name = query && query.get("name");
  $("bench-one").hidden = !name;
  $("bench-all").hidden = Boolean(name);
  const done = name ? open(name) : list();
  done.then(() => { $("bench-error").textContent = ""; })
    .catch((e) => { $("bench-error").textContent = (name ? name + ": " : "") + e.message; });
}
