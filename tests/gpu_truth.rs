//! `infermon gpu-truth` end to end on a machine without an NVIDIA GPU: a running agent (which
//! sees no GPU here) against a stand-in `nvidia-smi` printing constructed rows in the
//! driver's CSV format. The GPU it names is missing from the agent, so the check must fail
//! and name it; a stand-in printing garbage must fail naming the value. The passing path is
//! covered by the unit tests of src/cmd/gpu_truth and, on a GPU machine, by
//! scripts/gpu-truth.sh.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

fn stand_in(dir: &Path, csv: &str) -> std::path::PathBuf {
    let p = dir.join("nvidia-smi");
    std::fs::write(&p, format!("#!/bin/sh\ncat <<'CSV'\n{csv}CSV\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

const HEADER: &str = "index, uuid, utilization.gpu [%], power.draw [W], memory.used [MiB], memory.total [MiB], clocks.current.sm [MHz], temperature.gpu, clocks_event_reasons.active\n";

fn gpu_truth(url: &str, smi: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_infermon"))
        .args(["gpu-truth", "--url", url, "--rounds", "2", "--nvidia-smi"])
        .arg(smi)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gpu_the_agent_does_not_see_fails_the_check_and_garbage_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (_agent, url) = support::start_agent(
        &["--no-discovery", "--interval", "1s", "--max-interval", "1s"],
        &data,
    )
    .await;
    let row =
        "0, GPU-0000aaaa, 12 %, 71.20 W, 512 MiB, 143771 MiB, 345 MHz, 30, 0x0000000000000001\n";
    let smi = stand_in(dir.path(), &format!("{HEADER}{row}"));
    let (code, out, err) = tokio::task::spawn_blocking({
        let url = url.clone();
        move || gpu_truth(&url, &smi)
    })
    .await
    .unwrap();
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.contains(
            "PROBLEM GPU 0 (GPU-0000aaaa) is in nvidia-smi but not in the agent's snapshot"
        ),
        "{out}"
    );
    assert!(
        out.trim_end()
            .ends_with("gpu-truth: FAIL (0 GPU(s), 2 rounds)"),
        "{out}"
    );

    let bad = stand_in(
        dir.path(),
        &format!("{HEADER}{}", row.replace("71.20 W", "hot W")),
    );
    let (code, out, err) = tokio::task::spawn_blocking(move || gpu_truth(&url, &bad))
        .await
        .unwrap();
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("value \"hot W\" is not a number"), "{err}");
}
