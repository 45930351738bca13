//! The three reference fixtures in `tests/fixtures/` (see the README there for provenance).

use infermon_promtext::{parse, Exposition, MetricType};

fn fixture(name: &str) -> Exposition {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    parse(&text).unwrap_or_else(|e| panic!("parsing {path}: {e}"))
}

#[test]
fn llamacpp_current_default() {
    let expo = fixture("llamacpp_01_current_default.prom");
    assert_eq!(expo.samples.len(), 11);
    assert_eq!(expo.types.len(), 11);
    assert_eq!(expo.help.len(), 11);
    assert!(expo
        .samples
        .iter()
        .all(|s| s.labels.is_empty() && s.timestamp_ms.is_none()));

    assert_eq!(expo.get("llamacpp:tokens_predicted_total"), Some(9127.0));
    assert_eq!(expo.get("llamacpp:prompt_tokens_total"), Some(18342.0));
    assert_eq!(expo.get("llamacpp:prompt_seconds_total"), Some(12.871));
    assert_eq!(
        expo.get("llamacpp:tokens_predicted_seconds_total"),
        Some(187.554)
    );
    assert_eq!(expo.get("llamacpp:n_decode_total"), Some(7342.0));
    assert_eq!(expo.get("llamacpp:n_tokens_max"), Some(9814.0));
    assert_eq!(expo.get("llamacpp:n_busy_slots_per_decode"), Some(1.27363));
    assert_eq!(expo.get("llamacpp:prompt_tokens_seconds"), Some(1425.05));
    assert_eq!(expo.get("llamacpp:predicted_tokens_seconds"), Some(48.6634));
    assert_eq!(expo.get("llamacpp:requests_processing"), Some(2.0));
    assert_eq!(expo.get("llamacpp:requests_deferred"), Some(0.0));
    assert_eq!(expo.get("llamacpp:no_such_metric"), None);

    assert_eq!(
        expo.metric_type("llamacpp:tokens_predicted_total"),
        Some(MetricType::Counter)
    );
    // llama-server declares this average as a counter; the parser reports what it declares.
    assert_eq!(
        expo.metric_type("llamacpp:n_busy_slots_per_decode"),
        Some(MetricType::Counter)
    );
    assert_eq!(
        expo.metric_type("llamacpp:requests_processing"),
        Some(MetricType::Gauge)
    );
    assert_eq!(
        expo.help.get("llamacpp:n_decode_total").map(String::as_str),
        Some("Total number of llama_decode() calls")
    );
    // Input order is kept.
    assert_eq!(expo.samples[0].name, "llamacpp:prompt_tokens_total");
    assert_eq!(expo.samples[10].name, "llamacpp:requests_deferred");
}

#[test]
fn vllm_idle_single_engine() {
    let expo = fixture("vllm_01_idle_single_engine.prom");
    assert_eq!(expo.samples.len(), 11);
    assert_eq!(expo.types.len(), 9);

    // Every vLLM series is labelled, so `get` (unlabelled only) finds nothing.
    assert_eq!(expo.get("vllm:generation_tokens_total"), None);
    assert_eq!(expo.sum("vllm:generation_tokens_total"), Some(2048.0));
    assert_eq!(expo.sum("vllm:prompt_tokens_total"), Some(4096.0));
    assert_eq!(expo.sum("vllm:prefix_cache_hits_total"), Some(1024.0));
    assert_eq!(expo.sum("vllm:num_requests_running"), Some(0.0));
    assert_eq!(expo.sum("vllm:kv_cache_usage_perc"), Some(0.0));
    assert_eq!(
        expo.sum("vllm:prefix_cache_queries_created"),
        Some(1_756_123_456.7)
    );
    assert_eq!(expo.sum("vllm:no_such_metric"), None);

    let gen = expo
        .find("vllm:generation_tokens_total")
        .collect::<Vec<_>>();
    assert_eq!(gen.len(), 1);
    assert_eq!(gen[0].label("engine"), Some("0"));
    assert_eq!(gen[0].label("model_name"), Some("Qwen/Qwen3-8B"));
    assert_eq!(gen[0].label("finished_reason"), None);

    assert_eq!(expo.find("vllm:request_success_total").count(), 3);
    assert_eq!(expo.sum("vllm:request_success_total"), Some(8.0));
    let by_reason = |reason: &str| {
        expo.find("vllm:request_success_total")
            .find(|s| s.label("finished_reason") == Some(reason))
            .map(|s| s.value)
    };
    assert_eq!(by_reason("stop"), Some(7.0));
    assert_eq!(by_reason("length"), Some(1.0));
    assert_eq!(by_reason("abort"), Some(0.0));
    assert_eq!(
        expo.find("vllm:request_success_total")
            .next()
            .map(|s| s.labels.clone()),
        Some(vec![
            ("engine".to_owned(), "0".to_owned()),
            ("finished_reason".to_owned(), "stop".to_owned()),
            ("model_name".to_owned(), "Qwen/Qwen3-8B".to_owned()),
        ])
    );

    assert_eq!(
        expo.metric_type("vllm:num_requests_running"),
        Some(MetricType::Gauge)
    );
    assert_eq!(
        expo.metric_type("vllm:request_success_total"),
        Some(MetricType::Counter)
    );
    assert_eq!(
        expo.help
            .get("vllm:kv_cache_usage_perc")
            .map(String::as_str),
        Some("KV-cache usage. 1 means 100 percent usage.")
    );
}

#[test]
fn vllm_ttft_histogram() {
    let expo = fixture("vllm_02_ttft_histogram.prom");
    let family = "vllm:time_to_first_token_seconds";
    assert_eq!(expo.metric_type(family), Some(MetricType::Histogram));
    assert_eq!(
        expo.metric_type("vllm:time_to_first_token_seconds_bucket"),
        None
    );

    let buckets = expo
        .find("vllm:time_to_first_token_seconds_bucket")
        .collect::<Vec<_>>();
    assert_eq!(buckets.len(), 23);
    assert_eq!(buckets[0].label("le"), Some("0.001"));
    assert_eq!(buckets[22].label("le"), Some("+Inf"));
    // Cumulative buckets never decrease.
    assert!(buckets.windows(2).all(|w| w[0].value <= w[1].value));

    let le = |bound: &str| {
        buckets
            .iter()
            .find(|s| s.label("le") == Some(bound))
            .map(|s| s.value)
    };
    assert_eq!(le("0.08"), Some(0.0));
    assert_eq!(le("0.1"), Some(1.0));
    assert_eq!(le("0.25"), Some(4.0));
    assert_eq!(le("0.5"), Some(7.0));
    assert_eq!(le("1.0"), Some(8.0));

    let count = expo.sum("vllm:time_to_first_token_seconds_count");
    assert_eq!(count, Some(8.0));
    assert_eq!(count, le("+Inf"));
    assert_eq!(expo.sum("vllm:time_to_first_token_seconds_sum"), Some(2.54));
}

#[test]
fn fixtures_survive_crlf_line_endings() {
    for name in [
        "llamacpp_01_current_default.prom",
        "vllm_01_idle_single_engine.prom",
        "vllm_02_ttft_histogram.prom",
    ] {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let crlf = text.replace('\n', "\r\n");
        assert_eq!(parse(&crlf), Ok(fixture(name)), "{name}");
        let no_final_newline = text.trim_end_matches('\n');
        assert_eq!(parse(no_final_newline), Ok(fixture(name)), "{name}");
    }
}
