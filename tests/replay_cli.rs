//! `infermon replay` as a person runs it: a generated labelled trace (infermon-traces) written
//! to a file, replayed as JSON and as a timeline; a malformed file is an error naming its line
//! and column; a trace without some columns says which detectors it switched off.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

use std::process::Command;

use serde_json::Value;

fn replay(args: &[&str], trace: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_infermon"))
        .arg("replay")
        .args(args)
        .arg("--trace")
        .arg(trace)
        .output()
        .unwrap()
}

#[test]
fn a_thermal_trace_replays_to_the_labelled_observations() {
    let t = infermon_traces::generate("thermal_throttling", None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("thermal.csv");
    std::fs::write(&path, &t.csv).unwrap();
    let out = replay(&["--json"], &path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let obs = v["observations"].as_array().unwrap();
    for o in obs {
        for field in [
            "kind", "start_s", "end_s", "severity", "subject", "evidence", "cause", "action",
        ] {
            assert!(o.get(field).is_some(), "{field} missing in {o}");
        }
    }
    let thermal = obs
        .iter()
        .find(|o| o["kind"] == "thermal_throttling")
        .unwrap();
    let onset = t.labels.expect[0].onset_s;
    assert!(
        (thermal["start_s"].as_f64().unwrap() - onset).abs() <= 10.0,
        "{thermal}"
    );
    let tpot = obs.iter().find(|o| o["kind"] == "tpot_regression").unwrap();
    assert_eq!(tpot["cause"]["kind"], "thermal_throttling", "{tpot}");
    assert_eq!(v["disabled"].as_array().unwrap().len(), 0);

    let text = replay(&[], &path);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("thermal_throttling on node"), "{text}");
    assert!(
        text.contains("(cause: thermal_throttling on node)"),
        "{text}"
    );
}

#[test]
fn bad_input_is_named_and_missing_columns_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "t_s,model,thermal_state,kv_usage\n0,m,Normal,0.5\n2,m,Toasty,0.5\n",
    )
    .unwrap();
    let out = replay(&[], &bad);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3, column thermal_state"), "{err}");
    assert!(err.contains("\"Toasty\""), "{err}");

    let thin = dir.path().join("thin.csv");
    std::fs::write(&thin, "t_s,model,tpot_p50_ms\n0,m,20\n2,m,20\n").unwrap();
    let out = replay(&["--json"], &thin);
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let off: Vec<&str> = v["disabled"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    assert!(
        off.contains(&"kv_saturation") && off.contains(&"swap_storm"),
        "{off:?}"
    );
    assert!(!off.contains(&"tpot_regression"), "{off:?}");
    let text = String::from_utf8_lossy(&replay(&[], &thin).stdout).to_string();
    assert!(
        text.contains("switched off") && text.contains("kv_saturation: no column kv_usage"),
        "{text}"
    );
}
