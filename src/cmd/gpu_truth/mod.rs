//! `infermon gpu-truth`: checks a running agent's NVML figures against `nvidia-smi`, read at
//! the same moments, and its energy counter against nvidia-smi's power × time. It needs
//! nothing but this binary, a running agent and the driver's `nvidia-smi`;
//! `scripts/gpu-truth.sh` starts the agent and runs it.

mod compare;

use std::fmt::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use infermon_model::Snapshot;

use compare::{add_round, integrate, parse_smi, EnergyCheck, Tallies, QUERY};

/// `infermon gpu-truth`
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Exit status: 0 every figure agrees within its tolerance on every GPU;\n\
                  1 one does not, no GPU was seen, or the check could not run (the reason is printed)."
)]
pub struct GpuTruthArgs {
    /// The agent's base URL.
    #[arg(long, default_value = "http://127.0.0.1:7411")]
    pub url: String,
    /// Bearer token, when the agent needs one.
    #[arg(long, env = "INFERMON_TOKEN")]
    pub token: Option<String>,
    /// Agent samples to compare (one nvidia-smi read right after each).
    #[arg(long, default_value_t = 30)]
    pub rounds: u32,
    /// The nvidia-smi executable.
    #[arg(long, default_value = "nvidia-smi")]
    pub nvidia_smi: String,
}

struct Round {
    snap: Snapshot,
    smi_at_s: f64,
    smi: Vec<compare::SmiRow>,
}

pub fn run(args: GpuTruthArgs) -> anyhow::Result<ExitCode> {
    if args.rounds < 2 {
        bail!("--rounds {} is too few: expected at least 2", args.rounds);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = infermon_tls::client()
        .timeout(Duration::from_secs(5))
        .build()?;
    let mut rounds = Vec::new();
    let mut last_ts = None;
    let mut problems = Vec::new();
    for _ in 0..args.rounds {
        let snap = rt.block_on(next_sample(&client, &args, last_ts))?;
        last_ts = Some(snap.ts_unix_ms);
        let out = std::process::Command::new(&args.nvidia_smi)
            .args([&format!("--query-gpu={QUERY}"), "--format=csv"])
            .output()
            .with_context(|| format!("cannot run {:?}", args.nvidia_smi))?;
        let smi_at_s = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64();
        if !out.status.success() {
            bail!(
                "{} failed: {}",
                args.nvidia_smi,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let smi = parse_smi(&String::from_utf8_lossy(&out.stdout)).map_err(anyhow::Error::msg)?;
        rounds.push(Round {
            snap,
            smi_at_s,
            smi,
        });
    }
    let mut tallies = Tallies::new();
    for r in &rounds {
        for p in add_round(&mut tallies, &r.snap.gpus, &r.smi) {
            if !problems.contains(&p) {
                problems.push(p);
            }
        }
    }
    let (text, ok) = report(&tallies, &rounds, &problems);
    print!("{text}");
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Waits for a sample newer than `after` (the agent samples every interval).
async fn next_sample(
    client: &reqwest::Client,
    args: &GpuTruthArgs,
    after: Option<i64>,
) -> anyhow::Result<Snapshot> {
    let url = format!("{}/api/v1/snapshot", args.url.trim_end_matches('/'));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut req = client.get(&url);
        if let Some(t) = &args.token {
            req = req.bearer_auth(t);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach the agent at {url:?}"))?;
        let status = resp.status();
        let body = resp.text().await?;
        if !status.is_success() {
            bail!(
                "agent at {url:?} answered HTTP {}: {}",
                status.as_u16(),
                body.trim()
            );
        }
        let snap: Snapshot = serde_json::from_str(&body)
            .with_context(|| format!("the answer of {url:?} is not an infermon snapshot"))?;
        if after.is_none_or(|a| snap.ts_unix_ms > a) {
            return Ok(snap);
        }
        if Instant::now() > deadline {
            bail!("the agent at {url:?} took no new sample in 60 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn report(tallies: &Tallies, rounds: &[Round], problems: &[String]) -> (String, bool) {
    let mut o = String::new();
    let mut ok = problems.is_empty() && !tallies.is_empty();
    for p in problems {
        let _ = writeln!(o, "PROBLEM {p}");
    }
    if tallies.is_empty() {
        let _ = writeln!(o, "no NVIDIA GPU seen by both nvidia-smi and the agent");
    }
    for (uuid, figs) in tallies {
        let _ = writeln!(o, "GPU {uuid}");
        let _ = writeln!(
            o,
            "  {:<28} {:>6} {:>6} {:>10}  {:<16} result",
            "figure", "rounds", "agreed", "max diff", "tolerance"
        );
        for (fig, t) in figs {
            let pass = t.passed();
            ok &= pass;
            let _ = writeln!(
                o,
                "  {:<28} {:>6} {:>6} {:>10.2}  {:<16} {}{}",
                fig.name(),
                t.rounds,
                t.agreed,
                t.max_diff,
                fig.tolerance(),
                if pass { "PASS" } else { "FAIL" },
                if t.one_sided.is_empty() {
                    String::new()
                } else {
                    format!(" ({} rounds: {})", t.one_sided.len(), t.one_sided[0])
                }
            );
        }
        match energy(uuid, rounds) {
            Some(e) => {
                let pass = e.passed();
                ok &= pass;
                let _ = writeln!(
                    o,
                    "  energy counter {:.1} J vs power x time {:.1} J: {:.1} % apart (tolerance 10 %) {}",
                    e.counter_joules,
                    e.integrated_joules,
                    e.error() * 100.0,
                    if pass { "PASS" } else { "FAIL" }
                );
            }
            None => {
                let _ = writeln!(
                    o,
                    "  energy counter: not compared (the agent or nvidia-smi has no reading)"
                );
            }
        }
    }
    let _ = writeln!(
        o,
        "gpu-truth: {} ({} GPU(s), {} rounds)",
        if ok { "PASS" } else { "FAIL" },
        tallies.len(),
        rounds.len()
    );
    (o, ok)
}

/// The agent's energy counter delta between its first and last sample that have it, against
/// nvidia-smi's power readings integrated over the same rounds.
fn energy(uuid: &str, rounds: &[Round]) -> Option<EnergyCheck> {
    let mut counter = Vec::new();
    let mut power = Vec::new();
    for r in rounds {
        let g = r.snap.gpus.iter().find(|g| g.id == uuid)?;
        let row = r.smi.iter().find(|s| s.uuid == uuid)?;
        counter.push(g.energy_joules_total?);
        power.push((r.smi_at_s, row.power_watts?));
    }
    Some(EnergyCheck {
        counter_joules: counter.last()? - counter.first()?,
        integrated_joules: integrate(&power),
    })
}

#[cfg(test)]
mod tests;
