//! infermon's diagnosis: turns a stream of [`Frame`]s (built from the agent's snapshots, or
//! from the rows of a recorded trace) into [`Observation`]s that open, update and resolve.
//!
//! Pure: no I/O, no clock. The agent and `infermon replay` call the same [`Detector::step`].
#![deny(missing_docs)]

pub mod frame;
pub mod observation;
pub mod trace;

pub use frame::*;
pub use observation::*;
