//! `infermon config`: print the sample config or check one.

use std::process::ExitCode;

use infermon_config::{load, Overrides, SAMPLE_CONFIG};

use crate::cli::ConfigArgs;

pub fn run(args: ConfigArgs) -> anyhow::Result<ExitCode> {
    match args.check {
        None => print!("{SAMPLE_CONFIG}"),
        Some(path) => {
            let s = load(Some(&path), &Overrides::default())?;
            let alerts = crate::cmd::agent::alert_targets(&s)?;
            println!("{}: ok", path.display());
            println!(
                "listen {}, interval {:?} (max {:?}), data {}",
                s.listen,
                s.interval,
                s.max_interval,
                s.data_dir.display()
            );
            for a in &alerts {
                println!("alert {}: {:?} to {}", a.name, a.format, a.url);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
