//! The store's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in the store. Messages are lowercase, quote the store's path or
/// the offending value, and include the underlying SQLite or JSON error text, so
/// `to_string()` alone is a complete message.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The directory meant to hold the store file does not exist (the store never creates
    /// directories).
    #[error(
        "cannot open store at \"{}\": directory \"{}\" does not exist",
        .path.display(),
        .dir.display()
    )]
    MissingDirectory {
        /// The store file asked for.
        path: PathBuf,
        /// Its parent directory, which is missing.
        dir: PathBuf,
    },

    /// SQLite could not open or configure the file.
    #[error("cannot open store at \"{}\": {cause}", .path.display())]
    Open {
        /// The store file.
        path: PathBuf,
        /// What SQLite said.
        cause: rusqlite::Error,
    },

    /// The file was written by a newer infermon; it is left untouched.
    #[error(
        "store at \"{}\" has schema version {found}, newer than this infermon ({known})",
        .path.display()
    )]
    SchemaTooNew {
        /// The store file.
        path: PathBuf,
        /// `PRAGMA user_version` found in the file.
        found: i64,
        /// The newest schema version this build knows.
        known: i64,
    },

    /// The file's schema version is negative: no infermon wrote it.
    #[error(
        "store at \"{}\" has schema version {found}, which no infermon writes",
        .path.display()
    )]
    SchemaInvalid {
        /// The store file.
        path: PathBuf,
        /// `PRAGMA user_version` found in the file.
        found: i64,
    },

    /// A schema migration step failed; its transaction was rolled back.
    #[error(
        "cannot migrate store at \"{}\" to schema version {version}: {cause}",
        .path.display()
    )]
    Migration {
        /// The store file.
        path: PathBuf,
        /// The version the failed step would have produced.
        version: i64,
        /// What SQLite said.
        cause: rusqlite::Error,
    },

    /// A query or statement failed.
    #[error("{action} in store at \"{}\": {cause}", .path.display())]
    Sqlite {
        /// The store file (`:memory:` for an in-memory store).
        path: PathBuf,
        /// What the store was doing, e.g. `inserting sample at ts_ms 1700000000000`.
        action: String,
        /// What SQLite said.
        cause: rusqlite::Error,
    },

    /// A sample could not be encoded as JSON (nothing was written).
    #[error("cannot encode the sample at ts_ms {ts_ms} as json: {cause}")]
    Encode {
        /// The sample's `ts_unix_ms`.
        ts_ms: i64,
        /// What serde_json said.
        cause: serde_json::Error,
    },

    /// A stored sample does not decode into this build's `RawSample`.
    #[error(
        "stored sample at ts_ms {ts_ms} in store at \"{}\" does not decode: {cause}",
        .path.display()
    )]
    Decode {
        /// The store file.
        path: PathBuf,
        /// The sample's key.
        ts_ms: i64,
        /// What serde_json said.
        cause: serde_json::Error,
    },

    /// A sealed block of raw samples could not be built, or read back as it was written.
    #[error("{action} in store at \"{}\": {reason}", .path.display())]
    Block {
        /// The store file.
        path: PathBuf,
        /// What the store was doing, e.g. `reading the block ending at seq 1800`.
        action: String,
        /// What is wrong.
        reason: String,
    },

    /// A stored series has label text that is not `k="v",...`.
    #[error(
        "series {series_id} in store at \"{}\" has malformed labels \"{text}\": {reason}",
        .path.display()
    )]
    BadLabels {
        /// The store file.
        path: PathBuf,
        /// `series.id`.
        series_id: i64,
        /// The stored label text.
        text: String,
        /// What is wrong with it.
        reason: String,
    },

    /// An unusable store file (or its `-wal`/`-shm`) could not be renamed aside.
    #[error(
        "cannot move the unusable store at \"{}\" aside to \"{}\": {cause}",
        .path.display(),
        .to.display()
    )]
    SetAside {
        /// The file that could not be moved.
        path: PathBuf,
        /// Where it was to go.
        to: PathBuf,
        /// What the filesystem said.
        cause: std::io::Error,
    },

    /// A time range whose start is after its end.
    #[error("invalid time range: from_ms {from_ms} is after to_ms {to_ms}")]
    InvalidRange {
        /// Start of the range, ms since the Unix epoch.
        from_ms: i64,
        /// End of the range, ms since the Unix epoch.
        to_ms: i64,
    },
}

impl StoreError {
    /// What SQLite said, when it said something.
    fn sqlite_code(&self) -> Option<rusqlite::ErrorCode> {
        match self {
            StoreError::Open { cause, .. }
            | StoreError::Migration { cause, .. }
            | StoreError::Sqlite { cause, .. } => cause.sqlite_error_code(),
            _ => None,
        }
    }

    /// Whether the file is damaged or is not a store this build can ever read: SQLite found it
    /// corrupt or not a database, or its schema version is negative. A full disk, a lock or a
    /// missing permission is never taken for damage.
    pub fn is_corrupt(&self) -> bool {
        use rusqlite::ErrorCode as C;
        matches!(self, StoreError::SchemaInvalid { .. })
            || matches!(
                self.sqlite_code(),
                Some(C::DatabaseCorrupt | C::NotADatabase)
            )
    }

    /// Whether SQLite reported a full disk (`SQLITE_FULL`: the filesystem or a quota is out
    /// of space).
    pub fn is_disk_full(&self) -> bool {
        self.sqlite_code() == Some(rusqlite::ErrorCode::DiskFull)
    }

    /// Whether the same write may succeed later without anything changing in what is written:
    /// a full disk, an I/O error, a lock held by another connection past the busy timeout, a
    /// file that cannot be opened or written for now, or SQLite out of memory. Errors about the
    /// data itself (encoding, constraints) and about the file's format are not retryable.
    pub fn is_retryable(&self) -> bool {
        use rusqlite::ErrorCode as C;
        matches!(
            self.sqlite_code(),
            Some(
                C::DiskFull
                    | C::SystemIoFailure
                    | C::DatabaseBusy
                    | C::DatabaseLocked
                    | C::CannotOpen
                    | C::ReadOnly
                    | C::OutOfMemory
                    | C::FileLockingProtocolFailed
            )
        )
    }
}
