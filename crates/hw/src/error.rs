//! The crate's error type: every error names the path, and the field and value where there is one.

use std::path::{Path, PathBuf};

/// Why a file under `/proc` or `/sys` could not be turned into a reading.
///
/// Messages are lowercase and put the offending value in quotes, e.g.
/// `/proc/meminfo: field "MemTotal" has value "abc": expected an integer number of kB`.
#[derive(Debug, thiserror::Error)]
pub enum HwError {
    /// The file or directory could not be read (missing, permission denied, not a file, ...).
    #[error("{}: {}", path.display(), describe_io(error))]
    Io {
        /// What was read.
        path: PathBuf,
        /// The operating system's error.
        error: std::io::Error,
    },
    /// The file was empty where a value was expected.
    #[error("{}: file is empty", path.display())]
    Empty {
        /// What was read.
        path: PathBuf,
    },
    /// A required field (a key in a `key value` file) was absent.
    #[error("{}: field \"{field}\" is missing", path.display())]
    MissingField {
        /// What was read.
        path: PathBuf,
        /// The field's name.
        field: String,
    },
    /// A field's value did not parse.
    #[error("{}: field \"{field}\" has value \"{value}\": expected {expected}", path.display())]
    BadField {
        /// What was read.
        path: PathBuf,
        /// The field's name.
        field: String,
        /// The value as found.
        value: String,
        /// What the value should have been.
        expected: &'static str,
    },
    /// A single-value file held something that did not parse.
    #[error("{}: value \"{value}\": expected {expected}", path.display())]
    BadValue {
        /// What was read.
        path: PathBuf,
        /// The value as found.
        value: String,
        /// What the value should have been.
        expected: &'static str,
    },
    /// The content had the wrong shape (a line that does not parse, a binary file too short...).
    #[error("{}: {problem}", path.display())]
    Malformed {
        /// What was read.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
}

impl HwError {
    /// The path the error is about.
    pub fn path(&self) -> &Path {
        match self {
            HwError::Io { path, .. }
            | HwError::Empty { path }
            | HwError::MissingField { path, .. }
            | HwError::BadField { path, .. }
            | HwError::BadValue { path, .. }
            | HwError::Malformed { path, .. } => path,
        }
    }

    /// The I/O error kind, when the file could not be read at all.
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        match self {
            HwError::Io { error, .. } => Some(error.kind()),
            _ => None,
        }
    }

    /// Points the error at `path`. Parsers work on strings and name the file by its usual
    /// location (`/proc/meminfo`); readers re-point the error at the file they actually read,
    /// which differs under a test root.
    pub(crate) fn at(mut self, new_path: &Path) -> Self {
        match &mut self {
            HwError::Io { path, .. }
            | HwError::Empty { path }
            | HwError::MissingField { path, .. }
            | HwError::BadField { path, .. }
            | HwError::BadValue { path, .. }
            | HwError::Malformed { path, .. } => *path = new_path.to_path_buf(),
        }
        self
    }

    /// An I/O error on `path`.
    pub(crate) fn io(path: &Path, error: std::io::Error) -> Self {
        HwError::Io {
            path: path.to_path_buf(),
            error,
        }
    }

    /// A malformed-content error on `path`.
    pub(crate) fn malformed(path: &Path, problem: impl Into<String>) -> Self {
        HwError::Malformed {
            path: path.to_path_buf(),
            problem: problem.into(),
        }
    }
}

/// The OS error text with a lowercase first letter ("no such file or directory (os error 2)").
fn describe_io(error: &std::io::Error) -> String {
    lowercase_first(&error.to_string())
}

/// `text` with a lowercase first letter, for messages from other libraries.
pub(crate) fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_lowercase_and_quote_the_value() {
        let e = HwError::BadField {
            path: PathBuf::from("/proc/meminfo"),
            field: "MemTotal".into(),
            value: "abc".into(),
            expected: "an integer number of kB",
        };
        assert_eq!(
            e.to_string(),
            "/proc/meminfo: field \"MemTotal\" has value \"abc\": expected an integer number of kB"
        );
        let e = HwError::io(
            Path::new("/sys/x"),
            std::io::Error::from_raw_os_error(libc::ENOENT),
        );
        assert_eq!(
            e.to_string(),
            "/sys/x: no such file or directory (os error 2)"
        );
    }

    #[test]
    fn at_repoints_the_path() {
        let e = HwError::Empty {
            path: PathBuf::from("/proc/stat"),
        }
        .at(Path::new("/tmp/root/proc/stat"));
        assert_eq!(e.path(), Path::new("/tmp/root/proc/stat"));
        assert_eq!(e.to_string(), "/tmp/root/proc/stat: file is empty");
    }
}
