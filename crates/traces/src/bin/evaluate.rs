//! Replays every labelled trace through infermon's detectors and prints the score per kind and
//! per trace (Markdown), as recorded in docs/PERFORMANCE.md:
//!
//!     cargo run -p infermon-traces --release --bin evaluate
//!
//!     cargo run -p infermon-traces --release --bin evaluate -- --seeds 10
//!
//! `--seeds N` replays every scenario with N seeds (its own, then the next N − 1), so the
//! score does not rest on one draw of the noise. Exits 1 when a target is missed (see
//! `tests/evaluate.rs` for the same targets).

use std::process::ExitCode;

use infermon_traces::eval::{by_kind, report, score};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seeds = match args.as_slice() {
        [] => 1,
        [flag, n] if flag == "--seeds" => match n.parse::<u64>() {
            Ok(n) if n >= 1 => n,
            _ => {
                eprintln!("evaluate: --seeds \"{n}\": expected a whole number of at least 1");
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("usage: evaluate [--seeds N]");
            return ExitCode::from(2);
        }
    };
    let mut scores = Vec::new();
    let traces = infermon_traces::SCENARIOS.iter().flat_map(|s| {
        (0..seeds).map(move |i| {
            let mut t = (s.generate)(s.seed + i);
            if i > 0 {
                t.name = format!("{} (seed +{i})", t.name);
            }
            t
        })
    });
    for t in traces {
        match score(&t) {
            Ok(s) => scores.push(s),
            Err(e) => {
                eprintln!("evaluate: {e}");
                return ExitCode::from(2);
            }
        }
    }
    print!("{}", report(&scores));
    let kinds = by_kind(&scores);
    let missed = kinds.iter().any(|k| {
        k.found < k.expected
            || k.max_delay_s.is_some_and(|d| d > 60.0)
            || k.max_dating_s.is_some_and(|d| d > 10.0)
            || k.cause_ok < k.found
    });
    let noisy = scores.iter().any(|s| {
        let per_day = s.false_alarms.len() as f64 * 24.0 / s.hours.max(1e-9);
        !s.wrong_causes.is_empty()
            || (s.quiet && s.name.contains("diurnal") && per_day > 1.0)
            || (s.quiet && !s.name.contains("diurnal") && !s.false_alarms.is_empty())
            || (!s.quiet && !s.false_alarms.is_empty())
    });
    println!();
    println!(
        "targets (delay <= 60 s, dating <= 10 s, causes right, <= 1 false alarm per 24 h diurnal, 0 elsewhere): {}",
        if missed || noisy { "NOT met" } else { "met" }
    );
    if missed || noisy {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
