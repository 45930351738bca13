//! The Prometheus files and the Grafana dashboard shipped in `deploy/` work against a real
//! Prometheus (the Debian package's, 2.42): `deploy/prometheus/prometheus.yml` scrapes a live
//! agent (its target and intervals swapped for the test's), the recording and alerting rules
//! load and evaluate without error, and **every panel query and template variable of
//! `deploy/grafana/infermon.json` returns data** — executed, not just parsed.
//!
//! The agent watches the real llama-server (requests through its proxy the whole time) and a
//! second, configured engine that refuses connections (so an `engine_down` observation is open).
//! This machine has no GPU and no RAPL, so `/sys` comes from the hardware crate's fixtures —
//! the recorded-layout amdgpu RX 7900 XTX and the constructed Intel RAPL zones, whose energy
//! counter the test advances like the kernel does — given to the agent through its `--root`,
//! the same code path that reads `/`; `/proc` is the real one.
//! Skipped without the engine or Prometheus unless `INFERMON_REQUIRE_E2E=1`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

const DASHBOARD: &str = "deploy/grafana/infermon.json";
const SCRAPE: &str = "deploy/prometheus/prometheus.yml";
const FIXTURES: &str = "crates/hw/tests/fixtures";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

/// A root whose `proc` is the real `/proc` and whose `sys` holds an amdgpu card and RAPL zones.
fn hardware_root() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/proc", d.path().join("proc")).unwrap();
    let fx = root().join(FIXTURES);
    copy_tree(&fx.join("amdgpu/rx7900xtx/sys"), &d.path().join("sys"));
    copy_tree(
        &fx.join("host/constructed_intel/sys/class/powercap"),
        &d.path().join("sys/class/powercap"),
    );
    d
}

/// Advances the package RAPL counter by `watts` until `stop`, as the kernel would.
fn run_rapl(dir: PathBuf, watts: f64, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let file = dir.join("sys/class/powercap/intel-rapl:0/energy_uj");
        let start: u64 = std::fs::read_to_string(&file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let t0 = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let uj = start + (t0.elapsed().as_secs_f64() * watts * 1e6) as u64;
            std::fs::write(&file, format!("{uj}\n")).unwrap();
            std::thread::sleep(Duration::from_millis(200));
        }
    })
}

/// The Prometheus server of the package that provides `promtool`.
fn prometheus(promtool: &Path) -> PathBuf {
    let p = promtool.with_file_name("prometheus");
    assert!(
        p.is_file(),
        "{} not found beside promtool; install the Debian package `prometheus`",
        p.display()
    );
    p
}

/// Every panel query of the dashboard with its title, Grafana's variables put to "all".
fn panel_queries(dash: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().unwrap();
            let expr = expr
                .replace("$__rate_interval", "1m")
                .replace("$instance", ".*")
                .replace("$model", ".*");
            assert!(!expr.contains('$'), "unknown variable in {expr}");
            out.push((p["title"].as_str().unwrap().to_string(), expr));
        }
    }
    out
}

/// `label_values(METRIC, LABEL)` of each query variable.
fn variables(dash: &Value) -> Vec<(String, String)> {
    dash["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["type"] == "query")
        .map(|v| {
            let q = v["query"]["query"].as_str().unwrap();
            let inner = q
                .strip_prefix("label_values(")
                .and_then(|s| s.strip_suffix(')'))
                .unwrap_or_else(|| panic!("not label_values(): {q}"));
            let (metric, label) = inner.split_once(',').unwrap();
            (metric.trim().to_string(), label.trim().to_string())
        })
        .collect()
}

async fn prom_get(client: &reqwest::Client, url: &str, query: &[(&str, &str)]) -> Value {
    let qs: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{}={}", support::encode_query(k), support::encode_query(v)))
        .collect();
    let full = if qs.is_empty() {
        url.to_string()
    } else {
        format!("{url}?{}", qs.join("&"))
    };
    let r = client.get(&full).send().await.unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert!(
        status.is_success() && v["status"] == "success",
        "{url} {query:?}: {v}"
    );
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_grafana_panel_query_returns_data_from_a_real_prometheus() {
    let test = "every_grafana_panel_query_returns_data_from_a_real_prometheus";
    let Some(engine) = support::engine(test) else {
        return;
    };
    let Some(promtool) = support::promtool(test) else {
        return;
    };
    let prometheus = prometheus(&promtool);
    let dash: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join(DASHBOARD)).unwrap()).unwrap();
    let queries = panel_queries(&dash);
    assert!(queries.len() >= 20, "{} queries", queries.len());

    let hw = hardware_root();
    let stop = Arc::new(AtomicBool::new(false));
    let rapl = run_rapl(hw.path().to_path_buf(), 35.0, stop.clone());
    let (_server, server_url) = support::start_llama_server(&engine, &["--metrics"]).await;
    let dead = format!("http://127.0.0.1:{}", support::free_port());
    let proxy = format!("127.0.0.1:{}", support::free_port());
    let data = tempfile::tempdir().unwrap();
    let (_agent, api) = support::start_agent(
        &[
            "--no-discovery",
            "--interval",
            "1s",
            "--max-interval",
            "1s",
            "--root",
            hw.path().to_str().unwrap(),
            "--engine",
            &format!("llamacpp={server_url}"),
            "--engine",
            &format!("llamacpp={dead}"),
            "--proxy",
            &format!("{proxy}={server_url}"),
        ],
        &data.path().join("agent"),
    )
    .await;

    // Traffic through the proxy for the whole test.
    let traffic = {
        let (stop, proxy) = (stop.clone(), proxy.clone());
        tokio::spawn(async move {
            let client = infermon_tls::client().build().unwrap();
            let mut sent = 0;
            while !stop.load(Ordering::Relaxed) {
                let body = serde_json::json!({
                    "model": "smollm2", "stream": true, "max_tokens": 16,
                    "messages": [{"role": "user", "content": "Name a colour."}]
                });
                if let Ok(r) = client
                    .post(format!("http://{proxy}/v1/chat/completions"))
                    .json(&body)
                    .send()
                    .await
                {
                    let _ = r.bytes().await;
                    sent += 1;
                }
            }
            sent
        })
    };

    // Prometheus with the shipped configuration: only the target, intervals and rule paths
    // are the test's.
    let agent_addr = api.trim_start_matches("http://");
    let config = std::fs::read_to_string(root().join(SCRAPE))
        .unwrap()
        .replace("127.0.0.1:7411", agent_addr)
        .replace("scrape_interval: 5s", "scrape_interval: 1s")
        .replace("evaluation_interval: 15s", "evaluation_interval: 1s")
        .replace(
            "  - infermon-recording.yml",
            &format!(
                "  - {}",
                root()
                    .join("deploy/prometheus/infermon-recording.yml")
                    .display()
            ),
        )
        .replace(
            "  - infermon-alerts.yml",
            &format!(
                "  - {}",
                root()
                    .join("deploy/prometheus/infermon-alerts.yml")
                    .display()
            ),
        );
    assert!(config.contains(agent_addr), "the target was not replaced");
    let prom_dir = data.path().join("prometheus");
    std::fs::create_dir_all(&prom_dir).unwrap();
    std::fs::write(prom_dir.join("prometheus.yml"), &config).unwrap();
    let check = Command::new(&promtool)
        .args(["check", "config"])
        .arg(prom_dir.join("prometheus.yml"))
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "promtool check config: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let prom_addr = format!("127.0.0.1:{}", support::free_port());
    let prom_log = prom_dir.join("prometheus.log");
    let mut prom = Command::new(&prometheus)
        .arg(format!(
            "--config.file={}",
            prom_dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            prom_dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address={prom_addr}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&prom_log).unwrap())
        .spawn()
        .unwrap();
    let base = format!("http://{prom_addr}");
    support::wait_http_ok(&format!("{base}/-/ready"), Duration::from_secs(60)).await;

    let client = infermon_tls::client().build().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let empty = loop {
        let mut empty = Vec::new();
        for (title, expr) in &queries {
            let v = prom_get(&client, &format!("{base}/api/v1/query"), &[("query", expr)]).await;
            if v["data"]["result"].as_array().is_none_or(Vec::is_empty) {
                empty.push(format!("{title}: {expr}"));
            }
        }
        for (metric, label) in variables(&dash) {
            let v = prom_get(
                &client,
                &format!("{base}/api/v1/label/{label}/values"),
                &[("match[]", metric.as_str())],
            )
            .await;
            if v["data"].as_array().is_none_or(Vec::is_empty) {
                empty.push(format!("variable label_values({metric}, {label})"));
            }
        }
        if empty.is_empty() || Instant::now() > deadline {
            break empty;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let rules = prom_get(&client, &format!("{base}/api/v1/rules"), &[]).await;
    stop.store(true, Ordering::Relaxed);
    let sent = traffic.await.unwrap();
    rapl.join().unwrap();
    let _ = prom.kill();
    let _ = prom.wait();

    let snapshot = support::get_json(&format!("{api}/api/v1/snapshot")).await;
    assert!(
        empty.is_empty(),
        "{} of {} panel queries returned no data after {sent} requests:\n{}\nsnapshot sources: {}\nprometheus log:\n{}",
        empty.len(),
        queries.len(),
        empty.join("\n"),
        snapshot["sources"],
        std::fs::read_to_string(&prom_log).unwrap_or_default()
    );
    let mut n_rules = 0;
    for g in rules["data"]["groups"].as_array().unwrap() {
        for r in g["rules"].as_array().unwrap() {
            n_rules += 1;
            assert_eq!(
                r["health"], "ok",
                "rule {} in {}: {r}",
                r["name"], g["name"]
            );
        }
    }
    assert!(n_rules > 20, "{n_rules} rules loaded: {rules}");
    eprintln!(
        "{} panel queries and {} variables returned data; {n_rules} rules healthy; {sent} requests",
        queries.len(),
        variables(&dash).len()
    );
}
