//! End to end, as a person would use it: the dashboard in a real headless Chromium (Debian
//! `chromium`, installed by `scripts/setup-test-deps.sh`) against a live agent watching a real
//! llama-server (SmolLM2-135M), with chat requests going through the agent's measuring proxy
//! while the page is open. `tests/clients/dashboard_cdp.py` drives the browser over the
//! DevTools protocol (standard library only) and reports what it saw; this test judges it:
//! the page loads, a live value equals the API's for the same sample and moves within two
//! samples, the history chart draws stored points, no console error, no request to any other
//! host, no sideways scrolling on a phone. Then the engine is stopped and the Observations
//! view must show the `engine_down` observation with its action. Before that, `infermon bench
//! --save` runs against the llama-server and the Bench view must list the report and open it
//! with the figures of the file it wrote. Screenshots (light and dark,
//! laptop and phone) go to `target/test-artifacts/dashboard/`. It prints the budgets recorded
//! in `docs/PERFORMANCE.md` (first useful paint, 30-day chart fetch and draw, compressed
//! assets) and asserts the size budget.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

mod support;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use support::*;

const TEST: &str = "dashboard_in_a_real_browser";

async fn chat(client: &reqwest::Client, proxy: &str, prompt: &str) {
    let r = client
        .post(format!("{proxy}/v1/chat/completions"))
        .json(&json!({
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": 24,
            "stream": true,
        }))
        .send()
        .await
        .expect("chat request");
    assert!(r.status().is_success(), "chat: HTTP {}", r.status());
    r.bytes().await.expect("chat answer");
}

/// Bytes of every asset the page loaded, gzipped as the agent sends them.
async fn compressed_bytes(urls: &[String]) -> (usize, usize) {
    let client = infermon_tls::client().build().unwrap();
    let mut seen = std::collections::BTreeSet::new();
    let (mut gz, mut raw) = (0, 0);
    for u in urls {
        let page = u.ends_with('/') && !u.contains("/api/");
        if !(page || u.contains("/assets/")) || !seen.insert(u.clone()) {
            continue;
        }
        for (enc, total) in [("gzip", &mut gz), ("identity", &mut raw)] {
            let r = client
                .get(u)
                .header("accept-encoding", enc)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{u}");
            *total += r.bytes().await.unwrap().len();
        }
    }
    (gz, raw)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_a_real_browser() {
    let Some(e) = engine(TEST) else { return };
    let Some(browser) = chromium(TEST) else {
        return;
    };
    let (srv, server) = start_llama_server(&e, &["--metrics", "-np", "2"]).await;
    let dir = tempfile::tempdir().unwrap();
    let pport = free_port();
    let proxy_arg = format!("127.0.0.1:{pport}={server}");
    let engine_arg = format!("llamacpp={server}");
    let (_agent, agent) = start_agent(
        &[
            "--no-discovery",
            "--engine",
            &engine_arg,
            "--proxy",
            &proxy_arg,
            "--interval",
            "1s",
            "--max-interval",
            "2s",
        ],
        dir.path(),
    )
    .await;
    let proxy = format!("http://127.0.0.1:{pport}");
    let client = infermon_tls::client().build().unwrap();
    for prompt in ["Name a colour.", "Name a fruit.", "Name a river."] {
        chat(&client, &proxy, prompt).await;
    }
    // Traffic goes on while the page is open.
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = {
        let (stop, client, proxy) = (stop.clone(), client.clone(), proxy.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                chat(&client, &proxy, "Count to five.").await;
            }
        })
    };
    // A few stored samples for the history chart.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts/dashboard");
    let _ = std::fs::remove_dir_all(&out);
    let found = drive_browser(&[browser.as_os_str(), agent.as_ref(), out.as_os_str()]).await;
    stop.store(true, Ordering::Relaxed);
    let _ = traffic.await;

    assert_eq!(found["loaded"], true, "{found}");
    assert_eq!(found["title"], "infermon");
    let errors = found["errors"].as_array().unwrap();
    assert!(errors.is_empty(), "console or network errors: {errors:?}");
    let urls: Vec<String> = found["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap().to_string())
        .collect();
    assert!(urls.len() > 10, "{urls:?}");
    let foreign: Vec<&String> = urls
        .iter()
        .filter(|u| !u.starts_with(&format!("{agent}/")) && !u.starts_with("data:"))
        .collect();
    assert!(foreign.is_empty(), "requests to other hosts: {foreign:?}");

    // A live value is the API's for the same sample, and follows the next one.
    let m = &found["live_match"];
    assert!(
        m.is_object(),
        "the page never showed the API's sample: {found}"
    );
    assert_eq!(m["page"], m["api"], "{m}");
    assert!(m["page_text"].as_str().unwrap().ends_with("GiB"), "{m}");
    let interval = found["interval_seconds"].as_f64().unwrap();
    let moved = &found["live_changed"];
    assert!(
        moved["to"].is_array(),
        "the page did not move within two samples: {moved}"
    );
    assert!(
        moved["after_s"].as_f64().unwrap() <= 2.0 * interval + 1.0,
        "{moved}"
    );
    let live = found["live_chart_points"].as_array().unwrap();
    assert!(live.iter().any(|n| n.as_u64().unwrap() >= 2), "{live:?}");

    // History draws the stored points; the proxy's requests are listed with their gap charts.
    assert!(found["history_points"].as_u64().unwrap() >= 2, "{found}");
    assert_eq!(found["history_canvas"], true);
    assert!(found["request_rows"].as_u64().unwrap() >= 3, "{found}");
    // Every gap is drawn: each row's chart holds as many gaps as the API gives for that request,
    // one fewer than the token chunks the proxy's meter counted.
    let api = get_json(&format!("{agent}/api/v1/requests?limit=1000&gaps=true")).await;
    let lines = found["gap_lines"].as_array().unwrap();
    assert!(lines.len() >= 3, "{found}");
    for l in lines {
        let r = api["requests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["ts_unix_ms"] == l["ts"])
            .unwrap_or_else(|| panic!("no request at {} in the API", l["ts"]));
        let gaps = r["itl_gaps_ms"].as_array().unwrap().len() as u64;
        assert_eq!(l["gaps"], gaps, "{l} vs {r}");
        assert_eq!(gaps + 1, r["token_chunks"].as_u64().unwrap(), "{r}");
        assert_eq!(l["points"], gaps.min(156), "{l}");
    }
    assert_eq!(found["keyboard_tabs"], true);
    for view in [
        "now-dark-desktop",
        "now-light-phone",
        "now-dark-phone",
        "history-dark-phone",
    ] {
        assert_eq!(
            found[format!("{view}_overflow_px")],
            0,
            "{view} scrolls sideways"
        );
    }
    for shot in found["screenshots"].as_array().unwrap() {
        let p = out.join(shot.as_str().unwrap());
        let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        assert!(len > 5_000, "{} is missing or empty", p.display());
    }

    let (gz, raw) = compressed_bytes(&urls).await;
    let paint = found["first_useful_paint_ms"].as_f64().unwrap();
    let month = found["history_30d_ms"].as_f64().unwrap();
    println!(
        "dashboard: first useful paint {paint:.0} ms, 30-day chart fetch+draw {month:.0} ms \
         ({} points), assets {gz} bytes gzip ({raw} bytes plain), screenshots in {}",
        found["history_30d_points"],
        out.display()
    );
    assert!(gz <= 200 * 1024, "dashboard assets are {gz} bytes gzipped");

    saved_bench_report_is_listed_and_opens(&browser, &agent, &server, dir.path(), &out).await;

    // The engine goes away: the diagnosis opens an observation, and the view shows it with its
    // evidence and action.
    drop(srv);
    let start = std::time::Instant::now();
    loop {
        let obs = get_json(&format!("{agent}/api/v1/observations?active=true")).await;
        let open = obs["observations"].as_array().unwrap();
        if open.iter().any(|o| o["kind"] == "engine_down") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no engine_down observation after the engine stopped: {obs}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let args = [
        "--observations".as_ref(),
        browser.as_os_str(),
        agent.as_ref(),
        out.as_os_str(),
    ];
    let shown = drive_browser(&args).await;
    assert!(shown["open"].as_u64().unwrap() >= 1, "{shown}");
    let text = shown["text"].as_str().unwrap();
    assert!(text.contains("engine_down"), "{text}");
    assert!(text.contains("action:"), "{text}");
    assert!(shown["errors"].as_array().unwrap().is_empty(), "{shown}");
}

/// `infermon bench --save` against the real llama-server writes its report into the agent's
/// reports folder; the Bench view lists it and opens it, and every figure it shows is the
/// report file's own (data-value of each cell), read independently here.
async fn saved_bench_report_is_listed_and_opens(
    browser: &std::path::Path,
    agent: &str,
    server: &str,
    data_dir: &std::path::Path,
    out: &std::path::Path,
) {
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_infermon"))
        .args([
            "bench",
            "--url",
            server,
            "--requests",
            "3",
            "--concurrency",
            "1,2",
        ])
        .args(["--max-tokens", "8", "--warmup", "1", "--save", "-q"])
        .env("INFERMON_DATA_DIR", data_dir)
        .env("INFERMON_LOG", "warn")
        .output()
        .await
        .unwrap();
    assert!(run.status.success(), "bench --save: {run:?}");
    let reports = data_dir.join("reports");
    let name = std::fs::read_dir(&reports)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .find(|n| n.ends_with(".json"))
        .expect("bench --save wrote no JSON report");
    for ext in ["md", "html"] {
        assert!(reports
            .join(name.replace(".json", &format!(".{ext}")))
            .is_file());
    }
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reports.join(&name)).unwrap()).unwrap();
    let tok_s = file["output_tokens_per_second"].as_f64().unwrap();
    let configs = file["configs"].as_array().unwrap();
    assert_eq!(configs.len(), 2);

    let found = drive_browser(&[
        "--reports".as_ref(),
        browser.as_os_str(),
        agent.as_ref(),
        name.as_ref(),
        out.as_os_str(),
    ])
    .await;
    assert_eq!(found["listed"], true, "{found}");
    assert!(
        found["dir_note"].as_str().unwrap().contains("reports"),
        "{found}"
    );
    let values = |row: &serde_json::Value| -> Vec<f64> {
        row.as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["value"].as_f64())
            .collect()
    };
    let row = &found["list"][0];
    assert!(values(row).contains(&tok_s), "list row {row} vs {tok_s}");
    assert!(found["title"].as_str().unwrap().contains(server), "{found}");
    assert!(values(&found["totals"][0]).contains(&tok_s), "{found}");
    let shown = found["configs"].as_array().unwrap();
    assert_eq!(shown.len(), configs.len(), "{found}");
    for (row, c) in shown.iter().zip(configs) {
        assert_eq!(row[0]["text"], c["label"], "{row}");
        let want = c["output_tokens_per_second"].as_f64().unwrap();
        assert!(values(row).contains(&want), "{row} vs {want}");
    }
    assert_eq!(found["error_text"], "", "{found}");
    let errors = found["errors"].as_array().unwrap();
    assert!(errors.is_empty(), "console or network errors: {errors:?}");
    for u in found["requests"].as_array().unwrap() {
        assert!(u.as_str().unwrap().starts_with(agent), "request to {u}");
    }
}
