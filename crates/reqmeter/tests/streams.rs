#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The meter against streams cut at every possible byte, CRLF line ends, NDJSON, whole bodies
//! and broken input. Streams here are constructed to match what vLLM / llama.cpp / Ollama send.

use std::time::{Duration, Instant};

use infermon_model::request::{Api, Outcome};
use infermon_reqmeter::{prepare, End, Meter};

const USAGE_EVENT: &str =
    "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":3}}\n\n";

fn openai_stream(eol: &str) -> String {
    let mut s = String::new();
    for d in [
        r#"{"role":"assistant","content":""}"#,
        r#"{"content":"a"}"#,
        r#"{"content":"b"}"#,
        r#"{"content":"c"}"#,
    ] {
        s += &format!(
            "data: {{\"id\":\"c\",\"choices\":[{{\"index\":0,\"delta\":{d}}}]}}{eol}{eol}"
        );
    }
    s += &USAGE_EVENT.replace("\n", eol);
    s += &format!("data: [DONE]{eol}{eol}");
    s
}

/// Feeds `body` in two pieces split at `cut`, 10 ms apart; returns what the client got.
fn run(
    api: Api,
    req: &str,
    ct: &str,
    body: &str,
    cut: usize,
) -> (Vec<u8>, infermon_model::request::RequestRecord) {
    let p = prepare(api, req.as_bytes());
    let t0 = Instant::now();
    let mut m = Meter::new(api, &p, t0);
    m.on_head(200, Some(ct), t0);
    let mut client = Vec::new();
    let (a, b) = body.as_bytes().split_at(cut);
    for (i, part) in [a, b].into_iter().enumerate() {
        let at = t0 + Duration::from_millis(10 * (i as u64 + 1));
        match m.on_data(part, at) {
            None => client.extend_from_slice(part),
            Some(x) => client.extend_from_slice(&x),
        }
    }
    if let Some(x) = m.flush(t0 + Duration::from_millis(30)) {
        client.extend_from_slice(&x);
    }
    let r = m.finish(End::Complete, t0 + Duration::from_millis(30), "http://up");
    (client, r)
}

#[test]
fn injected_usage_is_removed_wherever_the_stream_is_cut() {
    for eol in ["\n", "\r\n"] {
        let body = openai_stream(eol);
        let expected = body.replace(&USAGE_EVENT.replace("\n", eol), "");
        for cut in 0..=body.len() {
            let (client, r) = run(
                Api::OpenaiChat,
                r#"{"model":"m","stream":true}"#,
                "text/event-stream",
                &body,
                cut,
            );
            assert_eq!(String::from_utf8(client).unwrap(), expected, "cut at {cut}");
            assert_eq!(r.completion_tokens, Some(3), "cut at {cut}");
            assert_eq!(r.prompt_tokens, Some(11));
            assert_eq!(r.token_chunks, 3, "cut at {cut}");
            assert_eq!(r.outcome, Outcome::Ok);
            assert!(r.usage_injected);
        }
    }
}

#[test]
fn fields_riding_on_the_usage_chunk_move_to_the_finishing_chunk() {
    // llama.cpp puts `timings` on the finishing chunk, or on the usage chunk when usage was
    // asked for; a client that did not ask must still get them, where it would have.
    let fin = "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"length\",\"index\":0}],\"id\":\"c\"}\n\n";
    let body = format!(
        "data: {{\"choices\":[{{\"delta\":{{\"content\":\"a\"}},\"index\":0}}]}}\n\n{fin}\
         data: {{\"choices\":[],\"id\":\"c\",\"usage\":{{\"completion_tokens\":1,\"prompt_tokens\":2}},\
         \"timings\":{{\"predicted_n\":1,\"predicted_ms\":5.0}}}}\n\ndata: [DONE]\n\n"
    );
    for cut in 0..=body.len() {
        let (client, r) = run(
            Api::OpenaiChat,
            r#"{"stream":true}"#,
            "text/event-stream",
            &body,
            cut,
        );
        let client = String::from_utf8(client).unwrap();
        let expected_fin = "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"length\",\"index\":0}],\"id\":\"c\",\"timings\":{\"predicted_ms\":5.0,\"predicted_n\":1}}\n\n";
        assert!(client.contains(expected_fin), "cut {cut}: {client}");
        assert!(!client.contains("usage"), "cut {cut}: {client}");
        assert!(client.ends_with("data: [DONE]\n\n"));
        assert_eq!(r.server_timings.unwrap().predicted_n, Some(1));
    }
    // Without a usage chunk after it, the finishing chunk passes unchanged.
    let plain = format!("{fin}data: [DONE]\n\n");
    let (client, _) = run(
        Api::OpenaiChat,
        r#"{"stream":true}"#,
        "text/event-stream",
        &plain,
        10,
    );
    assert_eq!(String::from_utf8(client).unwrap(), plain);
}

#[test]
fn a_client_that_asked_for_usage_gets_every_byte_unchanged() {
    let body = openai_stream("\n");
    for cut in [0, 7, 100, body.len()] {
        let req = r#"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#;
        let (client, r) = run(
            Api::OpenaiChat,
            req,
            "text/event-stream; charset=utf-8",
            &body,
            cut,
        );
        assert_eq!(client, body.as_bytes());
        assert!(!r.usage_injected);
        assert_eq!(r.completion_tokens, Some(3));
    }
}

#[test]
fn timing_of_token_chunks() {
    // Tokens "a" and "b" in the first piece (t=10 ms), "c" in the second (t=20 ms).
    let body = openai_stream("\n");
    let cut = body.find(r#"{"content":"c"}"#).unwrap();
    let (_, r) = run(
        Api::OpenaiChat,
        r#"{"stream":true}"#,
        "text/event-stream",
        &body,
        cut,
    );
    assert_eq!(r.ttft_ms, Some(10.0));
    assert_eq!(r.itl_gaps_ms, vec![0.0, 10.0]);
    assert_eq!(r.e2e_ms, 30.0);
    assert_eq!(r.tpot_ms, Some(10.0)); // (30 − 10) / (3 − 1)
    assert_eq!(r.model, "unknown");
}

#[test]
fn ollama_ndjson_stream() {
    let body = concat!(
        "{\"model\":\"llama3\",\"message\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"done\":false}\n",
        "{\"model\":\"llama3\",\"message\":{\"role\":\"assistant\",\"content\":\"!\"},\"done\":false}\n",
        "{\"model\":\"llama3\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\",",
        "\"total_duration\":30000000,\"load_duration\":1000000,\"prompt_eval_count\":8,\"prompt_eval_duration\":4000000,",
        "\"eval_count\":2,\"eval_duration\":20000000}\n"
    );
    for cut in 0..=body.len() {
        let (client, r) = run(
            Api::OllamaChat,
            r#"{"model":"llama3"}"#,
            "application/x-ndjson",
            body,
            cut,
        );
        assert_eq!(client, body.as_bytes());
        assert_eq!(r.completion_tokens, Some(2));
        assert_eq!(r.prompt_tokens, Some(8));
        assert_eq!(r.server_timings.unwrap().predicted_per_token_ms, Some(10.0));
        assert!(r.stream && r.ttft_ms.is_some());
        assert_eq!(r.outcome, Outcome::Ok);
    }
}

#[test]
fn whole_answers_errors_and_garbage() {
    let whole = r#"{"choices":[{"message":{"content":"hello"}}],"usage":{"prompt_tokens":4,"completion_tokens":2},"timings":{"predicted_n":2,"predicted_ms":9.0,"predicted_per_token_ms":4.5}}"#;
    let (client, r) = run(
        Api::OpenaiChat,
        r#"{"model":"m"}"#,
        "application/json",
        whole,
        5,
    );
    assert_eq!(client, whole.as_bytes());
    assert_eq!(
        (r.completion_tokens, r.ttft_ms, r.tpot_ms),
        (Some(2), Some(10.0), None)
    );
    assert_eq!(r.server_timings.unwrap().predicted_per_token_ms, Some(4.5));

    let body = "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {not json\n\ndata: [DONE]\n\n";
    let (_, r) = run(
        Api::OpenaiChat,
        r#"{"stream":true,"stream_options":{"include_usage":true}}"#,
        "text/event-stream",
        body,
        3,
    );
    assert_eq!(r.outcome, Outcome::Malformed);
    assert!(r.error.unwrap().contains("event 2 is not JSON"));

    let body = "data: {\"error\":{\"message\":\"out of memory\"}}\n\n";
    let (_, r) = run(
        Api::OpenaiChat,
        r#"{"stream":true}"#,
        "text/event-stream",
        body,
        0,
    );
    assert_eq!(
        (r.outcome, r.error.as_deref()),
        (Outcome::StreamError, Some("out of memory"))
    );

    let p = prepare(Api::OpenaiChat, br#"{"stream":true}"#);
    let t0 = Instant::now();
    let mut m = Meter::new(Api::OpenaiChat, &p, t0);
    m.on_head(503, Some("application/json"), t0);
    m.on_data(br#"{"error":{"message":"Loading model","code":503}}"#, t0);
    let r = m.finish(End::Complete, t0, "u");
    assert_eq!(
        (r.outcome, r.status, r.ttft_ms),
        (Outcome::HttpError, 503, None)
    );
    assert_eq!(r.error.as_deref(), Some("Loading model"));
}

#[test]
fn broken_streams_keep_what_was_measured() {
    let p = prepare(Api::OpenaiChat, br#"{"stream":true}"#);
    let t0 = Instant::now();
    let mut m = Meter::new(Api::OpenaiChat, &p, t0);
    m.on_head(200, Some("text/event-stream"), t0);
    m.on_data(
        b"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n",
        t0 + Duration::from_millis(4),
    );
    let r = m.finish(
        End::UpstreamFailed("connection reset".into()),
        t0 + Duration::from_millis(9),
        "u",
    );
    assert_eq!(r.outcome, Outcome::UpstreamFailed);
    assert_eq!(
        (r.ttft_ms, r.tpot_ms, r.completion_tokens),
        (Some(4.0), None, None)
    );
    assert_eq!(r.token_chunks, 1);
}

/// Feeds `body[..upto]` and finishes as the client having gone away.
fn gone_after(api: Api, req: &str, ct: &str, body: &str, upto: usize) -> (u16, Outcome, f64) {
    let p = prepare(api, req.as_bytes());
    let t0 = Instant::now();
    let mut m = Meter::new(api, &p, t0);
    m.on_head(200, Some(ct), t0);
    m.on_data(&body.as_bytes()[..upto], t0 + Duration::from_millis(10));
    let r = m.finish(End::ClientGone, t0 + Duration::from_secs(5), "http://up");
    (r.status, r.outcome, r.e2e_ms)
}

#[test]
fn a_client_leaving_after_the_terminal_event_did_not_cancel() {
    let ndjson = concat!(
        "{\"message\":{\"content\":\"a\"},\"done\":false}\n",
        "{\"message\":{\"content\":\"\"},\"done\":true,\"eval_count\":1}\n",
    );
    let whole = r#"{"choices":[{"message":{"content":"a"}}],"usage":{"completion_tokens":1}}"#;
    let responses = concat!(
        "event: response.output_text.delta\n",
        "data: {\"type\":\"response.output_text.delta\",\"delta\":\"a\"}\n\n",
        "event: response.completed\n",
        "data: {\"type\":\"response.completed\",\"response\":{\"usage\":{\"output_tokens\":1}}}\n\n",
    );
    let sse = openai_stream("\n");
    let chat = r#"{"model":"m","stream":true}"#;
    let cases = [
        (Api::OpenaiChat, chat, "text/event-stream", sse.as_str()),
        (
            Api::OpenaiChat,
            r#"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#,
            "text/event-stream",
            sse.as_str(),
        ),
        (Api::OllamaChat, chat, "application/x-ndjson", ndjson),
        (Api::OpenaiResponses, chat, "text/event-stream", responses),
        (
            Api::OpenaiChat,
            r#"{"model":"m"}"#,
            "application/json",
            whole,
        ),
    ];
    for (api, req, ct, body) in cases {
        // An event or line counts once its end arrived; a whole body once it parses.
        let end = if ct == "application/json" {
            body.trim_end().len()
        } else {
            body.len()
        };
        for upto in 0..=body.len() {
            let (_, outcome, e2e) = gone_after(api, req, ct, body, upto);
            if upto < end {
                assert_eq!(outcome, Outcome::Cancelled, "{ct} cut at {upto}");
            } else {
                assert_eq!(outcome, Outcome::Ok, "{ct} cut at {upto}");
                // Finished when the terminal event arrived, not when the client left.
                assert!(e2e < 100.0, "{ct}: {e2e}");
            }
        }
    }
}
