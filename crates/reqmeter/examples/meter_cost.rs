//! CPU cost of metering one streamed answer: `cargo run --release -p infermon-reqmeter
//! --example meter_cost [TOKENS] [ROUNDS]`. Feeds the events of an OpenAI chat stream (the
//! shape llama.cpp and vLLM send, one event per chunk, as a proxy sees them) through a
//! `Meter` with usage injected and stripped, and prints the time per answer and per event.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use infermon_model::request::Api;
use infermon_reqmeter::{prepare, End, Meter};

fn main() {
    let mut args = std::env::args().skip(1);
    let tokens: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(64);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let mut events = Vec::new();
    for i in 0..tokens {
        events.push(format!(
            "data: {{\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\",\"created\":1764650000,\"model\":\"SmolLM2-135M-Instruct\",\"system_fingerprint\":\"b1-abc\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\" tok{i}\"}},\"logprobs\":null,\"finish_reason\":null}}]}}\n\n"
        ));
    }
    events.push("data: {\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\",\"created\":1764650000,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}\n\n".into());
    events.push(format!("data: {{\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\",\"created\":1764650000,\"model\":\"m\",\"choices\":[],\"usage\":{{\"prompt_tokens\":12,\"completion_tokens\":{tokens},\"total_tokens\":{}}},\"timings\":{{\"prompt_n\":12,\"prompt_ms\":3.1,\"predicted_n\":{tokens},\"predicted_ms\":120.5,\"predicted_per_token_ms\":1.9}}}}\n\n", tokens + 12));
    events.push("data: [DONE]\n\n".into());
    let body = br#"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let p = prepare(Api::OpenaiChat, body);
    let t0 = Instant::now();
    let mut total = Duration::ZERO;
    for _ in 0..rounds {
        let start = Instant::now();
        let mut m = Meter::new(Api::OpenaiChat, &p, t0);
        m.on_head(200, Some("text/event-stream"), t0);
        for e in &events {
            black_box(m.on_data(e.as_bytes(), Instant::now()));
        }
        black_box(m.flush(Instant::now()));
        let r = m.finish(End::Complete, Instant::now(), "http://u");
        assert_eq!(r.completion_tokens, Some(tokens as u64));
        total += start.elapsed();
    }
    let per = total.as_secs_f64() / rounds as f64;
    println!(
        "{tokens} tokens, {} events: {:.1} µs per answer, {:.3} µs per event",
        events.len(),
        per * 1e6,
        per * 1e6 / events.len() as f64
    );
}
