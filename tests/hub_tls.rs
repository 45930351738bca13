//! The hub over TLS, as an operator with a private CA runs it: `infermon hub --tls-cert
//! --tls-key`, an agent pushing to `https://localhost:PORT` with `--hub-ca`, `infermon top`
//! reading the hub with `--ca`. The certificates are made by the test (a CA and a leaf it
//! signed, `infermon_tls::testing`); everything listens on loopback.
//!
//! Checked against independent references: the samples at the hub are the agent's own (its
//! `/api/v1/history`); a client that does not trust the CA, and a plain-HTTP client, get no
//! answer from the hub; an agent without the CA keeps its samples and counts failed pushes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::Proc;

const JOIN: &str = "join-token-for-the-tls-test-0123456789";
const SERIES: &str = "infermon_agent_sample_interval_seconds";

fn trusting(ca: &Path) -> reqwest::Client {
    infermon_tls::client_with_ca(Some(ca))
        .unwrap()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

async fn json(client: &reqwest::Client, url: &str) -> Value {
    client.get(url).send().await.unwrap().json().await.unwrap()
}

fn start_hub(dir: &Path, listen: &str, pki: &infermon_tls::testing::Pki) -> Proc {
    let child = Command::new(env!("CARGO_BIN_EXE_infermon"))
        .args([
            "hub",
            "--listen",
            listen,
            "--join-token",
            JOIN,
            "--tls-cert",
        ])
        .arg(&pki.cert)
        .arg("--tls-key")
        .arg(&pki.key)
        .arg("--data-dir")
        .arg(dir)
        .env("INFERMON_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    Proc {
        child,
        name: "infermon hub (TLS)",
    }
}

fn times(v: &Value) -> Vec<i64> {
    v["series"][0]["points"]
        .as_array()
        .map(|a| a.iter().map(|p| p["ts_ms"].as_i64().unwrap()).collect())
        .unwrap_or_default()
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_push_to_a_tls_hub_that_trusts_only_what_its_ca_signed() {
    let dir = tempfile::tempdir().unwrap();
    let pki = infermon_tls::testing::write_pki(dir.path());
    let port = support::free_port();
    let listen = format!("127.0.0.1:{port}");
    let hub = format!("https://localhost:{port}");
    let hub_proc = start_hub(&dir.path().join("hub"), &listen, &pki);
    let client = trusting(&pki.ca);
    let start = Instant::now();
    while client
        .get(format!("{hub}/api/v1/fleet/nodes"))
        .send()
        .await
        .is_err()
    {
        assert!(start.elapsed() < Duration::from_secs(30), "no TLS hub");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Plain HTTP to the TLS port, and TLS without the CA: no answer.
    let plain = infermon_tls::client().no_proxy().build().unwrap();
    let e = plain
        .get(format!("http://{listen}/api/v1/fleet/nodes"))
        .send()
        .await;
    assert!(e.is_err(), "plain HTTP was answered: {e:?}");
    let e = plain
        .get(format!("{hub}/api/v1/fleet/nodes"))
        .send()
        .await
        .unwrap_err();
    assert!(
        format!("{e:?}").contains("UnknownIssuer"),
        "a client without the CA: {e:?}"
    );

    // An agent with the CA pushes; one without it keeps its samples and counts failures.
    let ca = pki.ca.display().to_string();
    let (_good, api) =
        support::start_hub_node(dir.path(), "edge-tls", &hub, JOIN, &["--hub-ca", &ca]).await;
    let (_blind, blind_api) =
        support::start_hub_node(dir.path(), "edge-blind", &hub, JOIN, &[]).await;
    let since = support::now_ms();
    let start = Instant::now();
    let (mut at_agent, mut at_hub) = (Vec::new(), Vec::new());
    while start.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let to = support::now_ms() - 3_000; // what has had time to arrive
        let q = format!("metric={SERIES}&from={since}&to={to}&resolution=raw");
        at_agent = times(&support::get_json(&format!("{api}/api/v1/history?{q}")).await);
        at_hub = times(
            &json(
                &client,
                &format!("{hub}/api/v1/fleet/history?node=edge-tls&{q}"),
            )
            .await,
        );
        if at_agent.len() >= 3 && at_agent == at_hub {
            break;
        }
    }
    assert!(at_agent.len() >= 3, "too few samples: {at_agent:?}");
    assert_eq!(
        at_agent, at_hub,
        "the hub's samples are not the agent's own"
    );

    let nodes = json(&client, &format!("{hub}/api/v1/fleet/nodes")).await;
    let names: Vec<&str> = nodes["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["edge-tls"], "{nodes}");
    let metrics = support::get_text(&format!("{blind_api}/metrics")).await;
    assert!(
        metric(&metrics, "infermon_remote_write_failed_requests_total") >= 1.0,
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "infermon_remote_write_snapshots_dropped_total"),
        0.0,
        "a push the agent could not make must be kept, not dropped"
    );
    let pending = metric(&metrics, "infermon_remote_write_snapshots_pending");
    assert!(pending >= 1.0, "{metrics}");

    // infermon top reads the hub with --ca, and names the certificate problem without it.
    let top = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_infermon"))
            .args(["top", "--once", "--width", "100", "--url", &hub])
            .args(extra)
            .env_remove("INFERMON_URL")
            .env_remove("INFERMON_TOKEN")
            .output()
            .unwrap()
    };
    let out = top(&["--ca", &ca]);
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{screen}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(screen.contains("edge-tls"), "{screen}");
    let out = top(&[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(
        err.contains("certificate") || err.contains("unknownissuer"),
        "{err}"
    );
    // A renewed certificate (another CA's) is served after SIGHUP, without a restart.
    let renewed = tempfile::tempdir().unwrap();
    let next = infermon_tls::testing::write_pki(renewed.path());
    std::fs::copy(&next.cert, &pki.cert).unwrap();
    std::fs::copy(&next.key, &pki.key).unwrap();
    let hup = Command::new("kill")
        .args(["-HUP", &hub_proc.child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let renewed_client = trusting(&next.ca);
    let start = Instant::now();
    loop {
        let r = renewed_client
            .get(format!("{hub}/api/v1/fleet/nodes"))
            .send()
            .await;
        if r.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the renewed certificate is not served after SIGHUP"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn tls_files_are_checked_before_the_hub_starts() {
    let dir = tempfile::tempdir().unwrap();
    let pki = infermon_tls::testing::write_pki(dir.path());
    let run = |args: &[&std::ffi::OsStr]| {
        let out = Command::new(env!("CARGO_BIN_EXE_infermon"))
            .args(["hub", "--join-token", JOIN, "--data-dir"])
            .arg(dir.path().join("hub"))
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let os = |s: &'static str| std::ffi::OsStr::new(s);
    // A key that is not the certificate's is named.
    let why = run(&[
        os("--tls-cert"),
        pki.cert.as_os_str(),
        os("--tls-key"),
        pki.other_key.as_os_str(),
    ]);
    assert!(
        why.contains("other-key.pem") && why.contains("cert.pem"),
        "{why}"
    );
    // Off loopback with TLS, the hub still wants a read token (and not --insecure).
    let why = run(&[
        os("--listen"),
        os("0.0.0.0:1"),
        os("--tls-cert"),
        pki.cert.as_os_str(),
        os("--tls-key"),
        pki.key.as_os_str(),
    ]);
    assert!(
        why.contains("read token") && !why.contains("--insecure"),
        "{why}"
    );
    // A certificate without its key is a usage error.
    let why = run(&[os("--tls-cert"), pki.cert.as_os_str()]);
    assert!(why.contains("--tls-key"), "{why}");
}
