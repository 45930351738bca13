//! `infermon doctor` over constructed trees and tiny in-test engines: a broken node (PSI
//! missing, RAPL unreadable, an NVIDIA and an AMD GPU on the PCI bus without their drivers
//! under the fake root) with engines that answer HTML, run without `--metrics` or refuse
//! connections exits 1 and names each with its reason and fix; a complete tree with a healthy
//! engine exits 0.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::free_port;

type Route = fn(&str) -> (u16, &'static str, &'static str);

/// Serves each request with what `route` says for its path.
fn fake_server(route: Route) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]);
            let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
            let (status, ctype, body) = route(&path);
            let resp = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(resp.as_bytes());
        }
    });
    url
}

const METRICS: &str = "# TYPE llamacpp:prompt_tokens_total counter\n\
    llamacpp:prompt_tokens_total 120\n\
    # TYPE llamacpp:tokens_predicted_total counter\n\
    llamacpp:tokens_predicted_total 480\n\
    llamacpp:requests_processing 0\n\
    llamacpp:requests_deferred 0\n";

/// A llama-server: `with_metrics` false answers /metrics as llama-server does without
/// `--metrics` (501, its JSON error).
fn llama(path: &str, with_metrics: bool) -> (u16, &'static str, &'static str) {
    const JSON: &str = "application/json";
    match path {
        "/health" => (200, JSON, r#"{"status":"ok"}"#),
        "/props" => (
            200,
            JSON,
            r#"{"model_path":"/m/SmolLM2.gguf","total_slots":1,"default_generation_settings":{"n_ctx":4096}}"#,
        ),
        "/metrics" if with_metrics => (200, "text/plain; version=0.0.4", METRICS),
        "/metrics" => (
            501,
            JSON,
            r#"{"error":{"code":501,"message":"This server does not support metrics endpoint. Start it with `--metrics`","type":"not_supported_error"}}"#,
        ),
        "/slots" => (200, JSON, r#"[{"id":0,"is_processing":false}]"#),
        _ => (
            404,
            JSON,
            r#"{"error":{"code":404,"message":"File Not Found"}}"#,
        ),
    }
}

fn healthy(path: &str) -> (u16, &'static str, &'static str) {
    llama(path, true)
}

fn no_metrics(path: &str) -> (u16, &'static str, &'static str) {
    llama(path, false)
}

fn web_ui(_: &str) -> (u16, &'static str, &'static str) {
    (
        200,
        "text/html",
        "<!DOCTYPE html><html><head><title>Open WebUI</title></head><body></body></html>",
    )
}

fn fixture(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crates/hw/tests/fixtures")
        .join(rel)
}

fn copy_tree(from: &Path, to: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
}

/// A complete node: recorded /proc (with PSI) and a constructed Intel /sys (cpufreq, RAPL,
/// sensors, thermal_throttle), and a PCI bus without GPUs.
fn complete_root() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    copy_tree(&fixture("host/recorded_vm"), d.path());
    copy_tree(&fixture("host/constructed_intel"), d.path());
    std::fs::create_dir_all(d.path().join("sys/bus/pci/devices")).unwrap();
    d
}

fn pci_function(root: &Path, address: &str, vendor: &str, class: &str) {
    let dir = root.join("sys/bus/pci/devices").join(address);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("vendor"), format!("{vendor}\n")).unwrap();
    std::fs::write(dir.join("class"), format!("{class}\n")).unwrap();
}

fn doctor(root: &Path, engines: &[String], json: bool) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_infermon"));
    cmd.args(["doctor", "--no-discovery", "--root"]).arg(root);
    for e in engines {
        cmd.args(["--engine", e]);
    }
    if json {
        cmd.arg("--json");
    }
    // No config file of the machine running the tests.
    cmd.env("XDG_CONFIG_HOME", root)
        .env_remove("INFERMON_ENGINES");
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.code().is_some(),
        "killed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap(), stdout)
}

fn check<'a>(report: &'a Value, source: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["source"] == source)
        .unwrap_or_else(|| panic!("no check {source}: {report:#}"))
}

fn assert_fails(report: &Value, source: &str, reason_has: &str, fix_has: &str) {
    let c = check(report, source);
    assert_eq!(c["ok"], false, "{c:#}");
    let reason = c["reason"].as_str().unwrap();
    let fix = c["fix"].as_str().unwrap();
    assert!(reason.contains(reason_has), "{source}: reason {reason:?}");
    assert!(fix.contains(fix_has), "{source}: fix {fix:?}");
}

#[test]
fn broken_sources_exit_1_with_reason_and_fix() {
    let root = complete_root();
    let r = root.path();
    std::fs::remove_dir_all(r.join("proc/pressure")).unwrap(); // kernel without PSI
    let energy = r.join("sys/class/powercap/intel-rapl:0/energy_uj");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&energy, std::fs::Permissions::from_mode(0o000)).unwrap();
    }
    // Root (CAP_DAC_OVERRIDE) reads mode 000 anyway: then RAPL reads fine and its
    // permission-denied case is covered by the unit tests of the fix mapping only.
    let rapl_denied = std::fs::read(&energy).is_err();
    pci_function(r, "0000:01:00.0", "0x10de", "0x030200"); // NVIDIA, no driver under the root
    pci_function(r, "0000:03:00.0", "0x1002", "0x030000"); // AMD, no amdgpu card
    std::fs::create_dir_all(r.join("sys/class/drm")).unwrap();

    let html = fake_server(web_ui);
    let bare = fake_server(no_metrics);
    let refused = format!("http://127.0.0.1:{}", free_port());
    let engines: Vec<String> = [&html, &bare, &refused]
        .iter()
        .map(|u| format!("llamacpp={u}"))
        .collect();
    let (code, out) = doctor(r, &engines, true);
    assert_eq!(code, 1, "{out}");
    let report: Value = serde_json::from_str(&out).unwrap();

    // Shape: every check has the four fields; every failed one a reason and a fix.
    let checks = report["checks"].as_array().unwrap();
    assert!(!checks.is_empty());
    for c in checks {
        assert!(c["source"].is_string() && c["ok"].is_boolean(), "{c:#}");
        assert!(c.get("reason").is_some() && c.get("fix").is_some(), "{c:#}");
        if c["ok"] == false {
            assert!(!c["reason"].as_str().unwrap().is_empty(), "{c:#}");
            assert!(!c["fix"].as_str().unwrap().is_empty(), "{c:#}");
        } else {
            assert!(c["fix"].is_null(), "{c:#}");
        }
    }

    assert_fails(&report, "host.pressure", "PSI not available", "`psi=1`");
    if rapl_denied {
        assert_fails(
            &report,
            "host.rapl",
            "permission denied",
            "/sys%p/energy_uj",
        );
    } else {
        assert_eq!(check(&report, "host.rapl")["ok"], true);
    }
    // The rest of the tree reads fine.
    for source in [
        "host.cpu",
        "host.memory",
        "host.vmstat",
        "host.temperatures",
    ] {
        assert_eq!(check(&report, source)["ok"], true, "{source}");
    }
    // GPUs on the bus: AMD without amdgpu fails; NVML fails unless this machine has it.
    assert_fails(&report, "gpu.amdgpu", "no amdgpu card", "modprobe amdgpu");
    let nvml = check(&report, "gpu.nvml");
    if nvml["ok"] == false {
        assert!(!nvml["fix"].as_str().unwrap().is_empty());
    }

    let e = |url: &str, what: &str| format!("engine.llamacpp[{url}].{what}");
    for what in ["health", "props", "metrics", "slots"] {
        assert_fails(&report, &e(&html, what), "<!DOCTYPE html>", "API port");
    }
    assert_fails(
        &report,
        &e(&bare, "metrics"),
        "started without --metrics",
        "restart llama-server with `--metrics`",
    );
    for what in ["health", "props", "slots"] {
        assert_eq!(check(&report, &e(&bare, what))["ok"], true, "{what}");
    }
    for what in ["health", "props", "metrics", "slots"] {
        assert_fails(
            &report,
            &e(&refused, what),
            "connection failed",
            "nothing answers at this URL",
        );
    }

    // The table says the same.
    let (code, table) = doctor(r, &engines, false);
    assert_eq!(code, 1);
    assert!(table.starts_with("SOURCE"), "{table}");
    assert!(table.contains("FAIL"), "{table}");
    assert!(
        table.contains("fix: boot the kernel with `psi=1`"),
        "{table}"
    );
}

#[test]
fn a_complete_node_and_a_healthy_engine_exit_0() {
    // Every host source of the tree reads; GPU sources are n/a (no GPU on the fake PCI bus).
    // NVML is a library and ignores --root: on a machine with an NVIDIA driver it is read for
    // real, which is ok too.
    let root = complete_root();
    let engine = fake_server(healthy);
    let (code, out) = doctor(root.path(), &[format!("llamacpp={engine}")], true);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(code, 0, "{report:#}");
    for c in report["checks"].as_array().unwrap() {
        assert_eq!(c["ok"], true, "{c:#}");
    }
    assert_eq!(check(&report, "gpu.amdgpu")["status"], "n/a");
    assert_eq!(check(&report, "host.rapl")["status"], "ok");
    assert_eq!(
        check(&report, &format!("engine.llamacpp[{engine}].metrics"))["status"],
        "ok"
    );
    let (code, table) = doctor(root.path(), &[format!("llamacpp={engine}")], false);
    assert_eq!(code, 0);
    assert!(table.contains("every source is readable"), "{table}");
}
