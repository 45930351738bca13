//! infermon's data model: raw samples as collectors read them, and the one pure derivation of
//! every figure infermon shows from them.
//!
//! ```
//! use infermon_model::{derive, DeriveSettings, raw::*};
//! # fn sample(mono_ms: u64, tokens: f64, gen_s: f64) -> RawSample {
//! #   infermon_model::testing::sample_with_engine(mono_ms, tokens, gen_s)
//! # }
//! let a = sample(0, 100.0, 1.0);
//! let b = sample(2000, 300.0, 2.0);
//! let snap = derive(Some(&a), &b, &DeriveSettings::default());
//! let e = &snap.engines[0];
//! assert_eq!(e.generation_tokens_per_second, Some(200.0)); // 200 tokens in 1 busy second
//! assert_eq!(e.generation_throughput_tokens_per_second, Some(100.0)); // over 2 s of wall time
//! ```
#![deny(missing_docs)]

pub mod bandwidth;
pub mod civil;
pub mod compare;
mod derive;
pub mod detail;
mod detail_derive;
mod export;
pub mod names;
pub mod rate;
pub mod raw;
pub mod reqstats;
pub mod request;
pub mod series;
mod snapshot;
pub mod stats;
pub mod testing;
pub mod thermal;
pub mod wes;

pub use derive::{derive, DeriveSettings};
pub use snapshot::*;
