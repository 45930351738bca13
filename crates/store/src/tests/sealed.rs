//! Issue 12: raw samples sealed into compressed hour blocks read back exactly as written.

use std::path::Path;

use infermon_model::raw::RawSample;
use rusqlite::Connection;

use super::{point, sample, T0};
use crate::blocks;
use crate::schema::{migrate_to, user_version, SCHEMA_VERSION};
use crate::{Retention, Store, StoreError};

const H: i64 = 3_600_000;

/// `sample(ts)` with something that changes every round, like a real sample.
fn varied(ts: i64) -> RawSample {
    let mut s = sample(ts);
    s.agent.collect_ms = 3.0 + (ts % 7_000) as f64 / 1000.0;
    s.agent.cpu_seconds_total = Some((ts - T0) as f64 * 13.0 / 2_000_000.0);
    s
}

/// What any store reads back for `s`: serde_json's float parsing is not guaranteed to give
/// back every bit of every float it printed, in the old layout as in this one.
fn as_read(s: &RawSample) -> RawSample {
    serde_json::from_str(&serde_json::to_string(s).unwrap()).unwrap()
}

/// Writes a round every 2 s for `[from, to)`.
fn fill(store: &mut Store, from: i64, to: i64) -> Vec<RawSample> {
    (from..to)
        .step_by(2000)
        .map(|ts| {
            let s = varied(ts);
            store
                .write(&s, &[point("infermon_a", &[], (ts % 97) as f64)])
                .unwrap();
            as_read(&s)
        })
        .collect()
}

fn counts(store: &Store) -> (i64, i64) {
    let n = |sql| store.conn.query_row(sql, [], |r| r.get(0)).unwrap();
    (
        n("SELECT count(*) FROM samples"),
        n("SELECT coalesce(sum(count), 0) FROM sample_blocks"),
    )
}

#[test]
fn a_block_packs_and_unpacks_to_the_same_rows() {
    let rows: Vec<blocks::Row> = vec![
        (1, T0, serde_json::to_string(&varied(T0)).unwrap()),
        (7, T0, "{\"é\":\"\\u0001\"}".to_owned()),
        (3, T0 + 2000, String::new()),
    ];
    let (packed, raw) = blocks::compress(&rows).unwrap();
    assert_eq!(blocks::decompress(&packed, raw).unwrap(), rows);
    assert_eq!(blocks::unpack(&blocks::pack(&rows)).unwrap(), rows);
    assert!(blocks::unpack(&blocks::pack(&rows)[..30]).is_err());
}

#[test]
fn numbers_written_as_deltas_read_back_as_the_same_text() {
    let texts = [
        r#"{"a":1,"b":-2,"c":3.5,"d":12.0,"e":"x1\"9","f":[1e20,-0.0,null]}"#,
        r#"{"a":2,"b":-2,"c":3.25,"d":15.0,"e":"x1\"9","f":[1e21,-0.0,null]}"#,
        r#"{"a":9223372036854775807,"b":-9223372036854775808,"c":0,"d":1.0,"e":"7","f":[0,1,2]}"#,
        r#"{"a":-9223372036854775808,"b":9223372036854775807,"c":00,"d":1,"e":"7","f":[0,1,2]}"#,
        r#"{"a":5}"#,
        "{\"raw\x01\":5}",
        r#"{"a":6}"#,
        r#"{}"#,
        r#"{}"#,
        r#"[1,2,3]"#,
        r#"[1,2,30]"#,
    ];
    let rows: Vec<blocks::Row> = texts
        .iter()
        .enumerate()
        .map(|(k, t)| (k as i64, T0, (*t).to_owned()))
        .collect();
    let packed = blocks::pack_delta(&rows);
    assert_eq!(blocks::unpack(&packed).unwrap(), rows);
    let (z, raw) = blocks::compress(&rows).unwrap();
    assert_eq!(raw, packed.len(), "the delta form was chosen");
    assert_eq!(blocks::decompress(&z, raw).unwrap(), rows);
    // Real samples, one after another.
    let real: Vec<blocks::Row> = (0..50)
        .map(|k| {
            (
                k,
                T0 + k * 2000,
                serde_json::to_string(&varied(T0 + k * 2000)).unwrap(),
            )
        })
        .collect();
    assert_eq!(blocks::unpack(&blocks::pack_delta(&real)).unwrap(), real);
}

#[test]
fn sealed_hours_read_back_exactly_and_page_without_gaps() {
    let mut store = Store::open_in_memory(Retention::default()).unwrap();
    let written = fill(&mut store, T0, T0 + 2 * H + 30 * 60_000);
    let stats = store.prune(T0 + 2 * H + 30 * 60_000).unwrap();
    // The two whole hours are sealed, the half hour stays as rows.
    assert_eq!(stats.sealed, 3600);
    assert_eq!(counts(&store), (900, 3600));
    assert_eq!(store.stats().unwrap().samples, 4500);

    // Exactly the JSON that was written, byte for byte.
    let (data, raw_bytes): (Vec<u8>, i64) = store
        .conn
        .query_row(
            "SELECT data, raw_bytes FROM sample_blocks ORDER BY first_ts_ms LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let rows = blocks::decompress(&data, raw_bytes as usize).unwrap();
    assert_eq!(rows.len(), 1800);
    for (k, (seq, ts, json)) in rows.iter().enumerate() {
        assert_eq!((*seq, *ts), (k as i64 + 1, T0 + k as i64 * 2000));
        assert_eq!(*json, serde_json::to_string(&written[k]).unwrap());
    }
    let json_bytes: usize = rows.iter().map(|r| r.2.len()).sum();
    assert!(
        data.len() * 20 < json_bytes,
        "{} of {json_bytes}",
        data.len()
    );

    assert_eq!(
        store.raw_samples(i64::MIN, i64::MAX, 10_000).unwrap(),
        written
    );
    // Pages of odd sizes across block boundaries neither skip nor repeat.
    let mut paged = Vec::new();
    let mut cursor = None;
    loop {
        let (page, next) = store
            .raw_samples_page(T0 + 1000, T0 + 2 * H + 60_000, cursor, 777)
            .unwrap();
        if page.is_empty() {
            assert_eq!(next, None);
            break;
        }
        paged.extend(page);
        cursor = next;
    }
    assert_eq!(paged, written[1..=3630].to_vec());
    // A window inside one sealed hour.
    assert_eq!(
        store
            .raw_samples(T0 + H + 10_000, T0 + H + 13_999, 10)
            .unwrap(),
        written[1805..=1806].to_vec()
    );
    assert_eq!(store.latest_sample().unwrap().as_ref(), written.last());
}

#[test]
fn after_everything_is_sealed_writes_go_on_in_sequence() {
    let mut store = Store::open_in_memory(Retention::default()).unwrap();
    let mut written = fill(&mut store, T0, T0 + H);
    store.prune(T0 + H).unwrap();
    assert_eq!(counts(&store), (0, 1800));
    assert_eq!(store.latest_sample().unwrap().as_ref(), written.last());
    // The wall clock was set back half an hour: the new round shares times with sealed ones.
    let back = as_read(&varied(T0 + 30 * 60_000));
    store.write(&back, &[]).unwrap();
    let seq: i64 = store
        .conn
        .query_row("SELECT seq FROM samples", [], |r| r.get(0))
        .unwrap();
    assert_eq!(seq, 1801);
    assert_eq!(
        store
            .raw_samples(T0 + 30 * 60_000, T0 + 30 * 60_000, 10)
            .unwrap(),
        vec![written[900].clone(), back.clone()]
    );
    // The newest by time is still the last sealed one.
    assert_eq!(store.latest_sample().unwrap().as_ref(), written.last());
    written.insert(901, back);
    assert_eq!(
        store.raw_samples(i64::MIN, i64::MAX, 10_000).unwrap(),
        written
    );
}

#[test]
fn prune_drops_whole_blocks_past_the_raw_retention() {
    let mut store = Store::open_in_memory(Retention::default()).unwrap();
    let written = fill(&mut store, T0, T0 + 2 * H);
    store.prune(T0 + 2 * H).unwrap();
    assert_eq!(counts(&store), (0, 3600));
    let kept = i64::try_from(Retention::default().raw.as_millis()).unwrap();
    assert_eq!(kept, 7 * 24 * H, "the default keeps raw samples a week");
    // The first hour's newest sample is at T0 + H - 2 s.
    let stats = store.prune(T0 + H - 2000 + kept).unwrap();
    assert_eq!(stats.samples, 0);
    let stats = store.prune(T0 + H - 1999 + kept).unwrap();
    assert_eq!(stats.samples, 1800);
    assert_eq!(
        store.raw_samples(i64::MIN, i64::MAX, 10_000).unwrap(),
        written[1800..].to_vec()
    );
}

#[test]
fn a_damaged_block_is_an_error_naming_it() {
    let mut store = Store::open_in_memory(Retention::default()).unwrap();
    fill(&mut store, T0, T0 + H);
    store.prune(T0 + H).unwrap();
    store
        .conn
        .execute("UPDATE sample_blocks SET data = x'28b52ffd00'", [])
        .unwrap();
    let err = store.raw_samples(T0, T0 + H, 10).unwrap_err();
    assert!(matches!(err, StoreError::Block { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("reading the block of samples ending at seq 1800 in store at"),
        "{err}"
    );
}

/// A v5 store (samples as JSON rows keyed by `seq`) with two hours of samples and a point.
fn v5_store(path: &Path) -> Vec<RawSample> {
    let mut conn = Connection::open(path).unwrap();
    migrate_to(&mut conn, path, 5).unwrap();
    assert_eq!(user_version(&conn).unwrap(), 5);
    let written: Vec<RawSample> = (T0..T0 + 2 * H)
        .step_by(2000)
        .map(|ts| as_read(&varied(ts)))
        .collect();
    let tx = conn.transaction().unwrap();
    for s in &written {
        tx.execute(
            "INSERT INTO samples (ts_ms, raw) VALUES (?1, ?2)",
            (s.ts_unix_ms, serde_json::to_string(s).unwrap()),
        )
        .unwrap();
    }
    tx.execute_batch(&format!(
        "INSERT INTO series VALUES (1, 'infermon_a', 'gpu=\"0\"', 'gauge');
         INSERT INTO points VALUES (1, {T0}, 4.0);
         INSERT INTO rollup_1m VALUES (1, {T0}, 1, 4.0, 4.0, 4.0, 4.0, {T0});
         INSERT INTO rollup_1h VALUES (1, {T0}, 1, 4.0, 4.0, 4.0, 4.0, {T0});"
    ))
    .unwrap();
    tx.commit().unwrap();
    written
}

#[test]
fn a_v5_store_is_migrated_keeping_every_sample_and_sealed_by_the_next_prunes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let mut written = v5_store(&path);

    let mut store = Store::open(&path, Retention::default()).unwrap();
    assert_eq!(store.stats().unwrap().schema_version, SCHEMA_VERSION);
    // The step itself moves nothing.
    assert_eq!(counts(&store), (3600, 0));
    assert_eq!(
        store.raw_samples(i64::MIN, i64::MAX, 10_000).unwrap(),
        written
    );
    let later = as_read(&varied(T0 + 2 * H));
    store.write(&later, &[]).unwrap();
    written.push(later);
    let stats = store.prune(T0 + 2 * H + 2000).unwrap();
    assert_eq!(stats.sealed, 3600);
    assert_eq!(counts(&store), (1, 3600));
    assert_eq!(
        store.raw_samples(i64::MIN, i64::MAX, 10_000).unwrap(),
        written
    );
    let h = store
        .history(&crate::HistoryQuery {
            metric: "infermon_a".into(),
            labels: vec![],
            from_ms: T0,
            to_ms: T0 + 2 * H,
            resolution: crate::Resolution::Hour,
        })
        .unwrap();
    assert_eq!(h[0].points[0].value, 4.0);
    assert_eq!(store.integrity_check().unwrap(), vec!["ok".to_owned()]);
    drop(store);
    let store = Store::open(&path, Retention::default()).unwrap();
    assert_eq!(
        store.raw_samples(i64::MIN, i64::MAX, 10_000).unwrap(),
        written
    );
}

#[test]
fn one_prune_seals_at_most_six_hours_and_the_next_goes_on() {
    let mut store = Store::open_in_memory(Retention::default()).unwrap();
    let written = fill(&mut store, T0, T0 + 8 * H);
    assert_eq!(store.prune(T0 + 8 * H).unwrap().sealed, 6 * 1800);
    assert_eq!(counts(&store), (2 * 1800, 6 * 1800));
    assert_eq!(
        store.raw_samples(i64::MIN, i64::MAX, 20_000).unwrap(),
        written
    );
    assert_eq!(store.prune(T0 + 8 * H).unwrap().sealed, 2 * 1800);
    assert_eq!(counts(&store), (0, 8 * 1800));
    assert_eq!(
        store.raw_samples(i64::MIN, i64::MAX, 20_000).unwrap(),
        written
    );
}
