//! Saved reports: the JSON reports in one folder (the agent's `<data dir>/reports`, where
//! `infermon bench --save` writes), listed with their headline figures for the dashboard.
//! A file that is not a readable report is listed with the reason, never left out.

use std::path::Path;

use serde::Serialize;

use crate::report::json;
use crate::schema::BenchReport;

/// One saved report as the list shows it. Figures are those of the report, `null` when it
/// has none; `error` is set (and the figures are absent) when the file cannot be read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// File name (`NAME.json`), what [`open`] takes.
    pub name: String,
    /// `run` or `sweep`.
    pub kind: Option<&'static str>,
    /// When the run started, ms since the Unix epoch.
    pub started_unix_ms: Option<i64>,
    /// The URL the run measured.
    pub url: Option<String>,
    /// The model asked for.
    pub model: Option<String>,
    /// `complete` or `partial`.
    pub status: Option<String>,
    /// Requests completed.
    pub requests_completed: Option<u64>,
    /// Completion tokens per second over the run.
    pub output_tokens_per_second: Option<f64>,
    /// Median time to first token, ms.
    pub ttft_p50_ms: Option<f64>,
    /// Mean time per output token, ms.
    pub tpot_mean_ms: Option<f64>,
    /// Models in the sweep.
    pub sweep_points: Option<usize>,
    /// Why the file could not be read as a report.
    pub error: Option<String>,
}

impl Entry {
    fn of(name: String, r: &BenchReport) -> Entry {
        let t = &r.run.totals;
        Entry {
            name,
            kind: Some(if r.sweep.is_some() { "sweep" } else { "run" }),
            started_unix_ms: Some(r.run.started_unix_ms),
            url: Some(r.run.target.url.clone()),
            model: r.run.target.model.clone(),
            status: serde_json::to_value(r.run.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string)),
            requests_completed: Some(t.requests_completed),
            output_tokens_per_second: t.output_tokens_per_second,
            ttft_p50_ms: t.ttft_ms.as_ref().map(|s| s.p50),
            tpot_mean_ms: t.tpot_ms.as_ref().map(|s| s.mean),
            sweep_points: r.sweep.as_ref().map(|s| s.points.len()),
            error: None,
        }
    }

    fn unreadable(name: String, error: String) -> Entry {
        Entry {
            name,
            kind: None,
            started_unix_ms: None,
            url: None,
            model: None,
            status: None,
            requests_completed: None,
            output_tokens_per_second: None,
            ttft_p50_ms: None,
            tpot_mean_ms: None,
            sweep_points: None,
            error: Some(error),
        }
    }
}

/// Checks a report name from a URL: `NAME.json`, letters, digits, `.`, `_` and `-` only, not
/// starting with a dot (so it can only name a file directly in the folder).
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = name.len() <= 200
        && name.ends_with(".json")
        && name.len() > ".json".len()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "report name \"{name}\" is not valid: expected NAME.json of letters, digits, '.', '_' \
             and '-' (as listed by /api/v1/reports)"
        ))
    }
}

/// The reports in `dir`, newest first (by start; unreadable files last, by name). A folder
/// that does not exist holds no reports.
pub fn list(dir: &Path) -> Result<Vec<Entry>, String> {
    let read = match std::fs::read_dir(dir) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot list \"{}\": {e}", dir.display())),
    };
    let mut out = Vec::new();
    for item in read {
        let item = item.map_err(|e| format!("cannot list \"{}\": {e}", dir.display()))?;
        let Some(name) = item.file_name().to_str().map(str::to_string) else {
            continue; // not a name check_name could accept, so never a report of ours
        };
        if check_name(&name).is_err() {
            continue;
        }
        out.push(match json::read(&item.path()) {
            Ok(r) => Entry::of(name, &r),
            Err(e) => Entry::unreadable(name, e),
        });
    }
    out.sort_by(|a, b| {
        b.started_unix_ms
            .is_some()
            .cmp(&a.started_unix_ms.is_some())
            .then(b.started_unix_ms.cmp(&a.started_unix_ms))
            .then(a.name.cmp(&b.name))
    });
    Ok(out)
}

/// One report by name: `Ok(None)` when there is no such file.
pub fn open(dir: &Path, name: &str) -> Result<Option<BenchReport>, String> {
    check_name(name)?;
    let path = dir.join(name);
    if !path.is_file() {
        return Ok(None);
    }
    json::read(&path).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{RunReport, RunStatus, SweepReport};
    use infermon_model::stats::Summary;

    fn report(started: i64, model: &str, sweep: bool) -> BenchReport {
        let mut run = RunReport {
            status: RunStatus::Partial,
            started_unix_ms: started,
            ..RunReport::default()
        };
        run.target.url = "http://127.0.0.1:8080".into();
        run.target.model = Some(model.into());
        run.totals.requests_completed = 7;
        run.totals.output_tokens_per_second = Some(123.5);
        run.totals.ttft_ms = Summary::of(&[10.0, 20.0, 30.0]);
        run.totals.tpot_ms = Summary::of(&[4.0, 6.0]);
        BenchReport::new(run, sweep.then(SweepReport::default))
    }

    #[test]
    fn lists_newest_first_with_figures_and_names_what_it_cannot_read() {
        let dir = tempfile::tempdir().unwrap();
        json::write(&dir.path().join("old.json"), &report(1_000, "a", false)).unwrap();
        json::write(&dir.path().join("new.json"), &report(2_000, "b", true)).unwrap();
        std::fs::write(dir.path().join("broken.json"), "{").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a report").unwrap();
        let l = list(dir.path()).unwrap();
        let names: Vec<&str> = l.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["new.json", "old.json", "broken.json"]);
        assert_eq!(l[0].kind, Some("sweep"));
        assert_eq!(l[0].sweep_points, Some(0));
        assert_eq!(l[1].kind, Some("run"));
        assert_eq!(l[1].status.as_deref(), Some("partial"));
        assert_eq!(l[1].requests_completed, Some(7));
        assert_eq!(l[1].output_tokens_per_second, Some(123.5));
        assert_eq!(l[1].ttft_p50_ms, Some(20.0));
        assert_eq!(l[1].tpot_mean_ms, Some(5.0));
        let err = l[2].error.as_deref().unwrap();
        assert!(
            err.contains("broken.json") && err.contains("not JSON"),
            "{err}"
        );
        assert_eq!(l[2].output_tokens_per_second, None);
    }

    #[test]
    fn a_missing_folder_holds_no_reports_and_names_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(list(&dir.path().join("none")).unwrap(), Vec::new());
        assert_eq!(open(dir.path(), "absent.json").unwrap(), None);
        for bad in [
            "../x.json",
            ".hidden.json",
            "a/b.json",
            "run.html",
            ".json",
            "a b.json",
        ] {
            let e = open(dir.path(), bad).unwrap_err();
            assert!(e.contains(&format!("\"{bad}\"")), "{e}");
        }
        json::write(&dir.path().join("r-1.json"), &report(5, "m", false)).unwrap();
        let r = open(dir.path(), "r-1.json").unwrap().unwrap();
        assert_eq!(r.run.target.model.as_deref(), Some("m"));
    }
}
