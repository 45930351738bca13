// Formatting only: units and "unavailable: why". No figure is computed here; every number
// comes from the agent as it is.

/** Element helper: h("td", {class: "num"}, "text", child…). */
export function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const k of kids.flat()) if (k !== null && k !== undefined) el.append(k);
  return el;
}

export const absent = (v) => v === null || v === undefined || (typeof v === "number" && !Number.isFinite(v));

function digits(v, d) {
  const a = Math.abs(v);
  if (d !== undefined) return v.toFixed(d);
  if (v === 0) return "0";
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

const BYTES = [["TiB", 2 ** 40], ["GiB", 2 ** 30], ["MiB", 2 ** 20], ["KiB", 2 ** 10]];

/** A value with its unit (the unit names of the series: bytes, seconds, ratio, …). */
export function unit(v, u, d) {
  if (absent(v)) return "";
  switch (u) {
    case "bytes": {
      for (const [n, s] of BYTES) if (Math.abs(v) >= s) return digits(v / s, d) + " " + n;
      return v.toFixed(0) + " B";
    }
    case "bytes/s": return unit(v, "bytes", d) + "/s";
    case "ratio": return digits(v * 100, d === undefined ? 1 : d) + " %";
    case "seconds": return Math.abs(v) < 1 ? digits(v * 1000, d) + " ms" : digits(v, d) + " s";
    case "ms": return digits(v, d) + " ms";
    case "watts": return digits(v, d) + " W";
    case "joules": return digits(v, d) + " J";
    case "celsius": return digits(v, d === undefined ? 0 : d) + " °C";
    case "hertz": return Math.abs(v) >= 1e9 ? digits(v / 1e9, d) + " GHz" : digits(v / 1e6, d === undefined ? 0 : d) + " MHz";
    case "tok/s": return digits(v, d) + " tok/s";
    case "req/s": return digits(v, d) + " req/s";
    case "tok/J": return digits(v, d) + " tok/J";
    case "": return digits(v, d);
    default: return digits(v, d) + " " + u;
  }
}

/** The unit of a series from its name's suffix (Prometheus naming). */
export function seriesUnit(name) {
  const rules = [
    ["_bytes_per_second", "bytes/s"], ["_tokens_per_second", "tok/s"], ["_requests_per_second", "req/s"],
    ["_goodput_per_second", "req/s"], ["_per_second", "/s"], ["_bytes", "bytes"], ["_seconds_total", "s"],
    ["_seconds", "seconds"], ["_ratio", "ratio"], ["_watts", "watts"], ["_joules_total", "joules"],
    ["_celsius", "celsius"], ["_hertz", "hertz"], ["_tokens_per_joule", "tok/J"], ["_tokens", "tokens"],
  ];
  for (const [suffix, u] of rules) if (name.endsWith(suffix)) return u;
  return "";
}

/** A table cell: the value, or "unavailable: why". */
export function cell(v, u, why, d) {
  if (absent(v)) return h("td", { class: "na", text: "unavailable" + (why ? ": " + why : "") });
  return h("td", { class: "num", "data-value": v, text: unit(v, u, d) });
}

/** Whether a source is named by `p`: `gpu.` is a prefix, `host.cpu` only itself and its parts. */
const names = (source, p) => (p.endsWith(".") ? source.startsWith(p) : source === p || source.startsWith(p + ".") || source.startsWith(p + "["));

/** Reasons of the sources that could not be read, among those `prefixes` name. */
export function why(snap, ...prefixes) {
  const rs = snap.sources
    .filter((s) => !s.ok && prefixes.some((p) => names(s.source, p)))
    .map((s) => s.source + ": " + (s.reason || "not read"));
  return rs.join("; ");
}

/** The same, short: which sources could not be read (their reasons are in the Sources table). */
export function whyShort(snap, ...prefixes) {
  const bad = snap.sources.filter((s) => !s.ok && prefixes.some((p) => names(s.source, p))).map((s) => s.source);
  return bad.length ? "not read: " + bad.join(", ") + " (see Sources)" : "";
}

export const time = (ms) => new Date(ms).toLocaleTimeString();
export const dateTime = (ms) => new Date(ms).toLocaleString();

/** Replaces a table's rows: `head` names, `rows` arrays of cells (nodes or text). */
export function table(el, head, rows, empty) {
  el.replaceChildren();
  el.append(h("thead", {}, h("tr", {}, head.map((t) => h("th", { scope: "col", text: t })))));
  const body = h("tbody", {});
  if (!rows.length && empty) body.append(h("tr", {}, h("td", { class: "na", colspan: head.length, text: empty })));
  for (const r of rows) body.append(h("tr", {}, r.map((c) => (c instanceof Node ? c : h("td", { text: c })))));
  el.append(body);
}
