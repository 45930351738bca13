//! `infermon agent --remote-write URL` against the real Prometheus (Debian package, 2.42, with
//! its remote write receiver on): the receiver is stopped for a while and started again on the
//! same data, and a PromQL query over the whole span, outage included, returns exactly the
//! samples the agent stored itself in that span, and the request histograms of `/metrics`
//! arrive too. Skipped without Prometheus unless
//! `INFERMON_REQUIRE_E2E=1` (`scripts/setup-test-deps.sh` installs it).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const SERIES: &str = "infermon_agent_sample_interval_seconds";

fn start_prometheus(bin: &Path, dir: &Path, addr: &str) -> Child {
    std::fs::write(dir.join("prometheus.yml"), "global: {}\n").unwrap();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("prometheus.log"))
        .unwrap();
    Command::new(bin)
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--web.enable-remote-write-receiver")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap()
}

fn stop(mut c: Child) {
    let _ = Command::new("kill").arg(c.id().to_string()).status();
    let _ = c.wait();
}

/// The agent's own stored sample times of [`SERIES`] in `(from, to]`.
async fn stored(api: &str, from: i64, to: i64) -> Vec<i64> {
    let v = support::get_json(&format!(
        "{api}/api/v1/history?metric={SERIES}&from={from}&to={to}&resolution=raw"
    ))
    .await;
    v["series"][0]["points"]
        .as_array()
        .unwrap_or_else(|| panic!("no points: {v}"))
        .iter()
        .map(|p| p["ts_ms"].as_i64().unwrap())
        .filter(|t| *t > from && *t <= to)
        .collect()
}

async fn prometheus_count(base: &str, from: i64, to: i64) -> Option<f64> {
    let q = format!(
        "count_over_time({SERIES}{{job=\"infermon\",instance=\"node-a\"}}[{}ms])",
        to - from
    );
    let enc: String = q
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    let url = format!(
        "{base}/api/v1/query?query={enc}&time={}",
        to as f64 / 1000.0
    );
    let v: Value = infermon_tls::client()
        .build()
        .unwrap()
        .get(&url)
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    v["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|s| s.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_reaches_prometheus_across_a_receiver_outage() {
    let test = "every_sample_reaches_prometheus_across_a_receiver_outage";
    let Some(promtool) = support::promtool(test) else {
        return;
    };
    let bin: PathBuf = promtool.with_file_name("prometheus");
    assert!(bin.is_file(), "{} missing", bin.display());
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", support::free_port());
    let base = format!("http://{addr}");
    let prom = start_prometheus(&bin, dir.path(), &addr);
    support::wait_http_ok(&format!("{base}/-/ready"), Duration::from_secs(60)).await;

    let engine = infermon_mockllm::spawn(infermon_mockllm::MockConfig {
        tokens: 4,
        ..Default::default()
    })
    .await
    .unwrap();
    let proxy = format!("127.0.0.1:{}", support::free_port());
    let (_agent, api) = support::start_agent(
        &[
            "--proxy",
            &format!("{proxy}={}", engine.url()),
            "--no-discovery",
            "--interval",
            "1s",
            "--max-interval",
            "1s",
            "--node-name",
            "node-a",
            "--remote-write",
            &format!("{base}/api/v1/write"),
        ],
        &dir.path().join("agent"),
    )
    .await;
    let from = support::now_ms();
    // Requests through the proxy, so the request histograms have something to push.
    support::wait_http_ok(
        &format!("http://{proxy}/v1/models"),
        Duration::from_secs(30),
    )
    .await;
    let client = infermon_tls::client().build().unwrap();
    for _ in 0..3 {
        let body = serde_json::json!({"model": "mock", "stream": true,
            "messages": [{"role": "user", "content": "hi"}]});
        let r = client
            .post(format!("http://{proxy}/v1/chat/completions"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(6)).await;
    stop(prom);
    let outage_start = support::now_ms();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let prom = start_prometheus(&bin, dir.path(), &addr);
    support::wait_http_ok(&format!("{base}/-/ready"), Duration::from_secs(60)).await;
    let outage_end = support::now_ms();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let to = support::now_ms() - 500;

    let want = stored(&api, from, to).await;
    let during = want
        .iter()
        .filter(|t| **t > outage_start && **t < outage_end)
        .count();
    assert!(
        during >= 8,
        "only {during} samples were taken during the outage"
    );
    // The sender backs off up to 8 s after failures, then catches up.
    let t0 = Instant::now();
    let got = loop {
        let got = prometheus_count(&base, from, to).await;
        if got == Some(want.len() as f64) || t0.elapsed() > Duration::from_secs(60) {
            break got;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    // The request histograms went too: the TTFT count equals the agent's own /metrics.
    let metrics = support::get_text(&format!("{api}/metrics")).await;
    let local: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("gen_ai_server_time_to_first_token_seconds_count{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    let q = "sum(last_over_time(gen_ai_server_time_to_first_token_seconds_count{instance=\"node-a\"}[5m]))";
    let enc: String = q
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    let v: Value = infermon_tls::client()
        .build()
        .unwrap()
        .get(format!(
            "{base}/api/v1/query?query={enc}&time={}",
            to as f64 / 1000.0
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pushed = v["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|s| s.parse::<f64>().ok());
    assert_eq!(local, 3.0, "{metrics}");
    assert_eq!(pushed, Some(local), "histogram count in Prometheus: {v}");
    let log = std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
    stop(prom);
    assert_eq!(
        got,
        Some(want.len() as f64),
        "Prometheus has another number of samples than the agent stored ({} of them, {during} \
         during the outage)\n{log}",
        want.len()
    );
    eprintln!(
        "{} samples stored by the agent, {during} of them while Prometheus was down: all {} in Prometheus",
        want.len(),
        want.len()
    );
}
