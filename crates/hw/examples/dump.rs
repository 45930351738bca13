//! Prints what the hardware collectors read, as JSON: `cargo run -p infermon-hw --example dump
//! [ROOT]` (ROOT defaults to `/`).

use std::path::PathBuf;

use infermon_hw::{detect_gpus, read_self, HostReader};

fn main() -> Result<(), serde_json::Error> {
    let root = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "/".into()));
    let host = HostReader::new(&root).read();
    let (mut sources, statuses) = detect_gpus(&root);
    let gpus: Vec<_> = sources.iter_mut().map(|s| (s.name(), s.read())).collect();
    let me = read_self(&root);
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "host": host,
            "gpus": gpus,
            "unavailable_gpu_sources": statuses,
            "self": me,
        }))?
    );
    Ok(())
}
