//! Sealed blocks of raw samples: the samples of one UTC hour, compressed together.
//!
//! Consecutive samples of a node differ in a few numbers, so compressing an hour of them as
//! one zstd frame keeps a small fraction of their JSON (see the crate docs, "Raw samples").
//! The frame holds, per sample in `(ts_ms, seq)` order: `seq` and `ts_ms` (little-endian
//! `i64`), the JSON's length (little-endian `u32`), and the JSON exactly as it was stored.

use std::path::Path;

use rusqlite::{params, Connection};

use crate::write::HOUR_MS;
use crate::{on_sql, StoreError};

/// zstd level used when sealing (measured in docs/PERFORMANCE.md, "History that lasts a
/// month").
pub(crate) const LEVEL: i32 = 9;
/// The most hour blocks one seal builds, so a prune after a migration or a long stop stays
/// bounded; the rest waits for the next prune.
pub(crate) const MAX_BLOCKS_PER_SEAL: usize = 6;

/// One stored sample: write sequence, time, JSON.
pub(crate) type Row = (i64, i64, String);

/// First byte of a block's uncompressed bytes: plain records.
const PLAIN: u8 = 1;
/// First byte of a block's uncompressed bytes: records with numbers as deltas.
const DELTA: u8 = 2;
/// Stands for a number in a skeleton; JSON text never holds a raw control character.
const HOLE: u8 = 0x01;
/// Record tags of a [`DELTA`] block.
const TAG_JSON: u8 = 0;
const TAG_SAME: u8 = 1;
const TAG_NEW: u8 = 2;

/// Builds a block's uncompressed bytes from rows in `(ts_ms, seq)` order, each JSON kept
/// whole ([`PLAIN`]).
pub(crate) fn pack(rows: &[Row]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + rows.iter().map(|r| r.2.len() + 20).sum::<usize>());
    out.push(PLAIN);
    for (seq, ts, json) in rows {
        out.extend_from_slice(&seq.to_le_bytes());
        out.extend_from_slice(&ts.to_le_bytes());
        put_bytes(&mut out, json.as_bytes());
    }
    out
}

/// Builds a block's uncompressed bytes with each JSON split into its skeleton (the text with
/// every number replaced by [`HOLE`]) and its numbers ([`DELTA`]). A skeleton equal to the
/// previous record's is not repeated, and each number is written against the previous
/// record's number at the same place: nothing when equal, `d` and the difference for two
/// integers (`12` or `12.0` alike) that print back exactly, else its text; numbers are
/// separated by `,` and ended by `;`. Counters and steady gauges, most of a sample, shrink
/// to a few bytes that compress well.
pub(crate) fn pack_delta(rows: &[Row]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.iter().map(|r| r.2.len() / 4 + 20).sum());
    out.push(DELTA);
    let mut prev: Option<(Vec<u8>, Vec<&str>)> = None;
    for (seq, ts, json) in rows {
        out.extend_from_slice(&seq.to_le_bytes());
        out.extend_from_slice(&ts.to_le_bytes());
        let Some((skeleton, numbers)) = split(json) else {
            out.push(TAG_JSON);
            put_bytes(&mut out, json.as_bytes());
            prev = None;
            continue;
        };
        let same = prev.as_ref().filter(|p| p.0 == skeleton);
        match same {
            Some(p) => {
                out.push(TAG_SAME);
                for (k, (n, before)) in numbers.iter().zip(&p.1).enumerate() {
                    if k > 0 {
                        out.push(b',');
                    }
                    if n == before {
                        continue;
                    }
                    match delta(before, n) {
                        Some(d) => {
                            out.push(b'd');
                            out.extend_from_slice(d.to_string().as_bytes());
                        }
                        None => out.extend_from_slice(n.as_bytes()),
                    }
                }
            }
            None => {
                out.push(TAG_NEW);
                put_bytes(&mut out, &skeleton);
                out.extend_from_slice(numbers.join(",").as_bytes());
            }
        }
        out.push(b';');
        prev = Some((skeleton, numbers));
    }
    out
}

/// Appends a length (little-endian `u32`) and the bytes. Lengths are checked by the caller.
fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Splits JSON text into a skeleton and the number tokens outside strings; `None` when the
/// text holds a [`HOLE`] byte itself.
fn split(json: &str) -> Option<(Vec<u8>, Vec<&str>)> {
    let bytes = json.as_bytes();
    if bytes.contains(&HOLE) {
        return None;
    }
    let mut skeleton = Vec::with_capacity(bytes.len());
    let mut numbers = Vec::new();
    let (mut i, mut in_string) = (0, false);
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            skeleton.push(b);
            if b == b'\\' {
                if let Some(&next) = bytes.get(i + 1) {
                    skeleton.push(next);
                }
                i += 2;
                continue;
            }
            in_string = b != b'"';
            i += 1;
        } else if b == b'-' || b.is_ascii_digit() {
            let start = i;
            while i < bytes.len()
                && matches!(bytes[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
            {
                i += 1;
            }
            // Number tokens are ASCII, so these are character boundaries.
            numbers.push(&json[start..i]);
            skeleton.push(HOLE);
        } else {
            in_string = b == b'"';
            skeleton.push(b);
            i += 1;
        }
    }
    Some((skeleton, numbers))
}

/// An integer written as `N` or `N.0`: its value and whether it had the `.0`.
fn integer(text: &str) -> Option<(i64, bool)> {
    let (digits, dot0) = match text.strip_suffix(".0") {
        Some(d) => (d, true),
        None => (text, false),
    };
    let value: i64 = digits.parse().ok()?;
    // Only the canonical spelling, so printing the value gives the text back.
    (print(value, dot0) == text).then_some((value, dot0))
}

fn print(value: i64, dot0: bool) -> String {
    if dot0 {
        format!("{value}.0")
    } else {
        value.to_string()
    }
}

/// `now - before` when both are integers of the same spelling.
fn delta(before: &str, now: &str) -> Option<i64> {
    let (b, b_dot) = integer(before)?;
    let (n, n_dot) = integer(now)?;
    (b_dot == n_dot).then(|| n.checked_sub(b)).flatten()
}

/// The inverse of [`pack`] and [`pack_delta`]; an error names what is wrong with the bytes.
pub(crate) fn unpack(bytes: &[u8]) -> Result<Vec<Row>, String> {
    let mut r = Reader { bytes, at: 1 };
    let format = *bytes.first().ok_or("empty block")?;
    if format != PLAIN && format != DELTA {
        return Err(format!("unknown block format {format}"));
    }
    let mut rows = Vec::new();
    let mut prev: Option<(Vec<u8>, Vec<String>)> = None;
    while r.at < bytes.len() {
        let seq = i64::from_le_bytes(r.array()?);
        let ts = i64::from_le_bytes(r.array()?);
        let tag = if format == PLAIN {
            TAG_JSON
        } else {
            r.array::<1>()?[0]
        };
        let json = match tag {
            TAG_JSON => {
                prev = None;
                let len = u32::from_le_bytes(r.array()?) as usize;
                std::str::from_utf8(r.take(len)?)
                    .map_err(|e| format!("sample seq {seq} is not UTF-8: {e}"))?
                    .to_owned()
            }
            TAG_SAME | TAG_NEW => {
                let skeleton = if tag == TAG_NEW {
                    let len = u32::from_le_bytes(r.array()?) as usize;
                    r.take(len)?.to_vec()
                } else {
                    prev.as_ref()
                        .ok_or(format!("sample seq {seq} repeats a skeleton it has not"))?
                        .0
                        .clone()
                };
                let end = r.bytes[r.at..]
                    .iter()
                    .position(|&b| b == b';')
                    .ok_or(format!("numbers of sample seq {seq} are not ended"))?;
                let text = std::str::from_utf8(r.take(end)?)
                    .map_err(|e| format!("numbers of sample seq {seq}: {e}"))?;
                r.take(1)?;
                let holes = skeleton.iter().filter(|&&b| b == HOLE).count();
                let fields: Vec<&str> = if holes == 0 {
                    Vec::new()
                } else {
                    text.split(',').collect()
                };
                if fields.len() != holes {
                    return Err(format!(
                        "sample seq {seq} has {} numbers for {holes} places",
                        fields.len()
                    ));
                }
                let mut numbers = Vec::with_capacity(holes);
                for (k, f) in fields.into_iter().enumerate() {
                    let before = || {
                        prev.as_ref()
                            .filter(|_| tag == TAG_SAME)
                            .and_then(|p| p.1.get(k))
                            .ok_or(format!("sample seq {seq} refers to a number it has not"))
                    };
                    let n = if tag == TAG_NEW {
                        f.to_owned()
                    } else if f.is_empty() {
                        before()?.clone()
                    } else if let Some(d) = f.strip_prefix('d') {
                        let d: i64 = d.parse().map_err(|e| format!("sample seq {seq}: {e}"))?;
                        let (b, dot0) = integer(before()?)
                            .ok_or(format!("sample seq {seq} adds to a non-integer"))?;
                        print(
                            b.checked_add(d)
                                .ok_or(format!("sample seq {seq} overflows"))?,
                            dot0,
                        )
                    } else {
                        f.to_owned()
                    };
                    numbers.push(n);
                }
                let mut json = Vec::with_capacity(skeleton.len() + holes * 8);
                let mut it = numbers.iter();
                for &b in &skeleton {
                    match (b, b == HOLE) {
                        (_, true) => json
                            .extend_from_slice(it.next().map(String::as_bytes).unwrap_or_default()),
                        (b, false) => json.push(b),
                    }
                }
                let json = String::from_utf8(json)
                    .map_err(|e| format!("sample seq {seq} is not UTF-8: {e}"))?;
                prev = Some((skeleton, numbers));
                json
            }
            other => return Err(format!("sample seq {seq} has unknown tag {other}")),
        };
        rows.push((seq, ts, json));
    }
    Ok(rows)
}

/// A cursor over a block's bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| format!("block ends inside a record at byte {}", self.at))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut a = [0_u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
}

/// Compresses rows into a block: the [`pack_delta`] form when it reads back to exactly
/// these rows (checked here, every time), else the [`pack`] form. Returns the compressed
/// bytes and the uncompressed size.
pub(crate) fn compress(rows: &[Row]) -> std::io::Result<(Vec<u8>, usize)> {
    let delta = pack_delta(rows);
    let bytes = if unpack(&delta).is_ok_and(|back| back == rows) {
        delta
    } else {
        pack(rows)
    };
    Ok((zstd::bulk::compress(&bytes, LEVEL)?, bytes.len()))
}

/// Decompresses a block whose uncompressed size is `raw_bytes`.
pub(crate) fn decompress(data: &[u8], raw_bytes: usize) -> Result<Vec<Row>, String> {
    let bytes = zstd::bulk::decompress(data, raw_bytes).map_err(|e| format!("zstd: {e}"))?;
    if bytes.len() != raw_bytes {
        return Err(format!(
            "block holds {} bytes, {raw_bytes} expected",
            bytes.len()
        ));
    }
    unpack(&bytes)
}

/// Moves the samples of every UTC hour that ended at or before `before_ms` from `samples`
/// into one block per hour (at most [`MAX_BLOCKS_PER_SEAL`]), oldest first. Returns the
/// number of samples sealed. Runs inside the caller's transaction.
pub(crate) fn seal(conn: &Connection, path: &Path, before_ms: i64) -> Result<u64, StoreError> {
    let cut = before_ms.div_euclid(HOUR_MS) * HOUR_MS;
    let hours: Vec<i64> = conn
        .prepare_cached(
            "SELECT DISTINCT ts_ms - ((ts_ms % 3600000) + 3600000) % 3600000 FROM samples
             WHERE ts_ms < ?1 ORDER BY 1 LIMIT ?2",
        )
        .and_then(|mut st| {
            st.query_map(params![cut, MAX_BLOCKS_PER_SEAL as i64], |r| r.get(0))?
                .collect()
        })
        .map_err(on_sql(path, "listing hours of samples to seal"))?;
    let mut sealed = 0_u64;
    for hour in hours {
        let rows: Vec<Row> = conn
            .prepare_cached(
                "SELECT seq, ts_ms, raw FROM samples WHERE ts_ms >= ?1 AND ts_ms < ?2
                 ORDER BY ts_ms, seq",
            )
            .and_then(|mut st| {
                st.query_map(params![hour, hour + HOUR_MS], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?
                .collect()
            })
            .map_err(on_sql(path, "reading samples to seal"))?;
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
            continue;
        };
        let fail = |reason: String| StoreError::Block {
            path: path.to_path_buf(),
            action: format!("sealing the samples of hour {hour}"),
            reason,
        };
        if let Some(big) = rows.iter().find(|r| u32::try_from(r.2.len()).is_err()) {
            return Err(fail(format!("sample seq {} is longer than 4 GiB", big.0)));
        }
        let (data, raw_bytes) = compress(&rows).map_err(|e| fail(format!("zstd: {e}")))?;
        let last_seq = rows.iter().map(|r| r.0).max().unwrap_or(last.0);
        let first_seq = rows.iter().map(|r| r.0).min().unwrap_or(first.0);
        conn.prepare_cached(
            "INSERT INTO sample_blocks
                 (last_seq, first_seq, first_ts_ms, last_ts_ms, count, raw_bytes, data)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .and_then(|mut st| {
            st.execute(params![
                last_seq,
                first_seq,
                first.1,
                last.1,
                rows.len() as i64,
                raw_bytes as i64,
                data
            ])
        })
        .map_err(on_sql(path, "inserting a sealed block of samples"))?;
        conn.prepare_cached("DELETE FROM samples WHERE ts_ms >= ?1 AND ts_ms < ?2")
            .and_then(|mut st| st.execute(params![hour, hour + HOUR_MS]))
            .map_err(on_sql(path, "deleting sealed samples"))?;
        sealed += rows.len() as u64;
    }
    Ok(sealed)
}
