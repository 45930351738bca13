//! infermon's diagnosis: turns a stream of [`Frame`]s (built from the agent's snapshots, or
//! from the rows of a recorded trace) into [`Observation`]s that open, update and resolve.
//!
//! Pure: no I/O, no clock. The agent and `infermon replay` call the same [`Detector::step`].
//!
//! Two families of detectors:
//! - **patterns** ([`patterns`](crate::detector::timing)) read a condition from the hardware's
//!   and engines' own signals — throttle reasons, KV use, queue, swap, memory, errors, model
//!   events, processes — and open after holding for a few seconds;
//! - **symptoms** (`ttft_regression`, `tpot_regression`, `throughput_drop`,
//!   `efficiency_drift`) compare a figure with its contextual [`baseline`] (same engine,
//!   model and load) with a one-sided CUSUM and a minimum effect, dated at the change point;
//!   each names the pattern that explains it as its `cause` when one is open.
#![deny(missing_docs)]

pub mod baseline;
mod churn;
mod detector;
mod drift;
pub mod frame;
pub mod observation;
mod patterns;
mod replay;
mod snapshot;
pub mod text;
pub mod trace;

pub use detector::{explained_by, timing, Detector};
pub use frame::*;
pub use observation::*;
pub use replay::{replay, Replay};
pub use snapshot::from_snapshot;
pub use text::Clock;
