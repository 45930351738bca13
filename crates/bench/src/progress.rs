//! Progress callbacks while a run goes on (the CLI draws bars from them).

use infermon_model::request::RequestRecord;

use crate::schema::ConfigReport;

/// Told about a run as it goes. Every method has an empty default.
pub trait Progress: Send + Sync {
    /// A stage starts: `warm-up` or a configuration, with the requests it will send.
    fn stage(&self, label: &str, total: u64) {
        let _ = (label, total);
    }

    /// A request of the current stage ended.
    fn request_done(&self, record: &RequestRecord) {
        let _ = record;
    }

    /// A configuration ended.
    fn stage_done(&self, report: &ConfigReport) {
        let _ = report;
    }

    /// Something worth telling the user (a probe failed, a figure is unavailable).
    fn note(&self, text: &str) {
        let _ = text;
    }
}

/// Says nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {}
