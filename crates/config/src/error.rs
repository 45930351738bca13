use std::path::PathBuf;

/// A configuration problem, naming the key and value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file \"{path}\": {source}")]
    Read {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys / wrong types.
    #[error("config file \"{origin}\": {message}")]
    Syntax {
        /// File path or "inline".
        origin: String,
        /// The TOML parser's message (it names the key and line).
        message: String,
    },
    /// A value is not acceptable.
    #[error("invalid value \"{value}\" for {key} (from {layer}): expected {expected}")]
    Value {
        /// Dotted key or variable name.
        key: String,
        /// Offending value.
        value: String,
        /// Which layer it came from: file, environment or flag.
        layer: &'static str,
        /// What would have been accepted.
        expected: String,
    },
}
