//! `run` against the mock server: figures, warm-up, faults, unreachable endpoints.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use infermon_bench::{run, Profile, RunConfig, Silent};
use infermon_mockllm::{spawn, MockConfig};

fn cfg(url: &str) -> RunConfig {
    let mut c = RunConfig::new(url);
    c.hardware.enabled = false;
    c.requests = 20;
    c.max_tokens = 8;
    c.input_tokens_for_tests();
    c
}

trait Small {
    fn input_tokens_for_tests(&mut self);
}
impl Small for RunConfig {
    fn input_tokens_for_tests(&mut self) {
        self.prompts = infermon_bench::PromptSource::Synthetic { input_tokens: 16 };
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measures_every_request_like_vllm() {
    let mock = spawn(MockConfig {
        ttft: Duration::from_millis(20),
        itl: Duration::from_millis(5),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let mut c = cfg(&mock.url());
    c.profile = Profile::Concurrency(vec![1, 2]);
    let r = run(&c, &Silent).await;
    assert_eq!(r.aborted, None);
    assert_eq!(r.configs.len(), 2);
    assert_eq!(r.totals.requests_completed, 40);
    assert_eq!(r.totals.requests_failed, 0);
    assert_eq!(r.totals.completion_tokens_total, Some(320));
    assert_eq!(r.warmup.completed, 1);
    assert_eq!(r.warmup.completion_tokens, 8);
    let ttft = r.totals.ttft_ms.unwrap();
    assert!(ttft.mean >= 20.0 && ttft.mean < 60.0, "{ttft:?}");
    let tpot = r.totals.tpot_ms.unwrap();
    assert!((tpot.mean - 5.0).abs() < 1.5, "{tpot:?}");
    assert_eq!(r.totals.itl_ms.unwrap().count, 40 * 7);
    assert_eq!(r.target.model.as_deref(), Some("mock"));
    assert_eq!(r.configs[1].requests.len(), 20);
    // 20 requests + 1 warm-up + 20 per config: the mock saw every one
    assert_eq!(mock.stats().completed, 41);
    mock.shutdown().await;
}

async fn with_fault(fault: &str, timeout: Duration) -> infermon_bench::RunReport {
    let mock = spawn(MockConfig {
        itl: Duration::from_millis(1),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let mut c = cfg(&mock.url());
    c.profile = Profile::Concurrency(vec![2]);
    c.headers = vec![("x-mock-fault".into(), fault.into())];
    c.timeout = timeout;
    let r = run(&c, &Silent).await;
    mock.shutdown().await;
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_counted_with_their_outcome() {
    for (fault, outcome, says) in [
        ("status:503", "http_error", "503"),
        ("malformed", "malformed", "not JSON"),
        ("die-after:3", "upstream_failed", "broke off"),
    ] {
        let r = with_fault(fault, Duration::from_secs(10)).await;
        assert_eq!(r.aborted, None, "{fault}");
        assert_eq!(r.totals.requests_failed, 20, "{fault}");
        assert_eq!(r.totals.requests_completed, 0, "{fault}");
        assert_eq!(
            r.totals.outcomes.get(outcome),
            Some(&20),
            "{fault}: {:?}",
            r.totals.outcomes
        );
        assert!(
            r.totals.errors[0].message.contains(says),
            "{fault}: {:?}",
            r.totals.errors
        );
        // nothing measured: null, not zero
        assert_eq!(r.totals.completion_tokens_total, None, "{fault}");
        assert_eq!(r.totals.output_tokens_per_second, None, "{fault}");
        assert!(
            r.totals.ttft_ms.is_none() && r.totals.tpot_ms.is_none(),
            "{fault}"
        );
        assert_eq!(r.status, infermon_bench::schema::RunStatus::Partial);
        assert_eq!(r.configs[0].requests.len(), 20);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_stops_the_run_with_a_reason() {
    let r = with_fault("hang", Duration::from_millis(300)).await;
    let why = r.aborted.clone().unwrap();
    assert!(
        why.contains("does not answer") && why.contains("timed out"),
        "{why}"
    );
    assert!(r.totals.outcomes.get("timeout").copied().unwrap_or(0) >= 3);
    assert!(r.totals.requests_not_sent > 0);
    assert_eq!(r.totals.requests_completed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_url_stops_the_run_and_names_it() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let mut c = cfg(&url);
    c.profile = Profile::Concurrency(vec![2, 4]);
    let r = run(&c, &Silent).await;
    let why = r.aborted.clone().unwrap();
    assert!(
        why.contains(&url) && why.contains("cannot connect"),
        "{why}"
    );
    assert!(r.totals.requests_failed >= 3, "{:?}", r.totals);
    assert_eq!(
        r.totals.outcomes.get("unreachable"),
        Some(&r.totals.requests_failed)
    );
    assert_eq!(
        r.totals.requests_sent + r.totals.requests_not_sent,
        40,
        "{:?}",
        r.totals
    );
    assert_eq!(r.configs.len(), 1);
    assert_eq!(r.totals.completion_tokens_total, None);
    assert!(r.totals.e2e_ms.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_profile_paces_requests_and_ollama_is_measured() {
    let mock = spawn(MockConfig::default()).await.unwrap();
    let mut c = cfg(&mock.url());
    c.requests = 10;
    c.warmup = 0;
    c.profile = Profile::Rate {
        rates: vec![Some(20.0)],
        poisson: false,
        max_concurrency: None,
    };
    let r = run(&c, &Silent).await;
    assert_eq!(r.totals.requests_completed, 10);
    let last = r.configs[0]
        .requests
        .iter()
        .map(|q| q.start_ms)
        .fold(0.0, f64::max);
    assert!((440.0..700.0).contains(&last), "{last}");

    let mut o = cfg(&mock.url());
    o.api = Some(infermon_model::request::Api::OllamaChat);
    o.model = Some("llama3".into());
    o.requests = 3;
    let r = run(&o, &Silent).await;
    assert_eq!(r.target.endpoint, format!("{}/api/chat", mock.url()));
    assert_eq!(r.totals.completion_tokens_total, Some(24));
    assert!(r.totals.server_tpot_ms.is_some());
    mock.shutdown().await;
}
