// Time charts on uPlot (canvas), coloured from the page's CSS variables so they follow the
// light or dark scheme, and sized to their container.

import { unit } from "./fmt.js";

const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
const charts = new Set();

function axis(u) {
  return {
    stroke: css("--muted"),
    grid: { stroke: css("--line"), width: 1 },
    ticks: { stroke: css("--line"), width: 1 },
    values: u === undefined ? undefined : (_, ticks) => ticks.map((v) => unit(v, u)),
    // Wide enough for the longest label (about 7 px a character at this size).
    size: u === undefined ? 40 : (_, values) => 18 + 7 * Math.max(4, ...(values || []).map((v) => String(v).length)),
  };
}

/**
 * A chart of one or more series over time in `el`. `spec`: {unit, height, series: [{label,
 * color, width, dash}], plugins}. Data: [xs (seconds), ys…]. Returns {u, set(data)}.
 */
export function timeChart(el, spec) {
  const c = { el, spec, data: [[], ...spec.series.map(() => [])], u: null };
  c.build = () => {
    if (c.u) c.u.destroy();
    const opts = {
      width: Math.max(200, el.clientWidth - 8),
      height: spec.height || 140,
      legend: { show: spec.legend !== false },
      cursor: { drag: { x: true, y: false } },
      // A lone point still gets a sensible time axis (`window` seconds wide).
      scales: { x: { time: true, range: (_, min, max) => (max - min < (spec.window || 1) ? [max - (spec.window || 60), max] : [min, max]) } },
      axes: [axis(), axis(spec.unit)],
      series: [{ value: (_, v) => (v === null ? "" : new Date(v * 1000).toLocaleString()) }].concat(spec.series.map((s, i) => ({
        label: s.label,
        stroke: s.color || css("--c" + ((i % 4) + 1)),
        width: s.width || 1.5,
        dash: s.dash,
        spanGaps: false,
        points: { show: false },
        value: (_, v) => (v === null ? "–" : unit(v, spec.unit)),
      }))),
      plugins: spec.plugins || [],
    };
    c.u = new uPlot(opts, c.data, el);
  };
  c.set = (data, keepScale) => {
    c.data = data;
    if (c.u) c.u.setData(data, !keepScale);
  };
  c.build();
  charts.add(c);
  return c;
}

new ResizeObserver(() => {
  for (const c of charts) if (c.el.clientWidth > 0) c.u.setSize({ width: Math.max(200, c.el.clientWidth - 8), height: c.spec.height || 140 });
}).observe(document.body);

matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
  for (const c of charts) c.build();
});
