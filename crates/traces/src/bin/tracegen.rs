//! Writes every labelled trace as `NAME.csv` and `NAME.labels.json`.
//!
//! ```text
//! tracegen --out DIR [--only NAME]... [--seed N] [--list]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: tracegen --out DIR [--only NAME]... [--seed N] [--list]\n\
    Writes each trace as DIR/NAME.csv and DIR/NAME.labels.json.\n\
    --only NAME  only this trace (repeatable)\n\
    --seed N     use seed N instead of each trace's default\n\
    --list       print the trace names and exit";

struct Args {
    out: Option<PathBuf>,
    only: Vec<String>,
    seed: Option<u64>,
    list: bool,
}

fn parse(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut a = Args {
        out: None,
        only: Vec::new(),
        seed: None,
        list: false,
    };
    while let Some(arg) = it.next() {
        let mut value = |flag: &str| it.next().ok_or_else(|| format!("{flag} needs a value"));
        match arg.as_str() {
            "--out" => a.out = Some(PathBuf::from(value("--out")?)),
            "--only" => a.only.push(value("--only")?),
            "--seed" => {
                let v = value("--seed")?;
                a.seed = Some(
                    v.parse()
                        .map_err(|_| format!("--seed: \"{v}\" is not an integer"))?,
                );
            }
            "--list" => a.list = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument \"{other}\"")),
        }
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("tracegen: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let names = infermon_traces::names();
    if args.list {
        for n in names {
            println!("{n}");
        }
        return ExitCode::SUCCESS;
    }
    let Some(out) = args.out else {
        eprintln!("tracegen: --out is required\n{USAGE}");
        return ExitCode::from(2);
    };
    if let Some(bad) = args.only.iter().find(|n| !names.contains(&n.as_str())) {
        eprintln!("tracegen: no trace named \"{bad}\" (try --list)");
        return ExitCode::from(2);
    }
    if let Err(e) = std::fs::create_dir_all(&out) {
        eprintln!("tracegen: creating {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    for name in names {
        if !args.only.is_empty() && !args.only.iter().any(|n| n == name) {
            continue;
        }
        let Some(trace) = infermon_traces::generate(name, args.seed) else {
            continue;
        };
        let csv = out.join(format!("{name}.csv"));
        let json = out.join(format!("{name}.labels.json"));
        for (path, body) in [
            (&csv, trace.csv.as_str()),
            (&json, trace.labels.to_json().as_str()),
        ] {
            if let Err(e) = std::fs::write(path, body) {
                eprintln!("tracegen: writing {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
        println!(
            "{name}: {} rows, expect [{}]{}",
            trace.labels.rows,
            trace
                .labels
                .expect
                .iter()
                .map(|e| e.kind.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            if trace.labels.quiet { " (quiet)" } else { "" }
        );
    }
    ExitCode::SUCCESS
}
