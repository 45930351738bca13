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
pub mod mcp;
pub mod remote_write;
pub mod replay;
pub mod status;
pub mod top;

/// Logs to stderr at `INFERMON_LOG` (default `info`), for the long-running commands.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("INFERMON_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
}
