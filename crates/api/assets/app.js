// Wiring: the first snapshot, the event stream, and the views behind the tabs (#now, …).

import { get, stream } from "./api.js";
import * as now from "./now.js";
import * as models from "./models.js";
import * as history from "./history.js";
import * as requests from "./requests.js";
import * as observations from "./observations.js";
import * as bench from "./bench.js";

const state = document.getElementById("state");
const VIEWS = ["now", "history", "models", "requests", "memory", "observations", "bench"];
const ON_SHOW = { history: history.show, requests: requests.show, observations: observations.show, bench: bench.show };
let view = "now";
let first = true;

function render(s) {
  now.render(s);
  models.render(s);
  if (first) {
    first = false;
    performance.mark("infermon:first-useful-paint");
  }
}

function show() {
  const [want, query] = location.hash.slice(1).split("?");
  view = VIEWS.includes(want) ? want : "now";
  for (const v of VIEWS) document.getElementById("view-" + v).hidden = v !== view;
  for (const a of document.querySelectorAll("nav a")) {
    if (a.getAttribute("href") === "#" + view) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (ON_SHOW[view]) ON_SHOW[view](query === undefined ? undefined : new URLSearchParams(query));
}

window.addEventListener("hashchange", show);
show();

// Views that list stored things refresh while shown.
setInterval(() => {
  if (view === "requests") requests.show();
}, 5000);

get("api/v1/snapshot").then(render).catch((e) => {
  state.textContent = "no snapshot: " + e.message;
  state.className = "bad";
});

stream((name, data) => {
  if (name === "snapshot") render(data);
  else if (name === "observation" && view === "observations") observations.show();
}, (text, ok) => {
  state.className = ok ? "" : "bad";
  if (!ok) state.textContent = text;
});
