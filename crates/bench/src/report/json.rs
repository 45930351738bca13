//! The JSON report (schema in [`crate::schema`]).

use std::path::Path;

use crate::schema::{BenchReport, SCHEMA_VERSION};

/// The report as pretty-printed JSON.
pub fn to_string(r: &BenchReport) -> String {
    // Serialising plain data with string keys cannot fail; say so instead of panicking.
    serde_json::to_string_pretty(r)
        .unwrap_or_else(|e| format!("{{\"error\":\"cannot encode the report: {e}\"}}"))
}

/// Parses a report; the error names what is wrong (not JSON, another schema version).
pub fn parse(text: &str, name: &str) -> Result<BenchReport, String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("\"{name}\" is not JSON: {e}"))?;
    match v.get("schema_version").and_then(serde_json::Value::as_u64) {
        Some(n) if n == u64::from(SCHEMA_VERSION) => {}
        Some(n) => {
            return Err(format!(
                "\"{name}\" has schema_version {n}; this infermon reads version {SCHEMA_VERSION}"
            ))
        }
        None => {
            return Err(format!(
                "\"{name}\" has no schema_version: not an infermon bench report"
            ))
        }
    }
    serde_json::from_value(v)
        .map_err(|e| format!("\"{name}\" is not an infermon bench report: {e}"))
}

/// Reads a report file.
pub fn read(path: &Path) -> Result<BenchReport, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read \"{}\": {e}", path.display()))?;
    parse(&text, &path.display().to_string())
}

/// Writes a report file.
pub fn write(path: &Path, r: &BenchReport) -> Result<(), String> {
    std::fs::write(path, to_string(r) + "\n")
        .map_err(|e| format!("cannot write \"{}\": {e}", path.display()))
}
