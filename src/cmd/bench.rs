//! `infermon bench`: run a benchmark, compare two reports, or sweep quantizations.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use infermon_bench::compare::{compare, render};
use infermon_bench::report::{html, json, markdown};
use infermon_bench::schema::{BenchReport, ConfigReport, RunStatus};
use infermon_bench::sweep::{run_sweep, SweepConfig};
use infermon_bench::{
    run as run_bench, HwConfig, Profile, Progress, PromptSource, RunConfig, Stop,
};
use infermon_model::request::{Api, RequestRecord};

use crate::cli::{
    BenchArgs, BenchCommand, BenchCompareArgs, BenchOutputArgs, BenchProfileArgs, BenchRunArgs,
    BenchSweepArgs,
};

pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        None => run_one(args.run),
        Some(BenchCommand::Run(r)) => run_one(*r),
        Some(BenchCommand::Compare(c)) => compare_cmd(c),
        Some(BenchCommand::Sweep(s)) => sweep(*s),
    }
}

fn api(s: &str) -> anyhow::Result<Api> {
    Ok(match s {
        "chat" | "openai-chat" | "openai_chat" => Api::OpenaiChat,
        "completions" | "openai-completions" | "openai_completions" => Api::OpenaiCompletions,
        "ollama-chat" | "ollama_chat" => Api::OllamaChat,
        "ollama-generate" | "ollama_generate" => Api::OllamaGenerate,
        other => {
            bail!("--api \"{other}\": expected chat, completions, ollama-chat or ollama-generate")
        }
    })
}

fn duration(flag: &str, s: &str) -> anyhow::Result<Duration> {
    infermon_config::parse_duration(s)
        .filter(|d| !d.is_zero())
        .with_context(|| format!("{flag} \"{s}\": expected a duration such as 500ms, 60s or 5m"))
}

/// The run configuration the flags describe.
fn config(url: &str, p: &BenchProfileArgs) -> anyhow::Result<RunConfig> {
    let mut c = RunConfig::new(url);
    c.api = p.api.as_deref().map(api).transpose()?;
    c.model = p.model.clone();
    if p.requests == 0 {
        bail!("--requests 0: expected at least one request per configuration");
    }
    c.requests = p.requests;
    c.profile = if !p.rate.is_empty() {
        let rates = p
            .rate
            .iter()
            .map(|r| match r.trim() {
                "inf" | "infinity" => Ok(None),
                t => t
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite() && *x > 0.0)
                    .map(Some)
                    .with_context(|| {
                        format!("--rate \"{t}\": expected requests per second > 0, or inf")
                    }),
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let poisson = match p.arrivals.as_str() {
            "poisson" => true,
            "constant" => false,
            other => bail!("--arrivals \"{other}\": expected poisson or constant"),
        };
        Profile::Rate {
            rates,
            poisson,
            max_concurrency: p.max_concurrency,
        }
    } else if !p.concurrency.is_empty() {
        if p.concurrency.contains(&0) {
            bail!("--concurrency 0: expected levels of at least 1, e.g. 1,2,4,8");
        }
        Profile::Concurrency(p.concurrency.clone())
    } else {
        Profile::Sync
    };
    c.warmup = p.warmup;
    c.max_tokens = p.max_tokens.max(1);
    c.prompts = match &p.prompts {
        Some(f) => PromptSource::Jsonl(f.clone()),
        None => PromptSource::Synthetic {
            input_tokens: p.input_tokens.max(1),
        },
    };
    c.seed = p.seed;
    c.ignore_eos = !p.no_ignore_eos;
    if let Some(s) = &p.slo {
        let spec = infermon_config::parse_slo(s).map_err(|e| anyhow::anyhow!("--slo: {e}"))?;
        c.slo = infermon_agent::slo_of(&spec);
    }
    c.headers = p
        .headers
        .iter()
        .map(|h| {
            h.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .with_context(|| format!("--header \"{h}\": expected \"Name: value\""))
        })
        .collect::<anyhow::Result<_>>()?;
    c.timeout = duration("--timeout", &p.timeout)?;
    c.hardware = HwConfig {
        enabled: !p.no_hardware,
        interval: duration("--sample-interval", &p.sample_interval)?,
        engine_kind: p.engine.clone(),
        discovery: !p.no_discovery,
        peak_bandwidth_gb_s: match p.peak_bandwidth {
            Some(b) if !(b.is_finite() && b > 0.0) => {
                bail!("--peak-bandwidth {b}: expected GB/s > 0, e.g. 1008")
            }
            b => b,
        },
        model_file: p.model_file.clone(),
        model_size_bytes: p
            .model_size
            .as_deref()
            .map(infermon_fit::units::parse_bytes)
            .transpose()
            .map_err(|e| anyhow::anyhow!("--model-size: {e}"))?,
        pue: p.pue,
    };
    if let Some(k) = &p.engine {
        if !infermon_config::ENGINE_KINDS.contains(&k.as_str()) {
            bail!(
                "--engine \"{k}\": expected one of {}",
                infermon_config::ENGINE_KINDS.join(", ")
            );
        }
    }
    Ok(c)
}

/// Runtime threads: `--client-threads`, else one while at most 32 requests are in flight
/// (streams then arrive one event per wake-up, and a single thread never pays for cross-thread
/// wake-ups), else up to 4 so that high rates are not held back by the client. The hardware
/// sampler has a thread of its own either way.
fn runtime(threads: Option<usize>, cfg: &RunConfig) -> anyhow::Result<tokio::runtime::Runtime> {
    let in_flight = match &cfg.profile {
        Profile::Sync => 1,
        Profile::Concurrency(l) => l.iter().copied().max().unwrap_or(1) as u64,
        Profile::Rate {
            max_concurrency, ..
        } => max_concurrency.map_or(u64::MAX, u64::from),
    };
    let n = threads.unwrap_or_else(|| {
        if in_flight <= 32 {
            1
        } else {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
                .min(4)
        }
    });
    Ok(match n {
        0 | 1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build()?,
    })
}

/// Progress bars on a terminal (redrawn at most every 100 ms), one line per configuration
/// otherwise; nothing with --quiet.
struct Bars {
    tty: bool,
    quiet: bool,
    st: Mutex<BarState>,
}

struct BarState {
    label: String,
    total: u64,
    done: u64,
    failed: u64,
    started: Instant,
    drawn: Option<Instant>,
}

impl Bars {
    fn new(quiet: bool) -> Self {
        Bars {
            tty: std::io::stderr().is_terminal(),
            quiet,
            st: Mutex::new(BarState {
                label: String::new(),
                total: 0,
                done: 0,
                failed: 0,
                started: Instant::now(),
                drawn: None,
            }),
        }
    }

    fn draw(&self, s: &BarState) {
        let width = 30usize;
        let filled = if s.total > 0 {
            (s.done as usize * width / s.total as usize).min(width)
        } else {
            0
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r{:<20} [{}{}] {}/{}{} {:.1}s ",
            s.label,
            "#".repeat(filled),
            "-".repeat(width - filled),
            s.done,
            s.total,
            if s.failed > 0 {
                format!(" ({} failed)", s.failed)
            } else {
                String::new()
            },
            s.started.elapsed().as_secs_f64()
        );
        let _ = err.flush();
    }
}

impl Progress for Bars {
    fn stage(&self, label: &str, total: u64) {
        if let Ok(mut s) = self.st.lock() {
            *s = BarState {
                label: label.to_string(),
                total,
                done: 0,
                failed: 0,
                started: Instant::now(),
                drawn: None,
            };
            if self.tty && !self.quiet {
                self.draw(&s);
            }
        }
    }

    fn request_done(&self, r: &RequestRecord) {
        let Ok(mut s) = self.st.lock() else { return };
        s.done += 1;
        if r.outcome.is_error() {
            s.failed += 1;
        }
        let due = s
            .drawn
            .is_none_or(|t| t.elapsed() >= Duration::from_millis(100));
        if self.tty && !self.quiet && (due || s.done == s.total) {
            s.drawn = Some(Instant::now());
            self.draw(&s);
        }
    }

    fn stage_done(&self, c: &ConfigReport) {
        if self.quiet {
            return;
        }
        if self.tty {
            eprintln!();
        }
        eprintln!("{}", summary_line(c));
    }

    fn note(&self, text: &str) {
        if !self.quiet {
            eprintln!("infermon bench: {text}");
        }
    }
}

fn ms(
    s: Option<&infermon_model::stats::Summary>,
    f: fn(&infermon_model::stats::Summary) -> f64,
) -> String {
    s.map_or("n/a".into(), |s| format!("{:.1} ms", f(s)))
}

fn summary_line(c: &ConfigReport) -> String {
    let f = &c.figures;
    format!(
        "{}: {}/{} completed{}, {} output tok/s, TTFT p50 {}, TPOT mean {}, E2E p50 {}",
        c.label,
        f.requests_completed,
        f.requests_sent + f.requests_not_sent,
        if f.requests_failed > 0 {
            format!(" ({} failed)", f.requests_failed)
        } else {
            String::new()
        },
        f.output_tokens_per_second
            .map_or("n/a".into(), |x| format!("{x:.1}")),
        ms(f.ttft_ms.as_ref(), |s| s.p50),
        ms(f.tpot_ms.as_ref(), |s| s.mean),
        ms(f.e2e_ms.as_ref(), |s| s.p50),
    )
}

/// Writes the reports the flags ask for: --out (JSON), and Markdown and HTML next to it
/// unless --markdown / --html name other files.
fn write_reports(r: &BenchReport, o: &BenchOutputArgs) -> anyhow::Result<Vec<PathBuf>> {
    let mut wrote = Vec::new();
    let sibling = |ext: &str| o.out.as_ref().map(|p| p.with_extension(ext));
    if let Some(p) = &o.out {
        json::write(p, r).map_err(anyhow::Error::msg)?;
        wrote.push(p.clone());
    }
    let write = |p: &Path, text: String| -> anyhow::Result<()> {
        std::fs::write(p, text).with_context(|| format!("cannot write \"{}\"", p.display()))
    };
    if let Some(p) = o.markdown.clone().or_else(|| sibling("md")) {
        write(&p, markdown::render(r))?;
        wrote.push(p);
    }
    if let Some(p) = o.html.clone().or_else(|| sibling("html")) {
        write(&p, html::render(r))?;
        wrote.push(p);
    }
    if o.save {
        let dir = infermon_config::load(None, &infermon_config::Overrides::default())?
            .data_dir
            .join("reports");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create \"{}\"", dir.display()))?;
        let p = dir.join(saved_name(r));
        json::write(&p, r).map_err(anyhow::Error::msg)?;
        write(&p.with_extension("md"), markdown::render(r))?;
        write(&p.with_extension("html"), html::render(r))?;
        wrote.push(p);
    }
    Ok(wrote)
}

/// `--save`'s file name: the run's UTC start and what it measured, in the characters a
/// report name may hold (`20261206-031500-smollm2-135m-instruct.q4_1.json`).
fn saved_name(r: &BenchReport) -> String {
    let [y, mo, d, h, mi, s] = infermon_model::civil::utc_fields(r.run.started_unix_ms);
    let what = r
        .run
        .target
        .model
        .as_deref()
        .unwrap_or(if r.sweep.is_some() { "sweep" } else { "run" });
    // A served file's path names the model by its last part (`…/SmolLM2-135M.Q4_1.gguf`).
    let what = what.rsplit(['/', '\\']).next().unwrap_or(what);
    let what = what.strip_suffix(".gguf").unwrap_or(what);
    let what: String = what
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(60)
        .collect();
    format!(
        "{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}-{}.json",
        what.trim_matches(['-', '.'])
    )
}

/// Prints where reports went and why the run is partial; the exit status.
fn conclude(r: &BenchReport, o: &BenchOutputArgs) -> anyhow::Result<ExitCode> {
    let wrote = write_reports(r, o)?;
    if wrote.is_empty() {
        print!("{}", markdown::render(r));
    } else {
        let names: Vec<String> = wrote.iter().map(|p| p.display().to_string()).collect();
        println!("wrote {}", names.join(", "));
    }
    let t = &r.run.totals;
    if let Some(why) = &r.run.aborted {
        eprintln!(
            "infermon bench: stopped early: {why}; {} of {} planned requests completed{}",
            t.requests_completed,
            t.requests_sent + t.requests_not_sent,
            if wrote.is_empty() {
                String::new()
            } else {
                " (partial report written)".to_string()
            }
        );
        return Ok(ExitCode::from(2));
    }
    if r.run.status == RunStatus::Partial {
        let first = t
            .errors
            .first()
            .map(|e| format!("; first error ({}): {}", e.outcome, e.message))
            .unwrap_or_default();
        eprintln!(
            "infermon bench: {} of {} requests failed{first}",
            t.requests_failed, t.requests_sent
        );
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

/// Sends `true` on the stop channel at the first Ctrl-C.
fn on_ctrl_c(rt: &tokio::runtime::Runtime) -> Stop {
    let (tx, stop) = Stop::channel();
    rt.spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = tx.send(true);
        }
    });
    stop
}

fn run_one(a: BenchRunArgs) -> anyhow::Result<ExitCode> {
    let Some(url) = a.url.as_deref() else {
        bail!(
            "give the endpoint: `infermon bench --url http://127.0.0.1:8080 --requests 20 --out run.json` \
             (or a subcommand: run, compare, sweep; see `infermon bench --help`)"
        );
    };
    let mut cfg = config(url, &a.profile)?;
    let rt = runtime(a.profile.client_threads, &cfg)?;
    cfg.stop = on_ctrl_c(&rt);
    let bars = Bars::new(a.output.quiet);
    let run = rt.block_on(run_bench(&cfg, &bars));
    let report = BenchReport::new(run, None);
    let code = conclude(&report, &a.output);
    rt.shutdown_timeout(Duration::from_millis(100));
    code
}

fn compare_cmd(c: BenchCompareArgs) -> anyhow::Result<ExitCode> {
    if !(c.threshold.is_finite() && c.threshold >= 0.0) {
        bail!(
            "--threshold {}: expected a percentage ≥ 0, e.g. 5",
            c.threshold
        );
    }
    let a = json::read(&c.a).map_err(anyhow::Error::msg)?;
    let b = json::read(&c.b).map_err(anyhow::Error::msg)?;
    let cmp = compare(&a, &b, c.threshold / 100.0);
    if c.json {
        println!("{}", serde_json::to_string_pretty(&cmp)?);
    } else {
        print!(
            "{}",
            render(&cmp, &c.a.display().to_string(), &c.b.display().to_string())
        );
    }
    Ok(if cmp.regressions > 0 {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

fn sweep(s: BenchSweepArgs) -> anyhow::Result<ExitCode> {
    // File sweeps: the URL is replaced by each server's.
    let run_cfg = config(s.url.as_deref().unwrap_or("http://127.0.0.1:0"), &s.profile)?;
    let mut cfg = SweepConfig::new(s.files.clone(), run_cfg);
    cfg.models = infermon_bench::served::parse_specs(&s.models).map_err(anyhow::Error::msg)?;
    cfg.unload = !s.keep_loaded;
    cfg.server = s.server.clone();
    cfg.perplexity = s.perplexity.clone();
    cfg.text = s.text.clone();
    cfg.ctx = s.ctx;
    cfg.ppl_chunks = s.chunks;
    cfg.server_ctx = s.server_ctx;
    cfg.threads = s.threads;
    cfg.server_args = s.server_args.clone();
    cfg.log_dir = s.log_dir.clone();
    let rt = runtime(s.profile.client_threads, &cfg.run)?;
    cfg.run.stop = on_ctrl_c(&rt);
    let bars = Bars::new(s.output.quiet);
    let result = rt.block_on(run_sweep(&cfg, &bars));
    rt.shutdown_timeout(Duration::from_millis(100));
    match result {
        Ok(report) => conclude(&report, &s.output),
        Err(msg) => bail!("sweep: {msg}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use infermon_bench::schema::RunReport;

    #[test]
    fn saved_names_are_report_names_from_the_start_and_the_model() {
        let mut run = RunReport {
            started_unix_ms: 1_796_526_033_000, // 2026-12-06 03:00:33 UTC
            ..RunReport::default()
        };
        run.target.model = Some("/models/SmolLM2-135M-Instruct.Q4_1.gguf".into());
        let r = BenchReport::new(run.clone(), None);
        let name = saved_name(&r);
        assert_eq!(name, "20261206-030033-smollm2-135m-instruct.q4_1.json");
        infermon_bench::report::library::check_name(&name).unwrap();
        run.target.model = Some("qwen3:8b (served)".into());
        assert_eq!(
            saved_name(&BenchReport::new(run.clone(), None)),
            "20261206-030033-qwen3-8b--served.json"
        );
        run.target.model = None;
        assert_eq!(
            saved_name(&BenchReport::new(run, None)),
            "20261206-030033-run.json"
        );
    }
}
