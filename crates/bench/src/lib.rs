//! `infermon bench`: a lean load generator for OpenAI-compatible endpoints (llama-server,
//! vLLM, SGLang, LM Studio, llama-swap, Ollama's `/v1`) and Ollama's native API, that
//! measures every request with the same code as infermon's proxy (`infermon-reqmeter`) and
//! samples the node while it runs (`infermon-agent`'s collectors), so that a result says
//! not only how fast, but at what power, temperature, memory and swap.
//!
//! - [`run()`] runs one benchmark ([`RunConfig`]: a profile of one or more configurations —
//!   `sync`, a concurrency sweep or request rates — after warm-up requests) and returns a
//!   [`RunReport`]; it never panics and always returns what completed, with `aborted` saying
//!   why it stopped early.
//! - [`report`] writes a [`BenchReport`] as JSON (schema in [`schema`]), Markdown or a
//!   self-contained HTML page with plots; [`compare`] finds regressions between two reports.
//!
//! Definitions are vLLM's `bench serve` (see [`schema`]); percentiles are NumPy-linear
//! (`infermon_model::stats`).
//!
//! ```no_run
//! # async fn demo() {
//! use infermon_bench::{run, Profile, RunConfig, Silent};
//! let mut cfg = RunConfig::new("http://127.0.0.1:8080");
//! cfg.profile = Profile::Concurrency(vec![1, 2, 4]);
//! cfg.requests = 20;
//! cfg.max_tokens = 32;
//! let report = run(&cfg, &Silent).await;
//! println!("{:?}", report.totals.tpot_ms.map(|s| s.mean));
//! # }
//! ```
#![deny(missing_docs)]

pub mod bandwidth;
mod client;
pub mod compare;
mod drive;
mod figures;
mod hw;
pub mod progress;
pub mod prompts;
pub mod report;
pub mod run;
pub mod schema;
mod target;
// Quantization sweep (issue 5 part 3): `sweep.rs`, `server.rs`, `perplexity.rs`, `pareto.rs`.
pub mod pareto;
pub mod perplexity;
pub mod served;
pub mod server;
pub mod sweep;

pub use progress::{Progress, Silent};
pub use run::{run, HwConfig, Profile, PromptSource, RunConfig, Stop};
pub use schema::{BenchReport, RunReport, SweepPoint, SweepReport};
