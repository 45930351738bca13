//! `infermon status`: the running agent's snapshot as a table, or JSON.

use std::fmt::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use infermon_detect::text::timeline;
use infermon_detect::{Clock, Observation};
use infermon_model::Snapshot;

use crate::cli::StatusArgs;

pub fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let body = rt.block_on(fetch(&args, "/api/v1/snapshot"))?;
    // Open observations and those that ended in the last hour.
    let obs = rt.block_on(fetch(&args, "/api/v1/observations?since=-1h&limit=50"));
    let observations: Vec<Observation> = match obs {
        Ok(b) => serde_json::from_str::<serde_json::Value>(&b)
            .ok()
            .and_then(|v| serde_json::from_value(v.get("observations")?.clone()).ok())
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    if args.json {
        let mut v: serde_json::Value = serde_json::from_str(&body)
            .context("the agent's snapshot could not be read (is this an infermon agent?)")?;
        if let Some(m) = v.as_object_mut() {
            m.insert("observations".into(), serde_json::to_value(&observations)?);
        }
        println!("{v}");
        return Ok(ExitCode::SUCCESS);
    }
    let snap: Snapshot = serde_json::from_str(&body)
        .context("the agent's snapshot could not be read (is this an infermon agent?)")?;
    print!("{}", table(&snap));
    print!("{}", observations_table(&observations));
    Ok(ExitCode::SUCCESS)
}

/// Open observations first, then those that ended in the last hour.
fn observations_table(obs: &[Observation]) -> String {
    let (open, ended): (Vec<Observation>, Vec<Observation>) =
        obs.iter().cloned().partition(|o| o.is_open());
    let mut o = String::new();
    if open.is_empty() {
        o.push_str("OBSERVATIONS none open: nothing looks wrong\n");
    } else {
        let _ = writeln!(o, "OBSERVATIONS {} open", open.len());
        o.push_str(&timeline(&open, Clock::Unix));
    }
    if !ended.is_empty() {
        let _ = writeln!(o, "ENDED IN THE LAST HOUR {}", ended.len());
        o.push_str(&timeline(&ended, Clock::Unix));
    }
    o
}

async fn fetch(args: &StatusArgs, path: &str) -> anyhow::Result<String> {
    let url = format!("{}{path}", args.url.trim_end_matches('/'));
    let client = infermon_tls::client()
        .timeout(Duration::from_secs(5))
        .build()?;
    let mut req = client.get(&url);
    if let Some(t) = &args.token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.with_context(|| {
        format!("cannot reach the agent at \"{url}\" (is `infermon agent` running?)")
    })?;
    let status = resp.status();
    let body = resp.text().await?;
    if !status.is_success() {
        bail!(
            "agent at \"{url}\" answered HTTP {}: {}",
            status.as_u16(),
            body.trim()
        );
    }
    Ok(body)
}

fn opt(v: Option<f64>, digits: usize, unit: &str) -> String {
    match v {
        Some(x) => format!("{x:.digits$}{unit}"),
        None => "n/a".to_string(),
    }
}

fn gib(v: Option<u64>) -> String {
    opt(v.map(|b| b as f64 / 1_073_741_824.0), 2, " GiB")
}

/// Renders a snapshot as a readable table.
pub fn table(s: &Snapshot) -> String {
    let mut o = String::new();
    let h = &s.host;
    let e = &s.efficiency;
    let _ = writeln!(o, "NODE");
    let _ = writeln!(
        o,
        "  cpu               {}",
        opt(h.cpu_utilization_ratio.map(|r| r * 100.0), 1, " %")
    );
    let _ = writeln!(
        o,
        "  memory available  {} of {}",
        gib(h.memory_available_bytes),
        gib(h.memory_total_bytes)
    );
    let _ = writeln!(
        o,
        "  swap used         {} (in {} / out {})",
        gib(h.swap_used_bytes),
        opt(h.swap_in_bytes_per_second, 0, " B/s"),
        opt(h.swap_out_bytes_per_second, 0, " B/s")
    );
    let _ = writeln!(
        o,
        "  memory pressure   {}",
        opt(
            h.pressure_memory_some_ratio.map(|r| r * 100.0),
            2,
            " % (some, avg10)"
        )
    );
    let _ = writeln!(o, "  cpu power         {}", opt(h.cpu_power_watts, 1, " W"));
    let _ = writeln!(o, "EFFICIENCY");
    let _ = writeln!(
        o,
        "  generation        {}",
        opt(e.generation_tokens_per_second, 1, " tok/s")
    );
    let _ = writeln!(
        o,
        "  power             {}  [{}]",
        opt(e.power_watts, 1, " W"),
        e.power_sources.join(", ")
    );
    let _ = writeln!(
        o,
        "  tokens per joule  {}",
        opt(e.tokens_per_joule, 3, " tok/J")
    );
    let _ = writeln!(
        o,
        "  thermal           {} (penalty {}) {}",
        e.thermal.state.as_str(),
        e.thermal_penalty,
        e.thermal.reasons.join(",")
    );
    match &e.wes {
        Ok(w) => {
            let _ = writeln!(
                o,
                "  WES               raw {:.1}, penalized {:.1}, thermal cost {:.0} %",
                w.raw, w.penalized, w.thermal_cost_percent
            );
        }
        Err(why) => {
            let _ = writeln!(o, "  WES               n/a ({why:?})");
        }
    }
    for g in &s.gpus {
        let _ = writeln!(
            o,
            "GPU {:?} {} {}",
            g.vendor,
            g.index,
            g.name.as_deref().unwrap_or(&g.id)
        );
        let _ = writeln!(
            o,
            "  busy {}  power {}  temp {}  vram {} / {}  gtt {} / {}",
            opt(g.utilization_ratio.map(|r| r * 100.0), 0, " %"),
            opt(g.power_watts, 1, " W"),
            opt(g.temperature_celsius, 0, " C"),
            gib(g.vram_used_bytes),
            gib(g.vram_total_bytes),
            gib(g.gtt_used_bytes),
            gib(g.gtt_total_bytes)
        );
    }
    for en in &s.engines {
        let _ = writeln!(
            o,
            "ENGINE {} {} model {} ({})",
            en.kind.as_str(),
            en.instance,
            en.model,
            if en.up { "up" } else { "down" }
        );
        let _ = writeln!(
            o,
            "  generation {} while busy, {} throughput; prompt {}",
            opt(en.generation_tokens_per_second, 1, " tok/s"),
            opt(en.generation_throughput_tokens_per_second, 1, " tok/s"),
            opt(en.prompt_tokens_per_second, 1, " tok/s")
        );
        let _ = writeln!(
            o,
            "  requests running {} waiting {}  tokens generated {}",
            opt(en.requests_running, 0, ""),
            opt(en.requests_waiting, 0, ""),
            opt(en.generation_tokens_total, 0, "")
        );
        if let Some(rss) = en.memory_resident_bytes {
            let est = match &en.memory_estimate {
                Some(c) => format!(
                    ", estimate {} ({:+.1} %)",
                    opt(Some(c.estimated_bytes as f64 / 1_048_576.0), 1, " MiB"),
                    c.error_percent
                ),
                None => String::new(),
            };
            let _ = writeln!(
                o,
                "  memory resident {}{est}",
                opt(Some(rss as f64 / 1_048_576.0), 1, " MiB")
            );
        }
        for why in &en.memory_unavailable {
            let _ = writeln!(o, "  memory: {why}");
        }
        if let Some(r) = en
            .metrics_reason
            .as_ref()
            .filter(|_| en.kind.has_counters())
        {
            let _ = writeln!(o, "  metrics unavailable: {r}");
        }
        for l in &en.latency {
            let ms = |v: Option<f64>| opt(v.map(|x| x * 1000.0), 1, " ms");
            let _ = writeln!(
                o,
                "  {} {:<6} p50 {} p90 {} p99 {} ({} in window)",
                l.model,
                l.metric.as_str(),
                ms(l.p50_seconds),
                ms(l.p90_seconds),
                ms(l.p99_seconds),
                l.count
            );
        }
        for sc in &en.scheduler {
            let pct = |v: Option<f64>| opt(v.map(|x| x * 100.0), 1, " %");
            let _ = writeln!(
                o,
                "  {} kv cache {} prefix hits {} preemptions {} spec accept {}",
                sc.model,
                pct(sc.kv_usage_ratio),
                pct(sc.prefix_cache_hit_ratio),
                opt(sc.preemptions_in_window, 0, ""),
                pct(sc.spec_accept_ratio)
            );
        }
        for m in en.models.iter().flatten() {
            let _ = writeln!(
                o,
                "  model {} {} size {} vram {} offload {}",
                m.raw.name,
                m.raw.state,
                opt(m.raw.size_bytes.map(|b| b as f64 / 1_048_576.0), 0, " MiB"),
                opt(m.raw.vram_bytes.map(|b| b as f64 / 1_048_576.0), 0, " MiB"),
                opt(m.cpu_offload_ratio.map(|x| x * 100.0), 0, " %")
            );
        }
        for ev in &en.events {
            let _ = writeln!(
                o,
                "  event {} {}{}",
                ev.model,
                ev.kind,
                ev.duration_ms
                    .map(|d| format!(" after {:.1} s", d / 1000.0))
                    .unwrap_or_default()
            );
        }
        for n in &en.notes {
            let _ = writeln!(o, "  note: {n}");
        }
    }
    for r in &s.requests {
        let q = |x: &Option<infermon_model::stats::Summary>| match x {
            Some(s) => format!("p50 {:.1} p99 {:.1} ms", s.p50, s.p99),
            None => "-".to_string(),
        };
        let _ = writeln!(
            o,
            "REQUESTS {} via {}: {} in {:.0} s, {} errors, {} cancelled, {:.1} tok/s out",
            r.model,
            r.upstream,
            r.requests,
            r.window_seconds,
            r.errors,
            r.cancelled,
            r.output_tokens_per_second
        );
        let _ = writeln!(
            o,
            "  ttft {}  tpot {}  itl {}  e2e {}",
            q(&r.ttft_ms),
            q(&r.tpot_ms),
            q(&r.itl_ms),
            q(&r.e2e_ms)
        );
        if let Some(g) = r.goodput_requests_per_second {
            let _ = writeln!(
                o,
                "  goodput {g:.2} req/s, {} of completed requests within the SLO",
                opt(r.slo_attainment_ratio.map(|x| x * 100.0), 1, " %")
            );
        }
    }
    let bad: Vec<_> = s.sources.iter().filter(|x| !x.ok).collect();
    if !bad.is_empty() {
        let _ = writeln!(o, "UNAVAILABLE");
        for b in bad {
            let _ = writeln!(
                o,
                "  {:<24} {}",
                b.source,
                b.reason.as_deref().unwrap_or("")
            );
        }
    }
    let _ = writeln!(
        o,
        "AGENT interval {:.0} s, collect {:.1} ms, cpu {}, rss {}",
        s.agent.interval_seconds,
        s.agent.collect_seconds * 1000.0,
        opt(s.agent.cpu_ratio.map(|r| r * 100.0), 2, " %"),
        opt(
            s.agent
                .resident_memory_bytes
                .map(|b| b as f64 / 1_048_576.0),
            1,
            " MiB"
        )
    );
    o
}
