// Talking to the agent: the bearer token (taken once from `?token=`, kept in this tab's
// sessionStorage), JSON requests, and the event stream read through fetch so that the token
// can go in a header (EventSource cannot send one).

const KEY = "infermon.token";

function takeToken() {
  const url = new URL(location.href);
  const t = url.searchParams.get("token");
  if (t !== null) {
    sessionStorage.setItem(KEY, t);
    url.searchParams.delete("token");
    history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
}
takeToken();

function headers() {
  const t = sessionStorage.getItem(KEY);
  return t ? { Authorization: "Bearer " + t } : {};
}

/** GET a JSON route; throws an Error carrying the API's own message. */
export async function get(path) {
  const r = await fetch(path, { headers: headers(), cache: "no-store" });
  if (!r.ok) {
    let msg = "HTTP " + r.status;
    try { msg = (await r.json()).error || msg; } catch (_) { /* not JSON */ }
    if (r.status === 401) msg += " (open this page as /?token=YOUR_TOKEN)";
    throw new Error(msg);
  }
  return r.json();
}

/**
 * Reads /api/v1/stream for good: `onEvent(name, data)` per event, `onState(text, ok)` when
 * the connection opens or drops. Reconnects after a pause.
 */
export async function stream(onEvent, onState) {
  for (;;) {
    try {
      const r = await fetch("api/v1/stream", { headers: headers(), cache: "no-store" });
      if (!r.ok || !r.body) throw new Error("event stream: HTTP " + r.status);
      onState("live", true);
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let end;
        while ((end = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          let name = "message";
          const data = [];
          for (const line of block.split("\n")) {
            if (line.startsWith("event:")) name = line.slice(6).trim();
            else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
          }
          if (data.length) onEvent(name, JSON.parse(data.join("\n")));
        }
      }
      onState("stream ended, reconnecting…", false);
    } catch (e) {
      onState("disconnected (" + e.message + "), retrying…", false);
    }
    await new Promise((res) => setTimeout(res, 3000));
  }
}
