//! Issue 12: an agent whose store file is damaged moves it aside, says so, and starts with a
//! fresh store instead of exiting (and crash-looping under systemd).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

mod support;

use std::time::Duration;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_store_is_moved_aside_and_the_agent_serves() {
    let data = tempfile::tempdir().unwrap();
    let junk: Vec<u8> = (0..32_768_u32)
        .map(|i| (i.wrapping_mul(40_503) >> 7) as u8)
        .collect();
    std::fs::write(data.path().join("infermon.db"), &junk).unwrap();

    let (mut agent_proc, agent) = start_agent(&["--no-discovery"], data.path()).await;
    let snap = get_json(&format!("{agent}/api/v1/snapshot")).await;
    assert!(snap["ts_unix_ms"].as_i64().is_some(), "{snap}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        agent_proc.child.try_wait().unwrap().is_none(),
        "agent exited"
    );

    let aside: Vec<_> = std::fs::read_dir(data.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("infermon.db.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(std::fs::read(data.path().join(&aside[0])).unwrap(), junk);
}
