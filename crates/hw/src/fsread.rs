//! Small file-reading helpers that turn every failure into an [`HwError`] naming the path.

use std::path::{Path, PathBuf};

use crate::error::HwError;

/// The whole file as text.
pub(crate) fn read_string(path: &Path) -> Result<String, HwError> {
    std::fs::read_to_string(path).map_err(|e| HwError::io(path, e))
}

/// The whole file as bytes.
pub(crate) fn read_bytes(path: &Path) -> Result<Vec<u8>, HwError> {
    std::fs::read(path).map_err(|e| HwError::io(path, e))
}

/// Reads and parses a file, pointing any error at the file actually read.
pub(crate) fn read_parsed<T>(
    path: &Path,
    parse: impl FnOnce(&str) -> Result<T, HwError>,
) -> Result<T, HwError> {
    let text = read_string(path)?;
    parse(&text).map_err(|e| e.at(path))
}

/// A one-value file (sysfs style), trimmed; an empty file is an error.
pub(crate) fn read_value(path: &Path) -> Result<String, HwError> {
    let text = read_string(path)?;
    let value = text.trim();
    if value.is_empty() {
        return Err(HwError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(value.to_string())
}

/// A one-value file holding a non-negative integer.
pub(crate) fn read_u64(path: &Path) -> Result<u64, HwError> {
    let value = read_value(path)?;
    value.parse().map_err(|_| HwError::BadValue {
        path: path.to_path_buf(),
        value,
        expected: "a non-negative integer",
    })
}

/// A one-value file holding an integer that may be negative (temperatures).
pub(crate) fn read_i64(path: &Path) -> Result<i64, HwError> {
    let value = read_value(path)?;
    value.parse().map_err(|_| HwError::BadValue {
        path: path.to_path_buf(),
        value,
        expected: "an integer",
    })
}

/// Like [`read_u64`], but a missing file is `Ok(None)`.
pub(crate) fn read_u64_if_present(path: &Path) -> Result<Option<u64>, HwError> {
    match read_u64(path) {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.io_kind() == Some(std::io::ErrorKind::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// One directory entry whose name is a prefix followed by numbers (`cpu12`, `intel-rapl:0:1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NumberedEntry {
    /// The entry's name, e.g. `cpu12`.
    pub(crate) name: String,
    /// Its full path.
    pub(crate) path: PathBuf,
    /// The numbers after the prefix, e.g. `[0, 1]` for `intel-rapl:0:1`; entries sort by them.
    pub(crate) key: Vec<u32>,
}

/// Entries of `dir` named `prefix` + numbers separated by `:`, sorted numerically
/// (`cpu2` before `cpu10`). Anything else in the directory is ignored.
pub(crate) fn list_numbered(dir: &Path, prefix: &str) -> Result<Vec<NumberedEntry>, HwError> {
    let entries = std::fs::read_dir(dir).map_err(|e| HwError::io(dir, e))?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| HwError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(key) = numbered_key(&name, prefix) {
            found.push(NumberedEntry {
                path: entry.path(),
                name,
                key,
            });
        }
    }
    found.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(found)
}

/// The numbers of `name` after `prefix`, when the rest is `N` or `N:M...`.
fn numbered_key(name: &str, prefix: &str) -> Option<Vec<u32>> {
    let rest = name.strip_prefix(prefix)?;
    rest.split(':')
        .map(|part| {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                None
            } else {
                part.parse().ok()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_keys() {
        assert_eq!(numbered_key("cpu12", "cpu"), Some(vec![12]));
        assert_eq!(numbered_key("cpufreq", "cpu"), None);
        assert_eq!(numbered_key("card0-DP-1", "card"), None);
        assert_eq!(
            numbered_key("intel-rapl:0:1", "intel-rapl:"),
            Some(vec![0, 1])
        );
        assert_eq!(numbered_key("intel-rapl-mmio:0", "intel-rapl:"), None);
        assert_eq!(numbered_key("cpu", "cpu"), None);
    }

    #[test]
    fn list_sorts_numerically_and_skips_others() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["cpu10", "cpu2", "cpufreq", "cpuidle", "cpu0"] {
            std::fs::create_dir(dir.path().join(name)).unwrap();
        }
        let names: Vec<String> = list_numbered(dir.path(), "cpu")
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, ["cpu0", "cpu2", "cpu10"]);
    }

    #[test]
    fn value_errors_name_the_path_and_value() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v");
        std::fs::write(&p, "12x\n").unwrap();
        let msg = read_u64(&p).unwrap_err().to_string();
        assert!(msg.contains(&p.display().to_string()), "{msg}");
        assert!(msg.contains("value \"12x\""), "{msg}");
        std::fs::write(&p, "\n").unwrap();
        assert!(read_u64(&p)
            .unwrap_err()
            .to_string()
            .ends_with("file is empty"));
        assert_eq!(read_u64_if_present(&dir.path().join("nope")).unwrap(), None);
    }
}
