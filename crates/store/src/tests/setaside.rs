//! Issue 12: a damaged store, or one from a newer build, is moved aside and a fresh one opens.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::{point, sample, T0};
use crate::schema::SCHEMA_VERSION;
use crate::{Retention, Store, StoreError};

fn open(path: &Path) -> Result<(Store, Option<crate::SetAside>), StoreError> {
    Store::open_or_set_aside(path, Retention::default())
}

/// Files in `dir` whose name starts with `prefix`, sorted.
fn named(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect();
    v.sort();
    v
}

/// A store at `path` holding `n` written rounds, closed (checkpointed).
fn filled(path: &Path, n: i64) {
    let mut store = Store::open(path, Retention::default()).unwrap();
    for k in 0..n {
        let pts: Vec<_> = (0..20)
            .map(|i| point("infermon_a", &[("i", &i.to_string())], (k * i) as f64))
            .collect();
        store.write(&sample(T0 + k * 2000), &pts).unwrap();
    }
}

fn assert_fresh_and_usable(store: &mut Store) {
    assert_eq!(store.stats().unwrap().samples, 0);
    assert_eq!(store.stats().unwrap().schema_version, SCHEMA_VERSION);
    store
        .write(&sample(T0), &[point("infermon_a", &[], 1.0)])
        .unwrap();
    assert_eq!(store.latest_sample().unwrap(), Some(sample(T0)));
}

#[test]
fn a_sound_store_is_opened_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    filled(&path, 3);
    let (store, aside) = open(&path).unwrap();
    assert_eq!(aside, None);
    assert_eq!(store.stats().unwrap().samples, 3);
    assert_eq!(named(dir.path(), "history.db.").len(), 0);
}

#[test]
fn random_bytes_are_moved_aside_and_a_fresh_store_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let junk: Vec<u8> = (0..65_536_u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&path, &junk).unwrap();
    let (mut store, aside) = open(&path).unwrap();
    let aside = aside.unwrap();
    assert_eq!(aside.path, path);
    let name = aside
        .moved_to
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(name.starts_with("history.db.corrupt-"), "{name}");
    assert!(aside.reason.contains("not a database"), "{}", aside.reason);
    assert!(
        aside.reason.contains(&path.display().to_string()),
        "{}",
        aside.reason
    );
    // The bad bytes are kept, untouched, under the new name.
    assert_eq!(std::fs::read(&aside.moved_to).unwrap(), junk);
    assert_fresh_and_usable(&mut store);
}

#[test]
fn a_truncated_store_is_moved_aside_with_its_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    filled(&path, 400);
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(len > 64 * 1024, "{len}");
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len / 2).unwrap();
    drop(f);
    // A stale WAL beside it is never replayed into the fresh store (SQLite drops a WAL it
    // cannot read when the failed connection closes; one it can read would go along).
    let wal = dir.path().join("history.db-wal");
    std::fs::write(&wal, b"not a wal").unwrap();
    let (mut store, aside) = open(&path).unwrap();
    let aside = aside.unwrap();
    assert!(aside.reason.contains("malformed"), "{}", aside.reason);
    assert!(
        aside.reason.contains(&path.display().to_string()),
        "{}",
        aside.reason
    );
    assert_eq!(std::fs::metadata(&aside.moved_to).unwrap().len(), len / 2);
    assert_fresh_and_usable(&mut store);
}

#[test]
fn a_store_from_a_newer_build_is_moved_aside_named_by_its_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let (mut store, aside) = open(&path).unwrap();
    let aside = aside.unwrap();
    let name = aside
        .moved_to
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(name.starts_with("history.db.newer-v99-"), "{name}");
    assert_eq!(
        aside.reason,
        format!(
            "store at \"{}\" has schema version 99, newer than this infermon ({SCHEMA_VERSION})",
            path.display()
        )
    );
    // The newer file is intact: a newer build can take it back.
    let conn = Connection::open(&aside.moved_to).unwrap();
    assert_eq!(crate::schema::user_version(&conn).unwrap(), 99);
    assert_fresh_and_usable(&mut store);
    // A second bad file the same second gets its own name.
    drop(store);
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let (_, again) = open(&path).unwrap();
    assert_ne!(again.unwrap().moved_to, aside.moved_to);
    let main_files = named(dir.path(), "history.db.newer-v99-")
        .into_iter()
        .filter(|p| {
            !p.to_string_lossy().ends_with("-wal") && !p.to_string_lossy().ends_with("-shm")
        })
        .count();
    assert_eq!(main_files, 2);
}

#[test]
fn a_missing_directory_is_an_error_and_nothing_is_moved() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gone").join("history.db");
    let err = open(&path).unwrap_err();
    assert!(
        matches!(err, StoreError::MissingDirectory { .. }),
        "{err:?}"
    );
    assert!(!err.is_corrupt());
}
