//! `infermon-mockllm`: the mock LLM server as a process. See the library docs for what it
//! serves; the first line of stdout is the bound address.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use infermon_mockllm::{serve_with_stats, MockConfig, Stats};

/// A fast mock streaming LLM server (OpenAI-compatible and Ollama APIs) with fault injection.
#[derive(Debug, Parser)]
#[command(name = "infermon-mockllm", version)]
struct Args {
    /// Address to listen on; port 0 picks a free one. The bound address is printed as the
    /// first line of stdout.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Completion tokens per reply unless the request says otherwise.
    #[arg(long, default_value_t = 16)]
    tokens: usize,
    /// Milliseconds from reading the request to the first token.
    #[arg(long, default_value = "0", value_parser = parse_ms)]
    ttft_ms: Duration,
    /// Milliseconds between tokens (0: back to back).
    #[arg(long, default_value = "0", value_parser = parse_ms)]
    itl_ms: Duration,
    /// Prompt tokens to report (default: a guess from the prompt's length).
    #[arg(long)]
    prompt_tokens: Option<u64>,
    /// Model name to report when a request names none.
    #[arg(long, default_value = "mock")]
    model: String,
    /// Serve this file's text on GET /metrics (read on every request).
    #[arg(long)]
    metrics_file: Option<PathBuf>,
    /// Runtime worker threads (default: one per CPU).
    #[arg(long)]
    workers: Option<usize>,
}

fn parse_ms(text: &str) -> Result<Duration, String> {
    let ms: f64 = text
        .parse()
        .map_err(|_| format!("'{text}' is not a number of milliseconds"))?;
    Duration::try_from_secs_f64(ms / 1000.0)
        .map_err(|_| format!("'{text}' is not a non-negative number of milliseconds"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if let Some(n) = args.workers {
        rt.worker_threads(n.max(1));
    }
    let rt = match rt.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("infermon-mockllm: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(run(args))
}

async fn run(args: Args) -> ExitCode {
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("infermon-mockllm: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("infermon-mockllm: reading the bound address: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{addr}").and_then(|()| out.flush()).is_err() {
        // Whoever started us is not reading; go on serving anyway.
    }
    drop(out);

    let cfg = MockConfig {
        tokens: args.tokens,
        ttft: args.ttft_ms,
        itl: args.itl_ms,
        prompt_tokens: args.prompt_tokens,
        model: args.model,
        metrics_file: args.metrics_file,
    };
    let stats = Arc::new(Stats::default());
    let result = tokio::select! {
        r = serve_with_stats(listener, cfg, stats.clone()) => r,
        () = shutdown_signal() => Ok(()),
    };
    let snapshot = serde_json::to_string(&stats.snapshot()).unwrap_or_default();
    eprintln!("infermon-mockllm: stats {snapshot}");
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("infermon-mockllm: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
