//! `infermon doctor`: one sampling round with the agent's own collectors and config, then every
//! source that could not be read, with the reason and the fix (`fixes.rs`, pure).
//!
//! A check is `ok` when its source was read, or when it does not apply to this machine (no
//! NVIDIA GPU on the PCI bus for `gpu.nvml`, no AMD GPU for `gpu.amdgpu`, a non-Intel CPU for
//! `host.cpu_throttle`): those say `n/a` with the reason, and never fail the exit status.

mod fixes;

use std::process::ExitCode;

use infermon_agent::Collector;
use infermon_config::{load, Overrides, Settings};
use infermon_model::raw::{GpuVendor, RawSample, Reading};
use infermon_model::{derive, DeriveSettings, Snapshot};
use serde::Serialize;

use crate::cli::DoctorArgs;
pub use fixes::{judge, Facts, Verdict};

/// One source's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Source name, as in the snapshot's `sources`.
    pub source: String,
    /// Read, or not applicable to this machine.
    pub ok: bool,
    /// `ok`, `n/a` or `fail`.
    pub status: &'static str,
    /// Why it failed, or why it does not apply.
    pub reason: Option<String>,
    /// What to do (failures only).
    pub fix: Option<String>,
}

impl Check {
    fn read(source: String) -> Self {
        Check {
            source,
            ok: true,
            status: "ok",
            reason: None,
            fix: None,
        }
    }

    fn unread(source: String, reason: String, facts: &Facts) -> Self {
        let reason = if reason.trim().is_empty() {
            "unavailable (no reason given)".to_string()
        } else {
            reason
        };
        match judge(&source, &reason, facts) {
            Verdict::NotApplicable(why) => Check {
                source,
                ok: true,
                status: "n/a",
                reason: Some(format!("{why} ({reason})")),
                fix: None,
            },
            Verdict::Fail(fix) => Check {
                source,
                ok: false,
                status: "fail",
                reason: Some(reason),
                fix: Some(fix),
            },
        }
    }
}

/// `{"checks": [...]}`
#[derive(Debug, Serialize)]
struct Report<'a> {
    checks: &'a [Check],
}

fn overrides(a: &DoctorArgs) -> Overrides {
    Overrides {
        engines: a.engines.clone(),
        no_discovery: a.no_discovery,
        root: a.root.clone(),
        ..Overrides::default()
    }
}

/// Runs one round and prints the checks; exit status 0 when every check is ok.
pub fn run(args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let settings = load(args.config.as_deref(), &overrides(&args))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let raw = rt.block_on(sample(&settings));
    let snapshot = derive(None, &raw, &DeriveSettings { pue: settings.pue });
    let facts = Facts {
        pci: infermon_hw::pci_gpus(&settings.root).ok(),
    };
    let checks = checks(&raw, &snapshot, &facts);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&Report { checks: &checks })?
        );
    } else {
        print!("{}", table(&checks));
    }
    Ok(if checks.iter().all(|c| c.ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// One sampling round, as the agent's first.
async fn sample(settings: &Settings) -> RawSample {
    let mut collector = Collector::new(settings);
    if settings.discovery {
        collector.refresh_discovery();
    }
    collector.sample(settings.interval).await
}

/// Every source of the snapshot as a check, plus one per GPU whose files or device answered
/// "permission denied". An engine whose `/health` answered but not healthy fails its health
/// check (the reading itself is `ok`: something answered).
pub fn checks(raw: &RawSample, snapshot: &Snapshot, facts: &Facts) -> Vec<Check> {
    let mut out = Vec::new();
    for s in &snapshot.sources {
        let reason = match (&s.reason, s.ok) {
            (_, true) => unhealthy(raw, &s.source),
            (Some(r), false) => Some(r.clone()),
            (None, false) => Some(String::new()),
        };
        out.push(match reason {
            None => Check::read(s.source.clone()),
            Some(r) => Check::unread(s.source.clone(), r, facts),
        });
    }
    for g in &raw.gpus {
        let denied: Vec<&str> = g
            .unavailable
            .iter()
            .map(String::as_str)
            .filter(|u| u.to_ascii_lowercase().contains("permission denied"))
            .collect();
        let source = match g.vendor {
            GpuVendor::Nvidia => format!("gpu.nvml[{}]", g.index),
            GpuVendor::Amd => format!("gpu.amdgpu[{}]", g.index),
        };
        out.push(if denied.is_empty() {
            Check::read(source)
        } else {
            Check::unread(source, denied.join("; "), facts)
        });
    }
    out
}

/// For `engine.KIND[URL].health` that was read: why the answer is not healthy, if it is not.
fn unhealthy(raw: &RawSample, source: &str) -> Option<String> {
    let e = raw
        .engines
        .iter()
        .find(|e| source == format!("engine.{}[{}].health", e.kind.as_str(), e.instance))?;
    let Reading::Ok { value: h } = &e.health else {
        return None;
    };
    if h.http_status == 200 && h.status == "ok" {
        return None;
    }
    Some(if h.status.starts_with("http ") {
        format!("{}/health: {}", e.instance, h.status)
    } else {
        format!(
            "{}/health answered HTTP {}: {}",
            e.instance, h.http_status, h.status
        )
    })
}

/// The checks as a table: source, status, reason, and the fix on the line below.
pub fn table(checks: &[Check]) -> String {
    let width = checks
        .iter()
        .map(|c| c.source.chars().count())
        .max()
        .unwrap_or(6)
        .max(6);
    let mut out = format!("{:<width$}  {:<6}  REASON\n", "SOURCE", "STATUS");
    for c in checks {
        let status = match c.status {
            "fail" => "FAIL",
            other => other,
        };
        let line = format!(
            "{:<width$}  {:<6}  {}",
            c.source,
            status,
            c.reason.as_deref().unwrap_or("")
        );
        out.push_str(line.trim_end());
        out.push('\n');
        if let Some(fix) = &c.fix {
            out.push_str(&format!("{:<width$}  {:<6}  fix: {fix}\n", "", ""));
        }
    }
    let failed = checks.iter().filter(|c| !c.ok).count();
    if failed == 0 {
        out.push_str("\nevery source is readable\n");
    } else {
        out.push_str(&format!(
            "\n{failed} of {} sources not readable\n",
            checks.len()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use infermon_model::raw::EngineHealth;
    use infermon_model::SourceState;

    fn raw_with_health(status: u16, word: &str) -> RawSample {
        let mut raw = infermon_model::testing::sample_with_engine(1000, 10.0, 1.0);
        for e in &mut raw.engines {
            e.health = Reading::ok(EngineHealth {
                http_status: status,
                status: word.into(),
            });
        }
        raw
    }

    #[test]
    fn unhealthy_answer_fails_the_health_check() {
        let raw = raw_with_health(503, "loading model");
        let snap = derive(None, &raw, &DeriveSettings::default());
        let checks = checks(&raw, &snap, &Facts::default());
        let health: Vec<&Check> = checks
            .iter()
            .filter(|c| c.source.ends_with(".health"))
            .collect();
        assert!(!health.is_empty());
        for c in health {
            assert!(!c.ok, "{c:?}");
            assert!(c
                .reason
                .as_deref()
                .unwrap()
                .contains("HTTP 503: loading model"));
            assert!(c.fix.as_deref().unwrap().contains("loading its model"));
        }
    }

    #[test]
    fn every_failed_check_has_reason_and_fix_and_the_table_shows_them() {
        let raw = infermon_model::testing::empty_sample(1000);
        let mut snap = derive(None, &raw, &DeriveSettings::default());
        snap.sources = vec![
            SourceState {
                source: "host.pressure".into(),
                ok: false,
                reason: Some(
                    "/proc/pressure: PSI not available (kernel without CONFIG_PSI or psi=0)".into(),
                ),
            },
            SourceState {
                source: "host.cpu".into(),
                ok: false,
                reason: None,
            },
            SourceState {
                source: "host.memory".into(),
                ok: true,
                reason: None,
            },
        ];
        let checks = checks(&raw, &snap, &Facts::default());
        for c in checks.iter().filter(|c| !c.ok) {
            assert!(!c.reason.as_deref().unwrap_or("").is_empty(), "{c:?}");
            assert!(!c.fix.as_deref().unwrap_or("").is_empty(), "{c:?}");
        }
        let t = table(&checks);
        assert!(t.contains("host.pressure"), "{t}");
        assert!(t.contains("FAIL"), "{t}");
        assert!(t.contains("fix: boot the kernel with `psi=1`"), "{t}");
        assert!(t.contains("2 of "), "{t}");
    }
}
