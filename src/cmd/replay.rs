//! `infermon replay`: the agent's detectors over a recorded trace.

use std::process::ExitCode;

use anyhow::Context;
use infermon_detect::text::timeline;
use infermon_detect::{replay, trace, Clock};

use crate::cli::ReplayArgs;

pub fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.trace)
        .with_context(|| format!("cannot read trace \"{}\"", args.trace.display()))?;
    let parsed = trace::parse(&text)
        .with_context(|| format!("malformed trace \"{}\"", args.trace.display()))?;
    let r = replay(&parsed);
    if args.json {
        let disabled: Vec<_> = r
            .disabled
            .iter()
            .map(|(k, why)| serde_json::json!({"kind": k, "reason": why}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "observations": r.observations,
                "disabled": disabled,
            }))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} rows, {} observation{}",
        r.frames,
        r.observations.len(),
        if r.observations.len() == 1 { "" } else { "s" }
    );
    if !r.disabled.is_empty() {
        println!("switched off (the trace lacks what they need):");
        for (k, why) in &r.disabled {
            println!("  {k}: {why}");
        }
    }
    if r.observations.is_empty() {
        println!("nothing to report: every figure stayed within its normal range");
    } else {
        print!("{}", timeline(&r.observations, Clock::Trace));
    }
    Ok(ExitCode::SUCCESS)
}
