#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::facts::facts_of;
use super::*;
use crate::progress::Silent;
use infermon_gguf::writer::GgufBuilder;
use infermon_gguf::GgmlType;

#[test]
fn facts_from_file_type_and_tensor_bytes() {
    let bytes = GgufBuilder::new(3)
        .kv("general.architecture", "llama")
        .kv("general.file_type", 2u32)
        .tensor("blk.0.ffn_up.weight", &[64, 32], GgmlType::Q4_0)
        .tensor("blk.0.norm.weight", &[64], GgmlType::F32)
        .build();
    let f = infermon_gguf::parse(&bytes).unwrap();
    let facts = facts_of(&f).unwrap();
    assert_eq!(facts.quant, "Q4_0");
    // 2048 Q4_0 weights = 64 blocks × 18 bytes = 1152; 64 F32 = 256. 8 × 1408 / 2112.
    assert_eq!(facts.parameters, Some(2112));
    let bpw = facts.bits_per_weight.unwrap();
    assert!((bpw - 8.0 * 1408.0 / 2112.0).abs() < 1e-12, "{bpw}");
    assert_eq!(facts.size_bytes, Some(bytes.len() as u64));
}

#[test]
fn quant_is_guessed_without_file_type() {
    let bytes = GgufBuilder::new(3)
        .tensor("a.weight", &[64, 64], GgmlType::Q8_0)
        .tensor("b.weight", &[64, 8], GgmlType::F16)
        .build();
    let facts = facts_of(&infermon_gguf::parse(&bytes).unwrap()).unwrap();
    assert_eq!(facts.quant, "Q8_0 (guessed)");
    let bytes = GgufBuilder::new(3).kv("general.file_type", 99u32).build();
    let facts = facts_of(&infermon_gguf::parse(&bytes).unwrap()).unwrap();
    assert_eq!(
        (facts.quant.as_str(), facts.bits_per_weight),
        ("file_type 99", None)
    );
}

#[test]
fn file_type_names_follow_llama_h() {
    assert_eq!(file_type_name(3), Some("Q4_1"));
    assert_eq!(file_type_name(15), Some("Q4_K_M"));
    assert_eq!(file_type_name(4), None); // removed Q4_1_SOME_F16
}

#[test]
fn missing_file_is_named() {
    let e = model_facts(Path::new("/nonexistent/Q2_K.gguf")).unwrap_err();
    assert!(e.contains("/nonexistent/Q2_K.gguf"), "{e}");
}

/// Speeds and perplexities by file name; a name containing "broken" fails to serve,
/// one containing "noppl" fails perplexity.
struct Fake;

fn table(model: &Path) -> (f64, f64) {
    let n = model.file_name().unwrap().to_string_lossy().into_owned();
    match n.split('.').next().unwrap() {
        "q8" => (40.0, 10.0),
        "q4" => (70.0, 11.0),
        "q3" => (75.0, 16.0),
        _ => (50.0, 12.0),
    }
}

impl Measure for Fake {
    fn measure(
        &self,
        c: &Candidate,
        log: &Path,
    ) -> impl Future<Output = Result<Measured, String>> + Send {
        let model = c.file.clone().unwrap_or_else(|| PathBuf::from(c.label()));
        let log = log.to_path_buf();
        async move {
            assert!(log.to_string_lossy().ends_with(".server.log"));
            if model.to_string_lossy().contains("broken") {
                return Err(format!("llama-server for {} exited", model.display()));
            }
            Ok(Measured {
                tokens_per_second: table(&model).0,
                tpot_ms: Some(1000.0 / table(&model).0),
                served_file: None,
                run: RunReport::default(),
            })
        }
    }
}

impl Score for Fake {
    fn perplexity(&self, model: &Path) -> impl Future<Output = Result<Ppl, String>> + Send {
        let model = model.to_path_buf();
        async move {
            if model.to_string_lossy().contains("noppl") {
                return Err("the text is too short".to_string());
            }
            Ok(Ppl {
                value: table(&model).1,
                stderr: 0.5,
                chunks: 8,
            })
        }
    }
}

fn facts(quant: &str, size: u64) -> ModelFacts {
    ModelFacts {
        quant: quant.to_string(),
        size_bytes: Some(size),
        bits_per_weight: Some(size as f64 / 10.0),
        parameters: Some(80),
        source: "GGUF header".into(),
    }
}

fn cands(v: &[(&str, ModelFacts)]) -> Vec<Candidate> {
    v.iter()
        .map(|(f, facts)| Candidate::file(PathBuf::from(f), facts.clone()))
        .collect()
}

#[tokio::test]
async fn a_failing_file_does_not_stop_the_sweep() {
    let files = cands(&[
        ("q8.gguf", facts("Q8_0", 85)),
        ("broken.gguf", facts("Q5_1", 60)),
        ("q4.gguf", facts("Q4_0", 45)),
        ("q3.noppl.gguf", facts("Q3_K_S", 40)),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let stop = Stop::default();
    let results = measure_files(&files, &Fake, Some(&Fake), dir.path(), &stop, &Silent).await;
    assert_eq!(results.len(), 4);
    let sweep = sweep_report(&results);
    let p = &sweep.points;
    // Absent, not zero: the failed file has no speed, and says why.
    assert_eq!((p[1].tokens_per_second, p[1].tpot_ms), (None, None));
    assert!(
        p[1].error.as_deref().unwrap().contains("exited"),
        "{:?}",
        p[1]
    );
    assert_eq!(p[1].perplexity, Some(12.0)); // perplexity still measured
    assert_eq!(p[3].perplexity, None);
    assert_eq!(
        p[3].perplexity_error.as_deref(),
        Some("the text is too short")
    );
    assert_eq!(
        (p[0].perplexity_stderr, p[0].perplexity_chunks),
        (Some(0.5), Some(8))
    );
    // Eligible: q8 (40, 10) and q4 (70, 11); neither dominates → both on the front.
    // Ratios: q8 (0.571, 1), q4 (1, 0.909): distance to (1, 1) 0.429 vs 0.091 → q4.
    let front: Vec<bool> = p.iter().map(|p| p.on_front).collect();
    assert_eq!(front, vec![true, false, true, false]);
    let knees: Vec<bool> = p.iter().map(|p| p.knee).collect();
    assert_eq!(knees, vec![false, false, true, false]);
    let notes = sweep.notes.join("\n");
    assert!(
        notes.contains("broken.gguf (Q5_1): not measured"),
        "{notes}"
    );
    assert!(
        notes.contains("q3.noppl.gguf (Q3_K_S): no perplexity"),
        "{notes}"
    );
    let run = top_run(&results, &sweep, 4);
    assert_eq!(run.status, RunStatus::Partial);
}

#[tokio::test]
async fn without_a_scorer_there_is_no_perplexity() {
    let files = cands(&[
        ("q8.gguf", facts("Q8_0", 85)),
        ("q4.gguf", facts("Q4_0", 45)),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let stop = Stop::default();
    let results = measure_files(&files, &Fake, None::<&Fake>, dir.path(), &stop, &Silent).await;
    let sweep = sweep_report(&results);
    assert!(sweep.points.iter().all(|p| p.perplexity.is_none()));
    // q4 is faster and smaller: it dominates q8 and is the knee.
    assert_eq!(
        sweep
            .points
            .iter()
            .map(|p| (p.on_front, p.knee))
            .collect::<Vec<_>>(),
        vec![(false, false), (true, true)]
    );
    assert!(sweep.notes.iter().any(|n| n.contains("No perplexity")));
    assert_eq!(top_run(&results, &sweep, 2).status, RunStatus::Complete);
    assert_eq!(top_run(&results, &sweep, 3).status, RunStatus::Partial);
}

fn quick_run(url: &str) -> RunConfig {
    let mut run = RunConfig::new(url);
    run.requests = 3;
    run.warmup = 0;
    run.max_tokens = 8;
    run.hardware.enabled = false;
    run.timeout = Duration::from_secs(5);
    run
}

#[tokio::test]
async fn measure_url_takes_speed_from_the_run() {
    let mock = infermon_mockllm::spawn(infermon_mockllm::MockConfig {
        itl: Duration::from_millis(2),
        ..infermon_mockllm::MockConfig::default()
    })
    .await
    .unwrap();
    let m = measure_url(
        &quick_run("http://127.0.0.1:1"),
        &mock.url(),
        None,
        None,
        &Silent,
    )
    .await
    .unwrap();
    assert!(m.tokens_per_second > 0.0, "{m:?}");
    assert!(m.tpot_ms.unwrap() >= 1.0, "{m:?}");
    assert_eq!(m.run.totals.requests_completed, 3);
    assert_eq!(m.run.target.url, mock.url());
    mock.shutdown().await;
}

#[tokio::test]
async fn measure_url_fails_when_nothing_completes() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let e = measure_url(&quick_run(&url), &url, None, None, &Silent)
        .await
        .unwrap_err();
    assert!(e.contains("requests completed"), "{e}");
}

#[tokio::test]
async fn run_sweep_refuses_missing_files_before_starting() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SweepConfig::new(
        vec![dir.path().join("Q9_9.gguf")],
        RunConfig::new("http://127.0.0.1:1"),
    );
    let e = run_sweep(&cfg, &Silent).await.unwrap_err();
    assert!(
        e.contains("Q9_9.gguf") && e.contains("does not exist"),
        "{e}"
    );
    let cfg = SweepConfig::new(vec![], RunConfig::new("http://127.0.0.1:1"));
    assert!(run_sweep(&cfg, &Silent)
        .await
        .unwrap_err()
        .contains("nothing to sweep"));
    let mut cfg = SweepConfig::new(
        vec![dir.path().join("a.gguf")],
        RunConfig::new("http://127.0.0.1:1"),
    );
    cfg.models = crate::served::parse_specs(&["a".to_string()]).unwrap();
    assert!(run_sweep(&cfg, &Silent)
        .await
        .unwrap_err()
        .contains("not both"));
}
