//! Quantization sweep (`infermon bench sweep A.gguf B.gguf …`): the same load profile and the
//! same perplexity measurement on every quantization of a model, then the Pareto front of
//! speed vs perplexity vs size and its knee ([`crate::pareto`]).
//!
//! For each file, in the order given: read its header (quantization from `general.file_type`,
//! bits per weight = 8 × tensor bytes ÷ parameters), start `llama-server` on it
//! ([`crate::server`]), run the profile ([`crate::run()`]) against it, stop it, then — with
//! the server gone, so that the two do not share the CPU — run `llama-perplexity` on the text
//! ([`crate::perplexity`]). A file that fails (server, run or perplexity) stays in the report
//! with its error and the sweep goes on with the next; the report is then `partial`. Missing
//! or unreadable files, a missing server binary or a missing text stop the sweep before
//! anything starts.
//!
//! Instead of files, the models a running server offers by name can be swept
//! (`--url URL --models 'qwen*'`, llama-swap, Ollama or any OpenAI-compatible router; see
//! [`crate::served`]): each is run in turn through that server, its GGUF file found where the
//! server tells (Ollama's `/api/show`, the llama-server behind llama-swap) or given as
//! `NAME=FILE.gguf`, and a model the sweep loaded is unloaded after its turn.
//!
//! The returned [`BenchReport`] carries the sweep in `sweep`; its top-level run is the knee's
//! (else the first file that ran), so the usual tables describe the recommended quantization.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod facts;

pub(crate) use facts::{bits_per_weight, file_type_names};
pub use facts::{file_type_name, model_facts, ModelFacts};

use crate::pareto::{self, Objectives, Quality};
use crate::perplexity::{self, PerplexityOptions, Ppl};
use crate::progress::Progress;
use crate::run::{RunConfig, Stop};
use crate::schema::{BenchReport, RunReport, RunStatus, SweepPoint, SweepReport};
use crate::served::{self, Catalog, ModelSpec};
use crate::server::{LlamaServer, ServerOptions};

/// What `infermon bench sweep` was asked to do.
#[derive(Debug, Clone)]
pub struct SweepConfig {
    /// GGUF files to compare (each served by a llama-server of its own).
    pub files: Vec<PathBuf>,
    /// Or: models the server at `run.url` offers by name (names, `*` patterns,
    /// `NAME=FILE.gguf`).
    pub models: Vec<ModelSpec>,
    /// With `models`: unload each model the sweep loaded after its turn (default on).
    pub unload: bool,
    /// `llama-server` binary (else `INFERMON_LLAMA_SERVER`, else `PATH`).
    pub server: Option<PathBuf>,
    /// `llama-perplexity` binary (else `INFERMON_LLAMA_PERPLEXITY`, else `PATH`; when none is
    /// found perplexity is skipped with a note).
    pub perplexity: Option<PathBuf>,
    /// Text to measure perplexity on; `None`: no perplexity.
    pub text: Option<PathBuf>,
    /// Context size of the perplexity run (`-c`; default 512, llama.cpp's).
    pub ctx: Option<u32>,
    /// Score only the first N chunks of the text (`--chunks`).
    pub ppl_chunks: Option<u32>,
    /// Batch size of the perplexity run (`-b`).
    pub ppl_batch: Option<u32>,
    /// Context size of the server (`-c`); `None`: 4096.
    pub server_ctx: Option<u32>,
    /// CPU threads of the server and of the perplexity run (`-t`); `None`: every CPU.
    pub threads: Option<u32>,
    /// Extra arguments for every server (`-ngl 99`, …).
    pub server_args: Vec<String>,
    /// How long a server may take to answer `/health`.
    pub ready_timeout: Duration,
    /// Where the servers' logs go (`<file stem>.server.log`); `None`: a directory under the
    /// system's temporary directory.
    pub log_dir: Option<PathBuf>,
    /// The load profile for every file; its `url` is replaced by each server's.
    pub run: RunConfig,
}

impl SweepConfig {
    /// A sweep of `files` with `run`, every other setting at its default.
    pub fn new(files: Vec<PathBuf>, run: RunConfig) -> Self {
        SweepConfig {
            files,
            models: Vec::new(),
            unload: true,
            server: None,
            perplexity: None,
            text: None,
            ctx: None,
            ppl_chunks: None,
            ppl_batch: None,
            server_ctx: None,
            threads: None,
            server_args: Vec::new(),
            ready_timeout: Duration::from_secs(300),
            log_dir: None,
            run,
        }
    }

    fn threads(&self) -> u32 {
        self.threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| u32::try_from(n.get()).unwrap_or(1))
                .unwrap_or(1)
        })
    }
}

/// One model to measure: a GGUF file infermon serves, or a model a server offers by name.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The model's name on the server (model-list sweeps).
    pub model: Option<String>,
    /// Its GGUF file on this machine, when known.
    pub file: Option<PathBuf>,
    /// What is known about it.
    pub facts: ModelFacts,
}

impl Candidate {
    /// A GGUF file with its header's facts.
    pub fn file(file: PathBuf, facts: ModelFacts) -> Self {
        Candidate {
            model: None,
            file: Some(file),
            facts,
        }
    }

    /// How it is named in messages: the model name, else the file.
    pub fn label(&self) -> String {
        match (&self.model, &self.file) {
            (Some(m), _) => m.clone(),
            (None, Some(f)) => f.display().to_string(),
            (None, None) => "model".into(),
        }
    }
}

/// What the load run measured on one model.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// Output tokens per second over the run.
    pub tokens_per_second: f64,
    /// Mean time per output token after the first, ms.
    pub tpot_ms: Option<f64>,
    /// The model file the engine said it serves, when it exists on this machine.
    pub served_file: Option<PathBuf>,
    /// The whole run.
    pub run: RunReport,
}

/// Serves a model (or has it served) and runs the load profile on it.
pub trait Measure {
    /// Measures `c`; `log` is where a started server should log.
    fn measure(
        &self,
        c: &Candidate,
        log: &Path,
    ) -> impl Future<Output = Result<Measured, String>> + Send;
}

/// Scores a model's quality.
pub trait Score {
    /// Perplexity of `model`.
    fn perplexity(&self, model: &Path) -> impl Future<Output = Result<Ppl, String>> + Send;
}

/// [`Measure`] with a real llama-server and [`crate::run()`].
pub struct ServerRun<'a> {
    /// How to start the server.
    pub server: ServerOptions,
    /// The profile (its `url` is replaced).
    pub run: &'a RunConfig,
    /// Told about the run.
    pub progress: &'a dyn Progress,
}

impl Measure for ServerRun<'_> {
    async fn measure(&self, c: &Candidate, log: &Path) -> Result<Measured, String> {
        let Some(model) = c.file.as_deref() else {
            return Err(format!("{}: no GGUF file to serve", c.label()));
        };
        let server = LlamaServer::start(model, &self.server, log).await?;
        let result = measure_url(self.run, server.url(), None, Some(model), self.progress).await;
        server.stop();
        result.map_err(|e| format!("{}: {e}", model.display()))
    }
}

/// [`Measure`] through a running server that offers the models by name.
pub(crate) struct ServedRun<'a> {
    /// The kind of server.
    pub catalog: Catalog,
    /// The profile; its `url` is the server's.
    pub run: &'a RunConfig,
    /// For the server's own API calls (unloading).
    pub client: &'a crate::client::Client,
    /// Base URL of the server.
    pub base: String,
    /// Models resident before the sweep: left loaded.
    pub keep: Vec<String>,
    /// Unload the others after their turn.
    pub unload: bool,
    /// Told about the run.
    pub progress: &'a dyn Progress,
}

impl Measure for ServedRun<'_> {
    async fn measure(&self, c: &Candidate, _log: &Path) -> Result<Measured, String> {
        let name = c.model.clone().unwrap_or_default();
        let result = measure_url(
            self.run,
            &self.run.url,
            Some(&name),
            c.file.as_deref(),
            self.progress,
        )
        .await;
        if self.unload && !self.keep.contains(&name) {
            match served::unload(self.client, &self.base, self.catalog, &name).await {
                Ok(()) => self.progress.note(&format!("{name}: unloaded")),
                Err(e) => self
                    .progress
                    .note(&format!("{name}: could not unload: {e}")),
            }
        }
        result.map_err(|e| format!("{name}: {e}"))
    }
}

/// Runs `run` against `url`, asking for `model` (a name) when given, with `file` as the
/// model's file when known, and takes its speed.
///
/// # Errors
///
/// When no request completed (with the first error the run saw).
pub async fn measure_url(
    run: &RunConfig,
    url: &str,
    model: Option<&str>,
    file: Option<&Path>,
    progress: &dyn Progress,
) -> Result<Measured, String> {
    let mut cfg = run.clone();
    cfg.url = url.to_string();
    if let Some(m) = model {
        cfg.model = Some(m.to_string());
    }
    if let Some(f) = file {
        cfg.hardware.model_file = Some(f.to_path_buf());
        cfg.hardware.model_size_bytes = None;
    }
    let report = crate::run(&cfg, progress).await;
    let t = &report.totals;
    match t
        .output_tokens_per_second
        .filter(|v| v.is_finite() && *v > 0.0)
    {
        Some(tps) => Ok(Measured {
            tokens_per_second: tps,
            tpot_ms: t.tpot_ms.as_ref().map(|s| s.mean),
            served_file: report
                .system
                .model_path
                .as_ref()
                .map(PathBuf::from)
                .filter(|p| p.is_file()),
            run: report,
        }),
        None => {
            let why = report
                .aborted
                .clone()
                .or_else(|| t.errors.first().map(|e| e.message.clone()))
                .unwrap_or_else(|| "no tokens were generated".to_string());
            Err(format!(
                "{} of {} requests completed: {why}",
                t.requests_completed, t.requests_sent
            ))
        }
    }
}

/// [`Score`] with llama-perplexity.
pub struct LlamaPerplexity(pub PerplexityOptions);

impl Score for LlamaPerplexity {
    fn perplexity(&self, model: &Path) -> impl Future<Output = Result<Ppl, String>> + Send {
        perplexity::measure(model, &self.0)
    }
}

/// One model's outcome, before the front is known.
#[derive(Debug, Clone, PartialEq)]
pub struct FileResult {
    /// The model, with the file and facts its run revealed.
    pub candidate: Candidate,
    /// The load run, or why it failed.
    pub measured: Result<Measured, String>,
    /// The perplexity, why it failed, or `None` when not asked for.
    pub ppl: Option<Result<Ppl, String>>,
}

/// Measures every model in turn (see the module docs); never stops at a failing one, only
/// at `stop` (the ones not reached are left out). A served model whose file was unknown
/// gets the file its engine said it serves, and that file's header facts.
pub async fn measure_files<M: Measure, S: Score>(
    candidates: &[Candidate],
    measure: &M,
    score: Option<&S>,
    log_dir: &Path,
    stop: &Stop,
    progress: &dyn Progress,
) -> Vec<FileResult> {
    let mut out = Vec::with_capacity(candidates.len());
    for (i, c) in candidates.iter().enumerate() {
        if stop.is_set() {
            progress.note(&format!(
                "interrupted: {} of {} models not measured",
                candidates.len() - i,
                candidates.len()
            ));
            break;
        }
        let mut c = c.clone();
        let name = format!(
            "[{}/{}] {} ({})",
            i + 1,
            candidates.len(),
            c.label(),
            c.facts.quant
        );
        progress.note(&format!("{name}: running the profile"));
        let log = log_dir.join(log_name(&c, i));
        let measured = measure.measure(&c, &log).await;
        match &measured {
            Err(e) => progress.note(&format!("{name}: run failed: {e}")),
            Ok(m) if c.file.is_none() => {
                if let Some(f) = &m.served_file {
                    match model_facts(f) {
                        Ok(facts) => {
                            progress.note(&format!("{name}: served from {}", f.display()));
                            c.facts = facts;
                            c.file = Some(f.clone());
                        }
                        Err(e) => progress.note(&format!("{name}: {e}")),
                    }
                }
            }
            Ok(_) => {}
        }
        let ppl = match (score, c.file.clone()) {
            (None, _) => None,
            (Some(_), None) => Some(Err(
                "no GGUF file known for this model on this machine; give --models NAME=FILE.gguf"
                    .to_string(),
            )),
            (Some(s), Some(file)) => {
                progress.note(&format!("{name}: perplexity"));
                // Dropping the run on a stop kills llama-perplexity.
                let mut stop = stop.clone();
                let p = tokio::select! {
                    p = s.perplexity(&file) => p,
                    () = stop.wait() => Err("interrupted".to_string()),
                };
                match &p {
                    Ok(p) => progress.note(&format!(
                        "{name}: perplexity {:.4} ± {:.4} over {} chunks",
                        p.value, p.stderr, p.chunks
                    )),
                    Err(e) => progress.note(&format!("{name}: perplexity failed: {e}")),
                }
                Some(p)
            }
        };
        out.push(FileResult {
            candidate: c,
            measured,
            ppl,
        });
    }
    out
}

fn log_name(c: &Candidate, i: usize) -> String {
    let stem = match (&c.file, &c.model) {
        (Some(f), _) => f
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".to_string()),
        (None, Some(m)) => m
            .chars()
            .map(|ch| {
                if ch.is_ascii_alphanumeric() || ch == '-' {
                    ch
                } else {
                    '_'
                }
            })
            .collect(),
        (None, None) => "model".to_string(),
    };
    format!("{:02}-{stem}.server.log", i + 1)
}

/// The sweep report of measured files: one point each, front and knee marked, errors in
/// the notes.
pub fn sweep_report(results: &[FileResult]) -> SweepReport {
    let objectives: Vec<Objectives> = results
        .iter()
        .map(|r| Objectives {
            tokens_per_second: r.measured.as_ref().ok().map(|m| m.tokens_per_second),
            perplexity: r
                .ppl
                .as_ref()
                .and_then(|p| p.as_ref().ok())
                .map(|p| p.value),
            size_bytes: r.candidate.facts.size_bytes,
        })
        .collect();
    let front = pareto::analyse(&objectives);
    let mut notes = Vec::new();
    let points = results
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let c = &r.candidate;
            let label = format!("{} ({})", c.label(), c.facts.quant);
            if let Err(e) = &r.measured {
                notes.push(format!("{label}: not measured: {e}"));
            }
            if let Some(Err(e)) = &r.ppl {
                notes.push(format!("{label}: no perplexity: {e}"));
            }
            let m = r.measured.as_ref().ok();
            let ppl = r.ppl.as_ref().and_then(|p| p.as_ref().ok());
            SweepPoint {
                file: c.file.as_ref().map(|f| f.display().to_string()),
                model: c.model.clone(),
                quant: c.facts.quant.clone(),
                facts_source: c.facts.source.clone(),
                size_bytes: c.facts.size_bytes,
                bits_per_weight: c.facts.bits_per_weight,
                tokens_per_second: m.map(|m| m.tokens_per_second),
                tpot_ms: m.and_then(|m| m.tpot_ms),
                error: r.measured.as_ref().err().cloned(),
                perplexity: ppl.map(|p| p.value),
                perplexity_stderr: ppl.map(|p| p.stderr),
                perplexity_chunks: ppl.map(|p| p.chunks),
                perplexity_error: r.ppl.as_ref().and_then(|p| p.as_ref().err()).cloned(),
                on_front: front.on_front[i],
                knee: front.knee == Some(i),
            }
        })
        .collect();
    notes.push(match front.quality {
        Quality::Perplexity => {
            "Front: no other file is at least as fast, as accurate (perplexity) \
             and as small, and better on one. Knee: the front point farthest beyond the line from \
             the fastest to the most accurate front point, on the plane of tokens/s ÷ fastest \
             and lowest perplexity ÷ perplexity (closest to the ideal (1, 1) when no point is \
             beyond the line)."
                .to_string()
        }
        Quality::Size => "No perplexity was measured: the front is over tokens/s and size, and \
             the knee trades tokens/s against size (smallest size ÷ size) the same way."
            .to_string(),
        Quality::Speed => "No perplexity was measured and not every size is known: the front \
             is over tokens/s alone, and the fastest model is the knee."
            .to_string(),
    });
    SweepReport { points, notes }
}

/// Runs the sweep: files with a real llama-server each, or the models of the server at
/// `run.url`; [`crate::run()`] on each; llama-perplexity on each file.
///
/// # Errors
///
/// Before anything starts: no files and no models (or both), a file that is missing or not
/// GGUF, no llama-server (file sweeps), a server whose models cannot be listed or that lacks
/// a model asked for, or a `text` that is not a file. Failures of single models are in the
/// report instead.
pub async fn run_sweep(cfg: &SweepConfig, progress: &dyn Progress) -> Result<BenchReport, String> {
    match (cfg.files.is_empty(), cfg.models.is_empty()) {
        (true, true) => {
            return Err(
                "nothing to sweep: give GGUF files, or --url URL --models NAMES".to_string(),
            )
        }
        (false, false) => {
            return Err(
                "give either GGUF files (infermon serves each) or --models (a running server's), not both"
                    .to_string(),
            )
        }
        _ => {}
    }
    let threads = cfg.threads();
    let (score, skipped) = scorer(cfg, threads)?;
    if let Some(s) = &skipped {
        progress.note(s);
    }
    let log_dir = cfg.log_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("infermon-sweep-{}", std::process::id()))
    });
    let stop = &cfg.run.stop;
    let (candidates, results) = if cfg.models.is_empty() {
        let mut candidates = Vec::with_capacity(cfg.files.len());
        for f in &cfg.files {
            if !f.is_file() {
                return Err(format!("model file {} does not exist", f.display()));
            }
            candidates.push(Candidate::file(f.clone(), model_facts(f)?));
        }
        let measure = ServerRun {
            server: ServerOptions {
                binary: Some(perplexity::find_tool(
                    cfg.server.as_deref(),
                    crate::server::ENV_BINARY,
                    "llama-server",
                )?),
                ctx: cfg.server_ctx.unwrap_or(4096),
                threads,
                extra_args: cfg.server_args.clone(),
                ready_timeout: cfg.ready_timeout,
            },
            run: &cfg.run,
            progress,
        };
        let r = measure_files(
            &candidates,
            &measure,
            score.as_ref(),
            &log_dir,
            stop,
            progress,
        )
        .await;
        (candidates, r)
    } else {
        let (client, base, catalog) = served_client(&cfg.run).await?;
        let listed = served::catalog(&client, &base, catalog)
            .await
            .map_err(|e| format!("cannot list the models of {base}: {e}"))?;
        let names: Vec<String> = listed.iter().map(|l| l.name.clone()).collect();
        let specs = served::expand(&cfg.models, &names)?;
        let mut candidates = Vec::with_capacity(specs.len());
        for spec in &specs {
            let l = listed
                .iter()
                .find(|l| l.name == spec.pattern)
                .cloned()
                .unwrap_or(served::Listed {
                    name: spec.pattern.clone(),
                    size_bytes: None,
                });
            let (facts, file) = match &spec.file {
                Some(f) if f.is_file() => (model_facts(f)?, Some(f.clone())),
                Some(f) => {
                    return Err(format!(
                        "--models {}: {} does not exist",
                        spec.pattern,
                        f.display()
                    ))
                }
                None => {
                    let d = served::describe(&client, &base, catalog, &l).await;
                    match &d.file {
                        Some(f) => (model_facts(f).unwrap_or(d.facts), d.file.clone()),
                        None => (d.facts, None),
                    }
                }
            };
            candidates.push(Candidate {
                model: Some(spec.pattern.clone()),
                file,
                facts,
            });
        }
        let keep = served::loaded(&client, &base, catalog).await;
        progress.note(&format!(
            "{} at {base}: {} models to sweep{}",
            catalog.name(),
            candidates.len(),
            if keep.is_empty() {
                String::new()
            } else {
                format!(
                    "; loaded before the sweep, left loaded: {}",
                    keep.join(", ")
                )
            }
        ));
        let measure = ServedRun {
            catalog,
            run: &cfg.run,
            client: &client,
            base: base.clone(),
            keep,
            unload: cfg.unload && catalog != Catalog::OpenAi,
            progress,
        };
        let r = measure_files(
            &candidates,
            &measure,
            score.as_ref(),
            &log_dir,
            stop,
            progress,
        )
        .await;
        (candidates, r)
    };
    let mut sweep = sweep_report(&results);
    if results.len() < candidates.len() {
        sweep.notes.push(format!(
            "Interrupted: {} of {} models measured",
            results.len(),
            candidates.len()
        ));
    }
    if let Some(s) = skipped {
        sweep.notes.insert(0, s);
    }
    if cfg.models.is_empty() {
        sweep
            .notes
            .push(format!("Server logs: {}", log_dir.display()));
    }
    Ok(BenchReport::new(
        top_run(&results, &sweep, candidates.len()),
        Some(sweep),
    ))
}

/// llama-perplexity on the text, or why perplexity is skipped.
fn scorer(
    cfg: &SweepConfig,
    threads: u32,
) -> Result<(Option<LlamaPerplexity>, Option<String>), String> {
    let Some(text) = &cfg.text else {
        return Ok((
            None,
            Some("no text given (--text): perplexity not measured".to_string()),
        ));
    };
    if !text.is_file() {
        return Err(format!("perplexity text {} is not a file", text.display()));
    }
    Ok(
        match perplexity::find_tool(
            cfg.perplexity.as_deref(),
            perplexity::ENV_BINARY,
            "llama-perplexity",
        ) {
            Ok(bin) => (
                Some(LlamaPerplexity(PerplexityOptions {
                    binary: Some(bin),
                    text: text.clone(),
                    ctx: cfg.ctx.unwrap_or(512),
                    batch: cfg.ppl_batch,
                    chunks: cfg.ppl_chunks,
                    threads,
                    extra_args: Vec::new(),
                })),
                None,
            ),
            Err(e) => (None, Some(format!("perplexity not measured: {e}"))),
        },
    )
}

/// A client for the server of a model-list sweep, its base URL and what kind it is.
async fn served_client(
    run: &RunConfig,
) -> Result<(crate::client::Client, String, Catalog), String> {
    let ep = crate::target::endpoint(&run.url, run.api)?;
    let client = crate::client::Client::new(&ep.url, ep.api, &run.headers, run.timeout, 1)?;
    let kind = match &run.hardware.engine_kind {
        Some(k) => k.clone(),
        None => crate::target::engine_kind(&client, &ep).await.to_string(),
    };
    Ok((client, ep.base, Catalog::of_kind(&kind)))
}

/// The knee's run (else the first that ran), `partial` when any file failed.
fn top_run(results: &[FileResult], sweep: &SweepReport, planned: usize) -> RunReport {
    let knee = sweep.points.iter().position(|p| p.knee);
    let pick = knee
        .and_then(|k| results[k].measured.as_ref().ok())
        .or_else(|| results.iter().find_map(|r| r.measured.as_ref().ok()));
    let mut run = pick.map(|m| m.run.clone()).unwrap_or_default();
    let failed = results
        .iter()
        .filter(|r| r.measured.is_err() || matches!(r.ppl, Some(Err(_))))
        .count();
    if pick.is_none() {
        run.aborted = Some("no file of the sweep could be measured".to_string());
    }
    if failed > 0 || pick.is_none() || results.len() < planned {
        run.status = RunStatus::Partial;
    }
    run
}

#[cfg(test)]
mod tests;
