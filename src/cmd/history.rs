//! `infermon history export --csv`: the agent's own history as a replay trace. Raw samples are
//! derived again exactly as the agent derived them, and the request figures of each tick are
//! summarised from the stored requests over the same short window diagnosis uses, so
//! `infermon replay` of the export sees what the agent saw.

use std::io::Write;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context};
use infermon_agent::RECENT_REQUESTS;
use infermon_config::{load, Overrides};
use infermon_detect::{from_snapshot, trace};
use infermon_model::reqstats::{aggregate, Observed, Slo};
use infermon_model::{derive, DeriveSettings};
use infermon_store::{RequestQuery, Retention, Store};

use crate::cli::HistoryExportArgs;

/// Samples read per batch.
const BATCH: usize = 2000;

pub fn export(args: HistoryExportArgs) -> anyhow::Result<ExitCode> {
    let settings = load(
        args.config.as_deref(),
        &Overrides {
            data_dir: args.data_dir.clone(),
            ..Default::default()
        },
    )?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let time =
        |p: &str, v: &str| infermon_api::parse_time(p, v, now).map_err(|e| anyhow!(e.message));
    let (from, to) = (time("--from", &args.from)?, time("--to", &args.to)?);
    if from > to {
        bail!("--from ({from}) is after --to ({to})");
    }
    let path = settings.data_dir.join("infermon.db");
    if !path.exists() {
        bail!(
            "no store at \"{}\": has the agent run with this data directory?",
            path.display()
        );
    }
    let store = Store::open(&path, Retention::default())?;
    let window_ms = RECENT_REQUESTS.as_millis() as i64;
    let mut requests = store.requests(&RequestQuery {
        model: None,
        since_ms: Some(from - window_ms - 600_000),
        limit: usize::MAX,
    })?;
    requests.retain(|r| r.ts_unix_ms <= to);
    let mut out: Box<dyn Write> = match &args.out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p)
                .with_context(|| format!("cannot write \"{}\"", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    writeln!(out, "{}", trace::header())?;
    let ds = DeriveSettings { pue: settings.pue };
    let (mut prev, mut after, mut rows) = (None, None, 0usize);
    loop {
        // Paged by the store's cursor: samples sharing a wall time (a clock set back) are
        // each exported once.
        let (batch, next) = store.raw_samples_page(from, to, after, BATCH)?;
        if next.is_none() {
            break;
        }
        after = next;
        for raw in batch {
            let snap = derive(prev.as_ref(), &raw, &ds);
            let t = raw.ts_unix_ms;
            let recent: Vec<_> = requests
                .iter()
                .filter(|r| {
                    let end = r.ts_unix_ms + r.e2e_ms() as i64;
                    end > t - window_ms && end <= t
                })
                .collect();
            let stats = aggregate(recent, RECENT_REQUESTS.as_secs_f64(), &Slo::default());
            for line in trace::write_rows(&from_snapshot(&snap, &stats, None)) {
                writeln!(out, "{line}")?;
                rows += 1;
            }
            prev = Some(raw);
        }
    }
    out.flush()?;
    eprintln!("infermon: exported {rows} rows from \"{}\"", path.display());
    Ok(ExitCode::SUCCESS)
}
