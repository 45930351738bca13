//! `infermon fit`: how much memory a llama-server will use, estimated from the GGUF and the
//! server's own command line, and checked against a running server.
//!
//! The estimate follows llama.cpp's allocation rules (see [`kv`] and [`estimate`]) and is
//! tested against a real llama-server's log and resident memory.
#![deny(missing_docs)]

pub mod estimate;
mod flags;
pub mod from_gguf;
pub mod kv;
pub mod model_info;
pub mod params;
pub mod report;
pub mod units;

pub use estimate::{estimate, largest_context, Estimate, EstimateError};
pub use infermon_model::compare::{compare, Comparison};
pub use model_info::{ModelInfo, TensorFacts};
pub use params::{parse_args, ServerParams};
