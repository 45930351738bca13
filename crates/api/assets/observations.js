// The Observations view: open and recent diagnosis, with evidence and action.

import { h, dateTime } from "./fmt.js";
import { get } from "./api.js";

const $ = (id) => document.getElementById(id);
const num = (v) => (v === null || v === undefined ? "–" : Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3));

function item(o) {
  const open = o.end_s === null || o.end_s === undefined;
  const when = dateTime(o.start_s * 1000) + (open ? " – open" : " – " + dateTime(o.end_s * 1000));
  const figures = o.evidence.figures.map((f) => h("li", { text: f.name + ": " + num(f.now) + (f.baseline === null || f.baseline === undefined ? "" : " (baseline " + num(f.baseline) + ")") }));
  return h("article", { class: "obs " + o.severity, "data-open": open },
    h("div", { class: "head", text: (open ? "● " : "○ ") + o.severity + " · " + o.kind + " · " + o.subject }),
    h("div", { class: "note", text: when + (o.evidence.context ? " · " + o.evidence.context : "") }),
    figures.length ? h("ul", {}, figures) : null,
    o.cause ? h("div", { text: "cause: " + o.cause.kind + " on " + o.cause.subject }) : null,
    h("div", {}, h("b", { text: "action: " }), o.action));
}

/** Reloads open and last-24-hour observations, open ones first. */
export async function show() {
  let obs;
  try {
    ({ observations: obs } = await get("api/v1/observations?since=-24h&limit=200"));
  } catch (e) {
    $("observations").replaceChildren(h("p", { class: "na", text: "unavailable: " + e.message }));
    return;
  }
  obs.sort((a, b) => (a.end_s == null) === (b.end_s == null) ? b.start_s - a.start_s : a.end_s == null ? -1 : 1);
  $("observations").replaceChildren(...(obs.length ? obs.map(item)
    : [h("p", { class: "note", text: "nothing observed in the last 24 hours" })]));
}
