//! Engine collectors and discovery.
//!
//! Each collector polls one engine's HTTP endpoints at a base URL it is given (so tests can
//! point it at a fake or a real server), parses what it gets with pure functions, and returns
//! an [`EngineRaw`](infermon_model::raw::EngineRaw) in which every endpoint that failed is an
//! `Unavailable` reading with the reason — a hanging or broken engine never stops the agent.
//!
//! [`discover`] finds local `llama-server` processes and the ports they listen on.
#![deny(missing_docs)]

pub mod client;
pub mod discover;
pub mod http;
pub mod llamacpp;
pub mod llamaswap;
pub mod lmstudio;
pub mod ollama;
pub mod promhist;
pub mod sglang;
pub mod vllm;
