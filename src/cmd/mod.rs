//! One module per subcommand.

pub mod agent;
pub mod bench;
pub mod config;
pub mod doctor;
pub mod fit;
pub mod generate;
pub mod gpu_truth;
pub mod history;
pub mod hub;
mod hub_alerts;
mod hub_route;
pub mod mcp;
pub mod remote_write;
pub mod replay;
pub mod status;
pub mod top;

/// Logs to stderr at `INFERMON_LOG` (default `info`): a level (`debug`) or comma-separated
/// `target=level` directives (`info,infermon_proxy=debug`), for the long-running commands.
/// A value that is neither is an error naming it, never a silent default.
pub fn init_logging() -> anyhow::Result<()> {
    let filter = match std::env::var("INFERMON_LOG") {
        Ok(v) if !v.trim().is_empty() => log_filter(&v)?,
        _ => log_filter("info")?,
    };
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(filter)
        .init();
    Ok(())
}

fn log_filter(v: &str) -> anyhow::Result<tracing_subscriber::filter::Targets> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let bad = |why: &str| {
        anyhow::anyhow!(
            "INFERMON_LOG=\"{v}\" is not a log filter ({why}): expected a level ({}) or \
             directives like `info,infermon_proxy=debug`",
            LEVELS.join(", ")
        )
    };
    for d in v.split(',').map(str::trim) {
        let level = d.rsplit_once('=').map_or(d, |(target, level)| {
            if target.trim().is_empty() {
                ""
            } else {
                level.trim()
            }
        });
        if !LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
            return Err(bad(&format!("`{d}` names no level")));
        }
    }
    v.parse().map_err(|e| bad(&format!("{e}")))
}

#[cfg(test)]
mod tests {
    use super::log_filter;

    #[test]
    fn log_filters_parse_levels_and_directives_and_name_bad_ones() {
        assert!(log_filter("debug").is_ok());
        assert!(log_filter("info,infermon_proxy=debug,hyper=warn").is_ok());
        let e = log_filter("loud").unwrap_err().to_string();
        assert!(
            e.contains("INFERMON_LOG=\"loud\"") && e.contains("expected a level"),
            "{e}"
        );
        assert!(log_filter("hyper=noisy").is_err());
        assert!(log_filter("=debug").is_err());
        assert!(log_filter("info,").is_err());
    }
}
