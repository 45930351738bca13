//! `infermon top`: the terminal view of a running agent (`infermon-top`), read over its API.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

/// `infermon top`
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Keys: q quit, ? help, s/S sort, / filter, p pause, arrows scroll.\n\
                  Reads the agent's REST API only, so it costs the watched node a few GETs a \
                  second. Honours NO_COLOR.\n\
                  Examples: infermon top\n          \
                  infermon top --url http://gpu-node-3:7411 --token \"$TOKEN\"\n          \
                  infermon top --url http://hub:7412   (a hub: the fleet table)\n          \
                  infermon top --url http://hub:7412 --node gpu-node-3   (a node through a hub)\n          \
                  infermon top --once --width 120 > screen.txt"
)]
pub struct TopArgs {
    /// Agent base URL (the local agent's, or another node's), or a hub's (the fleet table;
    /// one node with --node).
    #[arg(long, default_value = "http://127.0.0.1:7411", env = "INFERMON_URL")]
    pub url: String,
    /// Bearer token of the agent.
    #[arg(long, env = "INFERMON_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Trust the certificate authorities in this PEM file for an https URL (a private CA),
    /// besides the system's.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<std::path::PathBuf>,
    /// With a hub's --url: the node to show (its latest sample, observations and history as
    /// the hub holds them; a hub keeps no requests).
    #[arg(long)]
    pub node: Option<String>,
    /// Refresh interval, e.g. 1s, 500ms (at least 100ms).
    #[arg(long, default_value = "1s")]
    pub interval: String,
    /// Print one screen as plain text and exit (exit status 1 when the agent cannot be read).
    #[arg(long)]
    pub once: bool,
    /// Width of the `--once` screen, in columns.
    #[arg(long, default_value_t = 80, value_parser = clap::value_parser!(u16).range(40..=1000))]
    pub width: u16,
    /// Height of the `--once` screen, in lines.
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u16).range(10..=1000))]
    pub height: u16,
}

fn interval(text: &str) -> anyhow::Result<Duration> {
    infermon_config::parse_duration(text)
        .filter(|d| *d >= Duration::from_millis(100))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "invalid --interval \"{text}\": expected a duration of at least 100ms, e.g. 1s \
                 or 500ms"
            )
        })
}

pub fn run(args: TopArgs) -> anyhow::Result<ExitCode> {
    let opts = infermon_top::Options {
        url: args.url,
        token: args.token,
        ca: args.ca,
        node: args.node,
        interval: interval(&args.interval)?,
        // https://no-color.org: set and not empty turns colours off.
        color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    };
    if args.once {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        let text = rt
            .block_on(infermon_top::once(&opts, args.width, args.height))
            .map_err(anyhow::Error::msg)?;
        print!("{text}");
        return Ok(ExitCode::SUCCESS);
    }
    infermon_top::run(&opts).map_err(anyhow::Error::msg)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_intervals_are_named() {
        assert_eq!(interval("250ms").unwrap(), Duration::from_millis(250));
        for bad in ["fast", "10ms", "1"] {
            let e = interval(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("\"{bad}\"")), "{e}");
            assert!(e.contains("at least 100ms"), "{e}");
        }
    }
}
