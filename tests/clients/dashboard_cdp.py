"""Drives the dashboard in headless Chromium over the DevTools protocol, as a person would.

Usage: dashboard_cdp.py CHROMIUM AGENT_URL OUT_DIR
       dashboard_cdp.py --bench CHROMIUM AGENT_URL RUNS HISTORY_LINK
       dashboard_cdp.py --observations CHROMIUM AGENT_URL OUT_DIR
       dashboard_cdp.py --reports CHROMIUM AGENT_URL NAME OUT_DIR
       dashboard_cdp.py --hub CHROMIUM HUB_URL NODE OUT_DIR

With --hub it opens the hub's page, reads the node table and the leaderboard as shown, matches
NODE's tok/s cell with the hub's API for the same sample, opens NODE's view and counts the
points of its charts, and takes screenshots (light and dark, laptop and phone).

With --observations it opens the Observations view, waits for an open observation, takes a
screenshot and reports what the view shows. With --reports it opens the Bench view, reads
the row of the saved report NAME as shown, opens the report and reads its totals and
configuration rows, with a screenshot of each. With --bench it only measures, RUNS times each with the browser cache off: the first useful
paint (the page's `infermon:first-useful-paint` mark, from navigation start) and the fetch
and draw of the chart that HISTORY_LINK (e.g. `#history?metric=M&range=30d&to=MS`) opens
(its `infermon:history-RANGE` measure), and prints their medians and maxima as JSON.

Chromium is started with --remote-debugging-pipe (the protocol over file descriptors 3 and 4,
messages ended by NUL), so nothing but the standard library is needed. The script opens the
agent's page, checks what a person would see against the agent's own API, records every
network request and console message, takes screenshots (light and dark, laptop and phone
width) into OUT_DIR, and prints one JSON object with what it found on its last line. It fails
(exit 1) only on its own errors; the Rust test judges the findings.
"""

import fcntl
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import base64


class Browser:
    def __init__(self, exe):
        self.profile = tempfile.mkdtemp(prefix="infermon-chromium-")
        r, self.to_child = os.pipe()
        self.from_child, w = os.pipe()
        # Moved above 3 and 4, where the child must find them.
        to_child_r = fcntl.fcntl(r, fcntl.F_DUPFD, 10)
        from_child_w = fcntl.fcntl(w, fcntl.F_DUPFD, 10)
        os.close(r)
        os.close(w)

        def fds():
            os.dup2(to_child_r, 3)
            os.dup2(from_child_w, 4)

        self.proc = subprocess.Popen(
            [exe, "--headless=new", "--remote-debugging-pipe", "--no-first-run",
             "--no-default-browser-check", "--disable-gpu", "--no-sandbox",
             "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--disable-extensions", "--metrics-recording-only",
             "--user-data-dir=" + self.profile, "about:blank"],
            pass_fds=(3, 4), preexec_fn=fds,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_child_r)
        os.close(from_child_w)
        self.buf = b""
        self.next_id = 0
        self.events = []

    def close(self):
        try:
            self.send("Browser.close")
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def _read(self):
        while b"\0" not in self.buf:
            chunk = os.read(self.from_child, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method, params=None, session=None):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.to_child, json.dumps(msg).encode() + b"\0")
        while True:
            m = self._read()
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)


class Page:
    def __init__(self, browser, width, height, mobile, dark):
        self.b = browser
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.s = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.send(domain + ".enable")
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})
        self.send("Emulation.setEmulatedMedia",
                  {"features": [{"name": "prefers-color-scheme", "value": "dark" if dark else "light"}]})

    def send(self, method, params=None):
        return self.b.send(method, params, self.s)

    def eval(self, expr):
        r = self.send("Runtime.evaluate", {"expression": expr, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in r:
            raise RuntimeError(f"evaluate {expr!r}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait(self, expr, limit):
        end = time.time() + limit
        while time.time() < end:
            v = self.eval(expr)
            if v:
                return v
            time.sleep(0.1)
        return None

    def screenshot(self, path):
        # The whole page, not just the viewport.
        h = self.eval("Math.ceil(document.documentElement.scrollHeight)")
        w = self.eval("Math.ceil(document.documentElement.scrollWidth)")
        data = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                      "clip": {"x": 0, "y": 0, "width": w, "height": h, "scale": 1}})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))


def api(agent, path):
    with urllib.request.urlopen(agent + path, timeout=10) as r:
        return json.loads(r.read())


def card(page, key):
    """(snapshot time, value, text) of a Now card as the page shows it."""
    return page.eval(
        "(() => { const c = document.querySelector('[data-key=%s]'); if (!c) return null;"
        " return [Number(document.body.dataset.snapshotTs), c.dataset.value === undefined ? null :"
        " Number(c.dataset.value), c.querySelector('.v').textContent]; })()" % json.dumps(key))


def main():
    exe, agent, out = sys.argv[1], sys.argv[2].rstrip("/"), sys.argv[3]
    os.makedirs(out, exist_ok=True)
    found = {"errors": [], "requests": [], "screenshots": []}
    b = Browser(exe)
    try:
        page = Page(b, 1366, 900, False, False)
        page.send("Page.navigate", {"url": agent + "/"})
        found["loaded"] = bool(page.wait("document.body && document.body.dataset.snapshotTs", 15))
        found["first_useful_paint_ms"] = page.eval(
            "(performance.getEntriesByName('infermon:first-useful-paint')[0] || {}).startTime ?? null")
        found["title"] = page.eval("document.title")

        # A live value equals the API's for the same sample, and the page follows the samples.
        interval = api(agent, "/api/v1/snapshot")["agent"]["interval_seconds"]
        found["interval_seconds"] = interval
        matched = None
        end = time.time() + 4 * interval + 5
        while time.time() < end and matched is None:
            before = card(page, "mem_avail")
            snap = api(agent, "/api/v1/snapshot")
            after = card(page, "mem_avail")
            if before and after and before[0] == after[0] == snap["ts_unix_ms"]:
                matched = {"ts": snap["ts_unix_ms"], "page": after[1], "page_text": after[2],
                           "api": snap["host"]["memory_available_bytes"]}
            time.sleep(0.2)
        found["live_match"] = matched
        t0 = card(page, "mem_avail")
        start = time.time()
        later = None
        while time.time() - start < 2 * interval + 2:
            c = card(page, "mem_avail")
            if c and t0 and c[0] != t0[0]:
                later = c
                break
            time.sleep(0.1)
        found["live_changed"] = {"from": t0, "to": later, "after_s": round(time.time() - start, 2)}
        found["tok_s_card"] = card(page, "tok_s")
        found["live_chart_points"] = page.eval(
            "[...document.querySelectorAll('[data-live]')].map(e => Number(e.dataset.points || 0))")
        page.screenshot(os.path.join(out, "now-light-desktop.png"))
        found["screenshots"].append("now-light-desktop.png")

        # History: the default series over 1 h draws stored points.
        page.eval("location.hash = '#history'")
        page.wait("document.getElementById('history-chart').dataset.points !== undefined", 10)
        found["history_points"] = int(page.eval("document.getElementById('history-chart').dataset.points") or 0)
        found["history_canvas"] = page.eval("!!document.querySelector('#history-chart canvas')")
        page.screenshot(os.path.join(out, "history-light-desktop.png"))
        found["screenshots"].append("history-light-desktop.png")
        page.eval("document.getElementById('history-chart').dataset.points = ''; null")
        page.eval("document.querySelector('[data-range=\"30d\"]').click()")
        page.wait("document.getElementById('history-chart').dataset.points !== ''", 15)
        found["history_30d_ms"] = page.eval(
            "(performance.getEntriesByName('infermon:history-30d').slice(-1)[0] || {}).duration ?? null")
        found["history_30d_points"] = int(page.eval("document.getElementById('history-chart').dataset.points") or 0)

        for view in ("models", "requests", "memory", "observations", "bench"):
            page.eval(f"location.hash = '#{view}'")
            time.sleep(0.8)
            page.screenshot(os.path.join(out, f"{view}-light-desktop.png"))
            found["screenshots"].append(f"{view}-light-desktop.png")
        found["request_rows"] = page.eval("document.querySelectorAll('#requests tbody tr svg').length")
        page.eval("location.hash = '#requests'")
        page.wait("document.querySelectorAll('#requests svg.gapline').length", 10)
        found["gap_lines"] = page.eval("[...document.querySelectorAll('#requests svg.gapline')].map(s =>"
                                       " ({ts: Number(s.dataset.ts), gaps: Number(s.dataset.gaps),"
                                       " points: s.querySelector('polyline').getAttribute('points').split(' ').length}))")
        found["keyboard_tabs"] = page.eval("[...document.querySelectorAll('nav a')].every(a => a.tabIndex >= 0)")

        for name, (w, hgt, mobile, dark) in {
            "now-dark-desktop": (1366, 900, False, True),
            "now-light-phone": (390, 844, True, False),
            "now-dark-phone": (390, 844, True, True),
            "history-dark-phone": (390, 844, True, True),
        }.items():
            p = Page(b, w, hgt, mobile, dark)
            view = name.split("-")[0]
            p.send("Page.navigate", {"url": agent + "/#" + view})
            p.wait("document.body && document.body.dataset.snapshotTs", 15)
            if view == "history":
                p.wait("document.getElementById('history-chart').dataset.points !== undefined", 10)
            time.sleep(0.5)
            found[name + "_overflow_px"] = p.eval(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth")
            p.screenshot(os.path.join(out, name + ".png"))
            found["screenshots"].append(name + ".png")

        collect(b, found)
    finally:
        b.close()
    print(json.dumps(found))


def collect(b, found):
    """Requests, console errors, exceptions and failed loads the browser reported."""
    for e in b.events:
        m, p = e.get("method"), e.get("params", {})
        if m == "Network.requestWillBeSent":
            found["requests"].append(p["request"]["url"])
        elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            found["errors"].append("console: " + " ".join(str(a.get("value", a.get("description"))) for a in p.get("args", [])))
        elif m == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            found["errors"].append("exception: " + (d.get("exception", {}).get("description") or d.get("text", "")))
        elif m == "Log.entryAdded" and p["entry"]["level"] == "error":
            found["errors"].append("log: " + p["entry"]["text"] + " " + p["entry"].get("url", ""))
        elif m == "Network.loadingFailed" and not p.get("canceled"):
            found["errors"].append("network: " + p.get("errorText", ""))


def hub(exe, url, node, out):
    os.makedirs(out, exist_ok=True)
    found = {"errors": [], "requests": [], "screenshots": []}
    rows_js = ("[...document.querySelectorAll('#nodes tbody tr')].map(r => { const c = r.children;"
               " if (c.length < 10) return null; return {node: c[0].textContent, liveness: c[1].dataset.liveness,"
               " ts: Number(c[1].dataset.ts || 0), tok_s: c[5].dataset.value === undefined ? null : Number(c[5].dataset.value),"
               " tok_s_text: c[5].textContent, spark: !!c[4].querySelector('svg polyline'), wes: c[7].textContent}; }).filter(Boolean)")
    b = Browser(exe)
    try:
        page = Page(b, 1366, 900, False, False)
        page.send("Page.navigate", {"url": url + "/"})
        found["loaded"] = bool(page.wait("document.querySelectorAll('#nodes tbody tr td a').length", 20))
        found["title"] = page.eval("document.title")
        matched = None
        end = time.time() + 30
        while time.time() < end and matched is None:
            shown = {r["node"]: r for r in page.eval(rows_js)}
            api_nodes = {n["name"]: n for n in api(url, "/api/v1/fleet/nodes")["nodes"]}
            again = {r["node"]: r for r in page.eval(rows_js)}
            r, a = shown.get(node), api_nodes.get(node)
            if r and a and again.get(node) == r and r["ts"] == a["sample_ts_unix_ms"] and r["tok_s"] is not None:
                matched = {"ts": r["ts"], "page": r["tok_s"], "page_text": r["tok_s_text"], "api": a["tokens_per_second"]}
            time.sleep(0.3)
        found["tok_s_match"] = matched
        page.wait("document.querySelector('#nodes tbody tr svg polyline')", 40)
        found["rows"] = page.eval(rows_js)
        found["board"] = page.eval("document.getElementById('board').innerText")
        page.screenshot(os.path.join(out, "hub-fleet-light-desktop.png"))
        found["screenshots"].append("hub-fleet-light-desktop.png")
        page.eval("location.hash = '#node?name=' + encodeURIComponent(%s)" % json.dumps(node))
        page.wait("[...document.querySelectorAll('#node-charts [data-metric]')].some(e => Number(e.dataset.points) > 0)", 20)
        found["node_chart_points"] = page.eval(
            "Object.fromEntries([...document.querySelectorAll('#node-charts [data-metric]')].map(e => [e.dataset.metric, Number(e.dataset.points || 0)]))")
        page.screenshot(os.path.join(out, "hub-node-light-desktop.png"))
        found["screenshots"].append("hub-node-light-desktop.png")
        for name, (w, hgt, mobile, dark) in {
            "hub-fleet-dark-desktop": (1366, 900, False, True),
            "hub-fleet-light-phone": (390, 844, True, False),
        }.items():
            p = Page(b, w, hgt, mobile, dark)
            p.send("Page.navigate", {"url": url + "/"})
            p.wait("document.querySelectorAll('#nodes tbody tr td a').length", 20)
            time.sleep(0.5)
            found[name + "_overflow_px"] = p.eval(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth")
            p.screenshot(os.path.join(out, name + ".png"))
            found["screenshots"].append(name + ".png")
        collect(b, found)
    finally:
        b.close()
    print(json.dumps(found))


def bench(exe, agent, runs, link):
    rng = dict(p.split("=", 1) for p in link.split("?", 1)[1].split("&")).get("range", "1h")
    paints, charts, points = [], [], []
    b = Browser(exe)
    try:
        for _ in range(runs):
            page = Page(b, 1366, 900, False, False)
            page.send("Network.setCacheDisabled", {"cacheDisabled": True})
            page.send("Page.navigate", {"url": agent + "/"})
            page.wait("performance.getEntriesByName('infermon:first-useful-paint').length", 15)
            paints.append(page.eval("performance.getEntriesByName('infermon:first-useful-paint')[0].startTime"))
            page.eval("location.hash = %s" % json.dumps(link))
            name = "infermon:history-" + rng
            page.wait("performance.getEntriesByName(%s).length" % json.dumps(name), 30)
            charts.append(page.eval("performance.getEntriesByName(%s)[0].duration" % json.dumps(name)))
            points.append(int(page.eval("document.getElementById('history-chart').dataset.points") or 0))
            page.send("Page.close")
    finally:
        b.close()
    med = lambda xs: sorted(xs)[len(xs) // 2]
    print(json.dumps({"runs": runs, "first_useful_paint_ms": {"median": med(paints), "max": max(paints)},
                      "history_ms": {"median": med(charts), "max": max(charts)}, "history_points": points[-1],
                      "paint_runs_ms": [round(x) for x in paints], "history_runs_ms": [round(x, 1) for x in charts]}))


def observations(exe, agent, out):
    b = Browser(exe)
    found = {"errors": []}
    try:
        page = Page(b, 1366, 900, False, False)
        page.send("Page.navigate", {"url": agent + "/#observations"})
        found["open"] = page.wait("document.querySelectorAll('.obs[data-open]').length", 20) or 0
        found["text"] = page.eval("document.getElementById('observations').innerText")
        page.screenshot(os.path.join(out, "observations-open-light-desktop.png"))
        for e in b.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.exceptionThrown" or (m == "Runtime.consoleAPICalled" and p.get("type") == "error"):
                found["errors"].append(json.dumps(p)[:500])
    finally:
        b.close()
    print(json.dumps(found))


def reports(exe, agent, name, out):
    b = Browser(exe)
    found = {"errors": [], "requests": [], "screenshots": []}
    cells = ("[...document.querySelectorAll('%s tbody tr')].map(r => [...r.children].map(c =>"
             " ({text: c.textContent, value: c.dataset.value === undefined ? null : Number(c.dataset.value)})))")
    try:
        page = Page(b, 1366, 900, False, False)
        page.send("Page.navigate", {"url": agent + "/#bench"})
        found["listed"] = bool(page.wait("[...document.querySelectorAll('#bench-list a')].some(a => a.textContent === %s)"
                                         % json.dumps(name), 20))
        found["dir_note"] = page.eval("document.getElementById('bench-dir').textContent")
        found["list"] = page.eval(cells % "#bench-list")
        page.screenshot(os.path.join(out, "bench-list-light-desktop.png"))
        found["screenshots"].append("bench-list-light-desktop.png")
        page.eval("[...document.querySelectorAll('#bench-list a')].find(a => a.textContent === %s).click()" % json.dumps(name))
        found["opened"] = bool(page.wait("document.querySelectorAll('#bench-configs tbody tr td.num').length", 20))
        found["title"] = page.eval("document.getElementById('bench-title').textContent")
        found["totals"] = page.eval(cells % "#bench-totals")
        found["configs"] = page.eval(cells % "#bench-configs")
        found["error_text"] = page.eval("document.getElementById('bench-error').textContent")
        page.screenshot(os.path.join(out, "bench-report-light-desktop.png"))
        found["screenshots"].append("bench-report-light-desktop.png")
        collect(b, found)
    finally:
        b.close()
    print(json.dumps(found))


if __name__ == "__main__":
    if sys.argv[1] == "--bench":
        bench(sys.argv[2], sys.argv[3].rstrip("/"), int(sys.argv[4]), sys.argv[5])
    elif sys.argv[1] == "--hub":
        hub(sys.argv[2], sys.argv[3].rstrip("/"), sys.argv[4], sys.argv[5])
    elif sys.argv[1] == "--reports":
        reports(sys.argv[2], sys.argv[3].rstrip("/"), sys.argv[4], sys.argv[5])
    elif sys.argv[1] == "--observations":
        observations(sys.argv[2], sys.argv[3].rstrip("/"), sys.argv[4])
    else:
        main()
