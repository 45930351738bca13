//! Command-line arguments, one struct per subcommand, and dispatch.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::cmd;

#[derive(Parser, Debug)]
#[command(
    name = "infermon",
    version,
    about = "See what your LLM inference hardware and engines are really doing"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the node agent: sample hardware and engines, keep history, serve the API.
    Agent(AgentArgs),
    /// Print the running agent's latest snapshot.
    Status(StatusArgs),
    /// Print the sample configuration, or check a configuration file.
    Config(ConfigArgs),
    /// Estimate the memory a llama-server command line needs, or check a running server.
    Fit(FitArgs),
    /// Run a measuring proxy in front of an engine (with the agent and its API).
    Proxy(ProxyArgs),
    /// Benchmark an endpoint (load generator with hardware correlation), compare reports,
    /// or sweep quantizations.
    Bench(Box<BenchArgs>),
    /// Run the diagnosis detectors over a recorded trace (CSV) and print what they find.
    Replay(ReplayArgs),
    /// The agent's own history: export it as a replay trace.
    History(HistoryArgs),
    /// Check every source once (hardware, GPUs, engines) and say why any is unreadable and
    /// how to fix it; exit status 1 when one is.
    Doctor(DoctorArgs),
    /// Compare a running agent's NVIDIA figures with nvidia-smi read at the same moments
    /// (validation on a GPU machine; see scripts/gpu-truth.sh).
    GpuTruth(cmd::gpu_truth::GpuTruthArgs),
    /// Serve the Model Context Protocol on stdio: read-only tools over a running agent's
    /// API (snapshot, observations, history, requests) and the fit estimate.
    Mcp(cmd::mcp::McpArgs),
    /// Run the fleet hub: nodes push their samples to it (`agent --hub`); it serves the
    /// fleet's nodes, WES leaderboard, observations and routing choice.
    Hub(cmd::hub::HubArgs),
    /// Watch a running agent in the terminal: GPU and CPU bars, memory, per-model tok/s,
    /// TTFT/TPOT, queue and KV, sparklines, recent requests and observations.
    Top(cmd::top::TopArgs),
    /// Print a shell completion script (bash, zsh or fish).
    Completions(cmd::generate::CompletionsArgs),
    /// Write the man pages into a directory (used by packaging).
    #[command(hide = true)]
    Manpages(cmd::generate::ManpagesArgs),
}

/// `infermon doctor`
#[derive(Args, Debug)]
#[command(
    after_help = "Reads every source once, as `infermon agent` with the same config and flags would.\n\
                  Exit status: 0 every source is readable (or does not apply to this machine, shown as n/a);\n\
                  1 some source is not (or a bad argument or config).\n\
                  Example: infermon doctor --engine llamacpp=http://127.0.0.1:8080 --json"
)]
pub struct DoctorArgs {
    /// Config file, as for `infermon agent`.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Engine to check as well, KIND=URL (repeatable), e.g. llamacpp=http://127.0.0.1:8080.
    #[arg(long = "engine")]
    pub engines: Vec<String>,
    /// Do not scan for local engines.
    #[arg(long)]
    pub no_discovery: bool,
    /// Root of /proc and /sys to read (for tests and containers).
    #[arg(long, hide = true)]
    pub root: Option<String>,
    /// Print `{"checks": [{"source", "ok", "status", "reason", "fix"}, ...]}`.
    #[arg(long)]
    pub json: bool,
}

/// `infermon replay`
#[derive(Args, Debug)]
#[command(
    after_help = "Columns: t_s, model, requests_running, requests_waiting, prompt_tokens_per_s,\n\
                  generation_tokens_per_s, ttft_p50_ms, tpot_p50_ms, gpu_util, gpu_clock_mhz, power_w,\n\
                  gpu_temp_c, thermal_state, kv_usage, swap_in_pages_per_s, mem_available_bytes\n\
                  (+ optional columns written by `infermon history export`). An empty cell is \"not measured\".\n\
                  Example: infermon history export --csv --from -2h > incident.csv && infermon replay --trace incident.csv"
)]
pub struct ReplayArgs {
    /// The trace: a CSV file with a header row.
    #[arg(long)]
    pub trace: PathBuf,
    /// Print `{"observations": [...], "disabled": [...]}` instead of a timeline.
    #[arg(long)]
    pub json: bool,
}

/// `infermon history`
#[derive(Args, Debug)]
pub struct HistoryArgs {
    #[command(subcommand)]
    pub command: HistoryCommand,
}

/// `infermon history ...`
#[derive(Subcommand, Debug)]
pub enum HistoryCommand {
    /// Write the stored raw samples (and measured requests) as a replay trace.
    Export(HistoryExportArgs),
}

/// `infermon history export`
#[derive(Args, Debug)]
pub struct HistoryExportArgs {
    /// Write CSV (the replay format; the only format so far, and required so that a later
    /// format never changes what a script gets).
    #[arg(long, required = true)]
    pub csv: bool,
    /// Start: milliseconds since the epoch, or an offset like -15m, -2h, -1d (raw samples are
    /// kept for 24 h by default).
    #[arg(long, default_value = "-1h")]
    pub from: String,
    /// End: `now`, milliseconds since the epoch, or an offset.
    #[arg(long, default_value = "now")]
    pub to: String,
    /// Config file, as for `infermon agent` (for the data directory and PUE).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Data directory of the store (default: the agent's).
    #[arg(long)]
    pub data_dir: Option<String>,
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

/// `infermon proxy`
#[derive(Args, Debug)]
#[command(
    after_help = "Example: infermon proxy --listen 127.0.0.1:9000 --upstream http://127.0.0.1:8080\n\
                  then point clients at http://127.0.0.1:9000 and read http://127.0.0.1:7411/api/v1/requests"
)]
pub struct ProxyArgs {
    /// Address clients connect to.
    #[arg(long)]
    pub listen: String,
    /// Engine base URL to forward to (http only), e.g. http://127.0.0.1:8080.
    #[arg(long)]
    pub upstream: String,
    /// Listen address of the agent's API (default 127.0.0.1:7411).
    #[arg(long)]
    pub api_listen: Option<String>,
    /// Config file, as for `infermon agent`.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Bearer token of the API and the proxy (required when either listens off loopback).
    #[arg(long)]
    pub token: Option<String>,
    /// Host name the API answers to besides localhost and IP addresses (repeatable), e.g.
    /// inferbox.local.
    #[arg(long = "allowed-host", value_name = "NAME")]
    pub allowed_hosts: Vec<String>,
    /// Data directory of the store.
    #[arg(long)]
    pub data_dir: Option<String>,
    /// Engine to poll as well, KIND=URL (repeatable).
    #[arg(long = "engine")]
    pub engines: Vec<String>,
    /// Do not scan for local engines.
    #[arg(long)]
    pub no_discovery: bool,
    /// Keep prompt and answer text of measured requests (off by default).
    #[arg(long)]
    pub capture_bodies: bool,
    /// Objectives for goodput, e.g. ttft=200ms,tpot=50ms,e2e=10s.
    #[arg(long)]
    pub slo: Option<String>,
}

/// `infermon agent`
#[derive(Args, Debug)]
pub struct AgentArgs {
    /// Config file (default: $XDG_CONFIG_HOME/infermon/config.toml, then /etc/infermon/config.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Listen address of the API.
    #[arg(long)]
    pub listen: Option<String>,
    /// Sampling interval while active, e.g. 2s.
    #[arg(long)]
    pub interval: Option<String>,
    /// Longest sampling interval while idle, e.g. 20s.
    #[arg(long)]
    pub max_interval: Option<String>,
    /// Bearer token required by the API (required when listening off loopback).
    #[arg(long)]
    pub token: Option<String>,
    /// Host name the API answers to besides localhost and IP addresses (repeatable), e.g.
    /// inferbox.local.
    #[arg(long = "allowed-host", value_name = "NAME")]
    pub allowed_hosts: Vec<String>,
    /// Data directory of the store.
    #[arg(long)]
    pub data_dir: Option<String>,
    /// Engine to poll, KIND=URL (repeatable), e.g. llamacpp=http://127.0.0.1:8080.
    #[arg(long = "engine")]
    pub engines: Vec<String>,
    /// Do not scan for local engines.
    #[arg(long)]
    pub no_discovery: bool,
    /// Root of /proc and /sys to read (for tests and containers).
    #[arg(long, hide = true)]
    pub root: Option<String>,
    /// Run a measuring proxy, LISTEN=UPSTREAM (repeatable), e.g. 127.0.0.1:9000=http://127.0.0.1:8080.
    #[arg(long = "proxy")]
    pub proxies: Vec<String>,
    /// Keep prompt and answer text of measured requests (off by default).
    #[arg(long)]
    pub capture_bodies: bool,
    /// Objectives for goodput, e.g. ttft=200ms,tpot=50ms,e2e=10s.
    #[arg(long)]
    pub slo: Option<String>,
    /// Push every sample to a Prometheus remote write receiver (repeatable), e.g.
    /// http://prometheus:9090/api/v1/write; auth and labels go in [[remote_write]].
    #[arg(long = "remote-write", value_name = "URL")]
    pub remote_write: Vec<String>,
    /// This node's name, the `instance` label of what it pushes (default: the host name).
    #[arg(long, value_name = "NAME")]
    pub node_name: Option<String>,
    /// Push every sampling round to an infermon hub, e.g. https://hub:9465 (also [hub] url,
    /// INFERMON_HUB_URL).
    #[arg(long, value_name = "URL")]
    pub hub: Option<String>,
    /// The hub's join token, used once to get this node's own token (also
    /// INFERMON_HUB_TOKEN, [hub] join_token or join_token_file).
    #[arg(long, value_name = "TOKEN")]
    pub hub_token: Option<String>,
    /// Trust the certificate authorities in this PEM file for an https hub (a private CA;
    /// also [hub] ca). The system's roots are trusted as well.
    #[arg(long, value_name = "FILE")]
    pub hub_ca: Option<String>,
    /// Where the hub's routing proxy can reach this node's OpenAI/Ollama API (its infermon
    /// proxy or engine), e.g. http://10.0.0.5:8081; sent with every sample (also [hub]
    /// advertise_url). The hub's --node-url overrides it.
    #[arg(long, value_name = "URL")]
    pub advertise_url: Option<String>,
}

/// `infermon status`
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Agent base URL.
    #[arg(long, default_value = "http://127.0.0.1:7411", env = "INFERMON_URL")]
    pub url: String,
    /// Bearer token of the agent.
    #[arg(long, env = "INFERMON_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print the snapshot as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `infermon config`
#[derive(Args, Debug)]
pub struct ConfigArgs {
    /// Check this file (and the environment) instead of printing the sample.
    #[arg(long)]
    pub check: Option<PathBuf>,
}

/// `infermon fit`
#[derive(Args, Debug)]
#[command(
    after_help = "Example: infermon fit --budget 24GiB -m model.gguf -c 8192 -np 4 -ctk q8_0 -ctv q8_0 -fa on"
)]
pub struct FitArgs {
    /// Print JSON (fields weights_bytes, kv_bytes, compute_bytes, overhead_bytes, total_bytes, ...).
    #[arg(long)]
    pub json: bool,
    /// Memory budget, e.g. 24GiB: also report the largest context that fits.
    #[arg(long)]
    pub budget: Option<String>,
    /// Model offload to a GPU (split by -ngl); without it everything is on the host.
    #[arg(long)]
    pub gpu: bool,
    /// Compare with a running local llama-server at this URL (its own command line and model).
    #[arg(long)]
    pub against: Option<String>,
    /// llama-server's own flags, as you run it (e.g. -m MODEL.gguf -c 8192 -np 4).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub server_args: Vec<String>,
}

/// `infermon bench`
#[derive(Args, Debug)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "Examples:\n  \
      infermon bench --url http://127.0.0.1:8080 --requests 20 --concurrency 2 --max-tokens 32 --out run.json\n  \
      infermon bench --url http://127.0.0.1:8080 --concurrency 1,2,4,8 --slo ttft=200ms,tpot=50ms --out sweep.json\n  \
      infermon bench --url http://127.0.0.1:8000/v1 --model M --rate 1,2,4 --arrivals poisson --out rate.json\n  \
      infermon bench --url http://127.0.0.1:11434 --api ollama-chat --model llama3.2 --requests 10\n  \
      infermon bench compare base.json new.json\n\n\
      --out run.json also writes run.md and run.html (unless --markdown / --html say otherwise).\n\
      Exit status: 0 all requests completed; 2 some failed or the run stopped early (the report\n\
      is still written); 1 bad arguments."
)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: Option<BenchCommand>,
    #[command(flatten)]
    pub run: BenchRunArgs,
}

/// `infermon bench` subcommands.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Run a benchmark (the default: `infermon bench --url URL ...` is the same).
    Run(Box<BenchRunArgs>),
    /// Compare two JSON reports; exit status 3 when B regressed against A.
    Compare(BenchCompareArgs),
    /// Benchmark several quantizations of a model — GGUF files (llama-server per file) or
    /// the models a running llama-swap/Ollama offers — with optional perplexity, and find
    /// the Pareto front and its knee.
    Sweep(Box<BenchSweepArgs>),
}

/// `infermon bench [run]`
#[derive(Args, Debug, Clone)]
pub struct BenchRunArgs {
    /// Endpoint: a base URL (http://127.0.0.1:8080), a /v1 base, or a full endpoint URL.
    #[arg(long)]
    pub url: Option<String>,
    #[command(flatten)]
    pub profile: BenchProfileArgs,
    #[command(flatten)]
    pub output: BenchOutputArgs,
}

/// The load profile and measurement flags (shared by `run` and `sweep`).
#[derive(Args, Debug, Clone)]
pub struct BenchProfileArgs {
    /// API: chat, completions, ollama-chat, ollama-generate (default: from the URL, else chat).
    #[arg(long)]
    pub api: Option<String>,
    /// Model to ask for (default: the one the server lists; Ollama needs one).
    #[arg(long)]
    pub model: Option<String>,
    /// Measured requests per configuration.
    #[arg(long, default_value_t = 50)]
    pub requests: u64,
    /// Concurrency sweep: in-flight levels, e.g. 1,2,4,8 (default: sync, one at a time).
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["rate", "sync"])]
    pub concurrency: Vec<u32>,
    /// Request rates per second, e.g. 1,2,4 or inf (open loop).
    #[arg(long, value_delimiter = ',', conflicts_with = "sync")]
    pub rate: Vec<String>,
    /// Arrivals under --rate: poisson or constant.
    #[arg(long, default_value = "poisson")]
    pub arrivals: String,
    /// Most requests in flight under --rate.
    #[arg(long)]
    pub max_concurrency: Option<u32>,
    /// One request at a time (the default profile).
    #[arg(long)]
    pub sync: bool,
    /// Warm-up requests before the first configuration (excluded from every figure).
    #[arg(long, default_value_t = 1)]
    pub warmup: u64,
    /// Synthetic prompt length, tokens (approximate: one common word per token).
    #[arg(long, default_value_t = 128)]
    pub input_tokens: u32,
    /// max_tokens of every request.
    #[arg(long, default_value_t = 128)]
    pub max_tokens: u32,
    /// Prompts from a JSONL file ({"prompt": "..."} or {"messages": [...]}, optional max_tokens).
    #[arg(long)]
    pub prompts: Option<PathBuf>,
    /// Seed of the synthetic prompts and Poisson arrivals.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Do not send ignore_eos (answers may end before max_tokens).
    #[arg(long)]
    pub no_ignore_eos: bool,
    /// Objectives for goodput, e.g. ttft=200ms,tpot=50ms,e2e=10s.
    #[arg(long)]
    pub slo: Option<String>,
    /// Extra request header, "Name: value" (repeatable), e.g. "Authorization: Bearer KEY".
    #[arg(long = "header", short = 'H')]
    pub headers: Vec<String>,
    /// Longest silence (no answer head, no chunk) before a request times out.
    #[arg(long, default_value = "60s")]
    pub timeout: String,
    /// Do not sample the node (power, thermal, memory, swap).
    #[arg(long)]
    pub no_hardware: bool,
    /// Engine kind for the hardware collectors (llamacpp, vllm, sglang, ollama, lm_studio,
    /// llama_swap; default: detected).
    #[arg(long)]
    pub engine: Option<String>,
    /// Do not scan for the local engine process (its memory is then unknown).
    #[arg(long)]
    pub no_discovery: bool,
    /// Hardware sampling interval.
    #[arg(long, default_value = "1s")]
    pub sample_interval: String,
    /// Peak memory bandwidth of the device in GB/s (default: from a table of GPUs, else unknown).
    #[arg(long)]
    pub peak_bandwidth: Option<f64>,
    /// Model file, for the bytes read per decode step (default: the file the engine serves).
    #[arg(long)]
    pub model_file: Option<PathBuf>,
    /// Bytes read per decode step, e.g. 4.9GB (default: the model file's size).
    #[arg(long)]
    pub model_size: Option<String>,
    /// PUE for WES.
    #[arg(long, default_value_t = 1.0)]
    pub pue: f64,
    /// Client runtime threads (default: 1 up to 32 in flight, else up to 4).
    #[arg(long, hide = true)]
    pub client_threads: Option<usize>,
}

/// Where reports go.
#[derive(Args, Debug, Clone)]
pub struct BenchOutputArgs {
    /// JSON report (also writes .md and .html next to it unless given below).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Markdown report.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
    /// Self-contained HTML report with plots.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Also save the reports (JSON, Markdown, HTML) in the agent's reports folder
    /// (`<data dir>/reports`), where the dashboard's Bench view lists them.
    #[arg(long)]
    pub save: bool,
    /// No progress bars.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// `infermon bench compare`
#[derive(Args, Debug)]
pub struct BenchCompareArgs {
    /// Baseline report (JSON).
    pub a: PathBuf,
    /// New report (JSON).
    pub b: PathBuf,
    /// Regression threshold, percent.
    #[arg(long, default_value_t = 5.0)]
    pub threshold: f64,
    /// Print the comparison as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `infermon bench sweep`
#[derive(Args, Debug)]
pub struct BenchSweepArgs {
    /// GGUF files: quantizations of one model (infermon starts a llama-server on each).
    #[arg(required_unless_present = "models", conflicts_with = "models")]
    pub files: Vec<PathBuf>,
    /// Instead of files: a running server offering the models by name (llama-swap, Ollama or
    /// any OpenAI-compatible router), e.g. http://127.0.0.1:8080.
    #[arg(long, requires = "models")]
    pub url: Option<String>,
    /// Models of --url to sweep, in order: names, patterns ('qwen2.5-7b-*'), or NAME=FILE.gguf
    /// (the file the server loads, for its header and perplexity).
    #[arg(long, value_delimiter = ',', requires = "url")]
    pub models: Vec<String>,
    /// Leave the models the sweep loaded loaded (default: unload each after its turn;
    /// models loaded before the sweep are never unloaded).
    #[arg(long)]
    pub keep_loaded: bool,
    /// llama-server binary (default: INFERMON_LLAMA_SERVER, else PATH).
    #[arg(long)]
    pub server: Option<PathBuf>,
    /// llama-perplexity binary (default: INFERMON_LLAMA_PERPLEXITY, else PATH).
    #[arg(long)]
    pub perplexity: Option<PathBuf>,
    /// Text to measure perplexity on (e.g. wiki.test.raw); without it, no perplexity.
    #[arg(long)]
    pub text: Option<PathBuf>,
    /// Perplexity context size (-c; default 512).
    #[arg(long)]
    pub ctx: Option<u32>,
    /// Score only the first N chunks of the text.
    #[arg(long)]
    pub chunks: Option<u32>,
    /// Context size of each llama-server (default 4096).
    #[arg(long)]
    pub server_ctx: Option<u32>,
    /// CPU threads of the server and the perplexity run (default: every CPU).
    #[arg(long)]
    pub threads: Option<u32>,
    /// Extra llama-server argument (repeatable), e.g. --server-arg=-ngl --server-arg=99.
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    pub server_args: Vec<String>,
    /// Directory for the servers' logs.
    #[arg(long)]
    pub log_dir: Option<PathBuf>,
    #[command(flatten)]
    pub profile: BenchProfileArgs,
    #[command(flatten)]
    pub output: BenchOutputArgs,
}

/// Parses arguments and runs the command.
pub fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Agent(a) => cmd::agent::run(a),
        Command::Status(s) => cmd::status::run(s),
        Command::Config(c) => cmd::config::run(c),
        Command::Fit(f) => cmd::fit::run(f),
        Command::Proxy(p) => cmd::agent::run_proxy(p),
        Command::Bench(b) => cmd::bench::run(*b),
        Command::Replay(r) => cmd::replay::run(r),
        Command::History(h) => match h.command {
            HistoryCommand::Export(e) => cmd::history::export(e),
        },
        Command::Doctor(d) => cmd::doctor::run(d),
        Command::GpuTruth(g) => cmd::gpu_truth::run(g),
        Command::Mcp(m) => cmd::mcp::run(m),
        Command::Top(t) => cmd::top::run(t),
        Command::Hub(h) => cmd::hub::run(h),
        Command::Completions(c) => cmd::generate::completions(c, Cli::command()),
        Command::Manpages(m) => cmd::generate::manpages(m, Cli::command()),
    }
}
