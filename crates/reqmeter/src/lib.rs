//! Measures inference requests on the wire, for the proxy and for `infermon bench`: one
//! implementation of TTFT, TPOT, ITL and E2E.
//!
//! [`prepare`] inspects a request body (model, whether it streams) and, for OpenAI streams
//! that did not ask for usage, asks for it. A [`Meter`] then watches the answer's bytes as
//! they pass — SSE events, NDJSON lines or one JSON body — timestamps every chunk that carries
//! a token, takes token counts from `usage` or the engine's final object, and removes the
//! usage chunk again when it was infermon that asked for it. It never needs more than the
//! current event in memory, except for non-streamed answers, which are parsed whole.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use infermon_model::request::{Api, Outcome};
//! use infermon_reqmeter::{prepare, End, Meter};
//!
//! let req = br#"{"model":"m","stream":true,"messages":[]}"#;
//! let p = prepare(Api::OpenaiChat, req);
//! assert!(p.usage_injected); // the body sent upstream now asks for usage
//! let t0 = Instant::now();
//! let mut m = Meter::new(Api::OpenaiChat, &p, t0);
//! m.on_head(200, Some("text/event-stream"), t0 + Duration::from_millis(5));
//! let ev = |s: &str| format!("data: {s}\n\n");
//! for (ms, e) in [
//!     (10, ev(r#"{"choices":[{"delta":{"content":"Hi"}}]}"#)),
//!     (30, ev(r#"{"choices":[{"delta":{"content":" there"}}]}"#)),
//!     (50, ev(r#"{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":2}}"#)),
//!     (51, ev("[DONE]")),
//! ] {
//!     let out = m.on_data(e.as_bytes(), t0 + Duration::from_millis(ms));
//!     // `None`: forward the bytes as they came; the usage chunk infermon asked for is
//!     // replaced by nothing, so it never reaches the client
//!     assert_eq!(out.map(|b| b.is_empty()), (ms == 50).then_some(true));
//! }
//! let r = m.finish(End::Complete, t0 + Duration::from_millis(51), "http://u");
//! assert_eq!(r.outcome, Outcome::Ok);
//! assert_eq!(r.ttft_ms, Some(10.0));
//! assert_eq!(r.completion_tokens, Some(2));
//! assert_eq!(r.tpot_ms, Some(41.0)); // (51 − 10) / (2 − 1)
//! ```
#![deny(missing_docs)]

mod events;
mod fast;
mod meter;
mod prepare;

pub use meter::{End, Meter};
pub use prepare::{prepare, Prepared};
