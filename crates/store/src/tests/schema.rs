//! Opening, PRAGMAs, schema versions and migrations.

use std::path::Path;

use rusqlite::Connection;

use super::{point, sample, T0};
use crate::schema::{migrate_to, user_version, SCHEMA_VERSION};
use crate::{HistoryQuery, Resolution, Retention, Store, StoreError};

fn open(path: &Path) -> Result<Store, StoreError> {
    Store::open(path, Retention::default())
}

#[test]
fn open_creates_the_file_with_the_documented_settings() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let store = open(&path).unwrap();
    assert!(path.is_file());
    let pragma = |name: &str| -> String {
        store
            .conn
            .pragma_query_value(None, name, |r| r.get::<_, rusqlite::types::Value>(0))
            .map(|v| match v {
                rusqlite::types::Value::Integer(i) => i.to_string(),
                rusqlite::types::Value::Text(t) => t,
                other => format!("{other:?}"),
            })
            .unwrap()
    };
    assert_eq!(pragma("journal_mode"), "wal");
    assert_eq!(pragma("synchronous"), "1"); // NORMAL
    assert_eq!(pragma("cache_size"), "-2048"); // 2 MiB
    assert_eq!(pragma("foreign_keys"), "1");
    assert_eq!(pragma("busy_timeout"), "5000");
    assert_eq!(pragma("page_size"), "1024");
    assert_eq!(pragma("wal_autocheckpoint"), "16384");
    assert_eq!(pragma("user_version"), SCHEMA_VERSION.to_string());
    let by: String = store
        .conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'last_opened_by'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(by, concat!("infermon-store ", env!("CARGO_PKG_VERSION")));
}

#[test]
fn reopening_keeps_data_and_does_not_migrate_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    {
        let mut store = open(&path).unwrap();
        store
            .write(&sample(T0), &[point("infermon_a", &[("k", "v")], 1.5)])
            .unwrap();
    }
    let mut store = open(&path).unwrap();
    assert_eq!(store.latest_sample().unwrap(), Some(sample(T0)));
    // The series id is found in the file, not duplicated.
    store
        .write(
            &sample(T0 + 1000),
            &[point("infermon_a", &[("k", "v")], 2.5)],
        )
        .unwrap();
    let stats = store.stats().unwrap();
    assert_eq!((stats.series, stats.points, stats.rollup_1m), (1, 2, 1));
}

#[test]
fn missing_directory_is_an_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-dir").join("history.db");
    let err = open(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot open store at \"{}\": directory \"{}\" does not exist",
            path.display(),
            dir.path().join("no-such-dir").display()
        )
    );
    assert!(!path.exists());
}

#[test]
fn a_file_that_is_not_a_database_is_an_open_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(
        &path,
        "this is not sqlite, but it is long enough to have a header......\n".repeat(20),
    )
    .unwrap();
    let err = open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("cannot open store at \"{}\": ", path.display())),
        "{text}"
    );
    assert!(text.contains("not a database"), "{text}");
}

#[test]
fn schema_newer_than_this_build_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let err = open(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "store at \"{}\" has schema version 99, newer than this infermon ({SCHEMA_VERSION})",
            path.display()
        )
    );
    let conn = Connection::open(&path).unwrap();
    assert_eq!(user_version(&conn).unwrap(), 99);
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tables, 0);
}

#[test]
fn negative_schema_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", -3)
        .unwrap();
    let err = open(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "store at \"{}\" has schema version -3, which no infermon writes",
            path.display()
        )
    );
}

/// Builds a v1 store (what the first release wrote) with one sample, series, point and rollups.
fn v1_store(path: &Path) {
    let mut conn = Connection::open(path).unwrap();
    migrate_to(&mut conn, path, 1).unwrap();
    assert_eq!(user_version(&conn).unwrap(), 1);
    conn.execute_batch(&format!(
        "INSERT INTO samples VALUES ({T0}, '{}');
         INSERT INTO series VALUES (1, 'infermon_a', 'gpu=\"0\"', 'gauge');
         INSERT INTO points VALUES (1, {T0}, 4.0);
         INSERT INTO rollup_1m VALUES (1, {T0}, 1, 4.0, 4.0, 4.0, 4.0, {T0});
         INSERT INTO rollup_1h VALUES (1, {T0}, 1, 4.0, 4.0, 4.0, 4.0, {T0});",
        serde_json::to_string(&sample(T0)).unwrap()
    ))
    .unwrap();
    let has_meta: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'meta'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(has_meta, 0);
}

#[test]
fn a_v1_store_is_migrated_and_its_data_still_reads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    v1_store(&path);

    let mut store = open(&path).unwrap();
    assert_eq!(store.stats().unwrap().schema_version, SCHEMA_VERSION);
    let by: String = store
        .conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'last_opened_by'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(by.starts_with("infermon-store "), "{by}");
    assert_eq!(store.raw_samples(T0, T0, 10).unwrap(), vec![sample(T0)]);
    let q = HistoryQuery {
        metric: "infermon_a".into(),
        labels: vec![("gpu".into(), "0".into())],
        from_ms: T0,
        to_ms: T0 + 1000,
        resolution: Resolution::Minute,
    };
    store
        .write(
            &sample(T0 + 1000),
            &[point("infermon_a", &[("gpu", "0")], 6.0)],
        )
        .unwrap();
    let h = store.history(&q).unwrap();
    assert_eq!(h.len(), 1);
    let p = h[0].points[0];
    assert_eq!(
        (p.count, p.value, p.min, p.max, p.last),
        (2, 5.0, 4.0, 6.0, 6.0)
    );
}

#[test]
fn a_failed_migration_step_is_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    v1_store(&path);
    // Sabotage step 2: a `meta` table with another shape already exists.
    Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE meta (x);")
        .unwrap();
    let err = open(&path).unwrap_err();
    assert!(
        matches!(err, StoreError::Migration { version: 2, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with(&format!(
            "cannot migrate store at \"{}\" to schema version 2: ",
            path.display()
        )),
        "{err}"
    );
    let conn = Connection::open(&path).unwrap();
    assert_eq!(user_version(&conn).unwrap(), 1);
}

/// Builds a v4 store (the last one keyed by `ts_ms`) with three samples, written out of time
/// order, and a series with its point and rollups.
fn v4_store(path: &Path) {
    let mut conn = Connection::open(path).unwrap();
    migrate_to(&mut conn, path, 4).unwrap();
    assert_eq!(user_version(&conn).unwrap(), 4);
    for ts in [T0 + 2000, T0, T0 + 1000] {
        conn.execute(
            "INSERT INTO samples (ts_ms, raw) VALUES (?1, ?2)",
            (ts, serde_json::to_string(&sample(ts)).unwrap()),
        )
        .unwrap();
    }
    conn.execute_batch(&format!(
        "INSERT INTO series VALUES (1, 'infermon_a', 'gpu=\"0\"', 'gauge');
         INSERT INTO points VALUES (1, {T0}, 4.0);
         INSERT INTO rollup_1m VALUES (1, {T0}, 1, 4.0, 4.0, 4.0, 4.0, {T0});
         INSERT INTO rollup_1h VALUES (1, {T0}, 1, 4.0, 4.0, 4.0, 4.0, {T0});"
    ))
    .unwrap();
}

#[test]
fn a_v4_store_is_migrated_to_samples_keyed_by_write_order_keeping_its_history() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    v4_store(&path);

    let mut store = open(&path).unwrap();
    assert_eq!(store.stats().unwrap().schema_version, SCHEMA_VERSION);
    assert_eq!(
        store.raw_samples(i64::MIN, i64::MAX, 10).unwrap(),
        vec![sample(T0), sample(T0 + 1000), sample(T0 + 2000)]
    );
    // The copy's sequence follows time, and reading by time uses the new index.
    let seq: Vec<(i64, i64)> = store
        .conn
        .prepare("SELECT seq, ts_ms FROM samples ORDER BY seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(seq, vec![(1, T0), (2, T0 + 1000), (3, T0 + 2000)]);
    let plan: String = store
        .conn
        .query_row(
            "EXPLAIN QUERY PLAN SELECT raw FROM samples WHERE ts_ms BETWEEN 1 AND 2
             ORDER BY ts_ms, seq",
            [],
            |r| r.get(3),
        )
        .unwrap();
    assert!(plan.contains("samples_ts"), "{plan}");

    // A sample at the wall time of a migrated one is now kept beside it.
    let mut again = sample(T0 + 1000);
    again.mono_ms += 5;
    store
        .write(&again, &[point("infermon_a", &[("gpu", "0")], 6.0)])
        .unwrap();
    assert_eq!(
        store.raw_samples(T0 + 1000, T0 + 1000, 10).unwrap(),
        vec![sample(T0 + 1000), again]
    );
    let h = store
        .history(&HistoryQuery {
            metric: "infermon_a".into(),
            labels: vec![],
            from_ms: T0,
            to_ms: T0 + 2000,
            resolution: Resolution::Minute,
        })
        .unwrap();
    let p = h[0].points[0];
    assert_eq!((p.count, p.min, p.max, p.last), (2, 4.0, 6.0, 6.0));
    assert_eq!(store.integrity_check().unwrap(), vec!["ok".to_owned()]);
    drop(store);
    // Reopening does not migrate again.
    let store = open(&path).unwrap();
    assert_eq!(store.stats().unwrap().samples, 4);
}

#[test]
fn a_failed_v5_step_leaves_the_v4_samples_as_they_were() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    v4_store(&path);
    Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE samples_v5 (x);")
        .unwrap();
    let err = open(&path).unwrap_err();
    assert!(
        matches!(err, StoreError::Migration { version: 5, .. }),
        "{err:?}"
    );
    let conn = Connection::open(&path).unwrap();
    assert_eq!(user_version(&conn).unwrap(), 4);
    let keys: Vec<i64> = conn
        .prepare("SELECT rowid FROM samples ORDER BY rowid")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(keys, vec![T0, T0 + 1000, T0 + 2000]);
}

/// A store made with SQLite's 4 KiB pages (every store before 1 KiB pages) keeps them: the
/// page size of a file with tables cannot change, and opening it must not fail.
#[test]
fn a_store_with_4_kib_pages_opens_and_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    {
        let c = Connection::open(&path).unwrap();
        c.pragma_update(None, "page_size", 4096).unwrap();
        c.execute_batch("CREATE TABLE t (x); DROP TABLE t;")
            .unwrap();
    }
    let mut store = open(&path).unwrap();
    store
        .write(&sample(T0), &[point("infermon_v", &[], 1.0)])
        .unwrap();
    let page: i64 = store
        .conn
        .pragma_query_value(None, "page_size", |r| r.get(0))
        .unwrap();
    assert_eq!(page, 4096);
}
