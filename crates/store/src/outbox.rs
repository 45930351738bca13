//! The persisted outbox; see [`Outbox`].

use rusqlite::{OptionalExtension, Row};

use crate::{on_sql, Store, StoreError};

/// `last_error` is cut to this many bytes (at a character boundary).
const MAX_ERROR_BYTES: usize = 2000;

/// One queued item, as [`Outbox::due`] and [`Outbox::oldest`] return it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    /// Row id: increasing in order of arrival, never reused.
    pub id: i64,
    /// The sender's channel, e.g. `alert:ops`.
    pub channel: String,
    /// The key that made it unique in its channel, if any.
    pub dedup_key: Option<String>,
    /// When it was enqueued, ms since the Unix epoch.
    pub created_ms: i64,
    /// What the sender stored.
    pub payload: Vec<u8>,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Not to be tried before this time, ms since the Unix epoch.
    pub next_try_ms: i64,
    /// The error of the last failed attempt.
    pub last_error: Option<String>,
}

/// The persisted outbox of a [`Store`], from [`Store::outbox`]: items that must be delivered
/// at least once (alerts now; hub push and remote write later), each sender on its own
/// `channel`.
///
/// Table `outbox` (schema v4): `id INTEGER PRIMARY KEY AUTOINCREMENT` (never reused, so it is
/// the order of arrival), `channel TEXT`, `dedup_key TEXT` (`UNIQUE (channel, dedup_key)`;
/// `NULL` never collides), `created_ms`, `payload BLOB` (opaque to the store), `attempts`,
/// `next_try_ms` (not before this time, ms since the Unix epoch; `created_ms` at first) and
/// `last_error`.
///
/// A sender [`enqueue`](Outbox::enqueue)s, takes what is [`due`](Outbox::due) (or the
/// channel's [`oldest`](Outbox::oldest) items when it must keep order), and reports each item
/// [`delivered`](Outbox::delivered) (the row is deleted) or [`failed`](Outbox::failed) (one
/// more attempt, the error, and when to try again). [`trim`](Outbox::trim) caps a channel by
/// dropping its oldest items. Each call is one statement, committed on its own, so an item is
/// never lost between `enqueue` and `delivered`; a sender that crashes after sending and
/// before `delivered` sends that item again (at least once, not exactly once).
///
/// ```
/// # use infermon_store::{Retention, Store};
/// # fn main() -> Result<(), infermon_store::StoreError> {
/// let store = Store::open_in_memory(Retention::default())?;
/// let outbox = store.outbox();
/// assert!(outbox.enqueue("alert:ops", Some("ops:opened:x"), b"{}", 1_000)?);
/// assert!(!outbox.enqueue("alert:ops", Some("ops:opened:x"), b"{}", 1_001)?); // once
/// for item in outbox.due("alert:ops", 1_000, 100)? {
///     // send item.payload, then:
///     outbox.delivered(item.id)?;
/// }
/// assert_eq!(outbox.len("alert:ops")?, 0);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Outbox<'a> {
    store: &'a Store,
}

impl Store {
    /// The persisted outbox (table `outbox`), shared by every sender through its channel.
    pub fn outbox(&self) -> Outbox<'_> {
        Outbox { store: self }
    }
}

/// The columns [`read_item`] reads, in its order.
const ITEM_COLUMNS: &str =
    "id, channel, dedup_key, created_ms, payload, attempts, next_try_ms, last_error";

fn read_item(row: &Row<'_>) -> rusqlite::Result<OutboxItem> {
    Ok(OutboxItem {
        id: row.get(0)?,
        channel: row.get(1)?,
        dedup_key: row.get(2)?,
        created_ms: row.get(3)?,
        payload: row.get(4)?,
        attempts: u32::try_from(row.get::<_, i64>(5)?.max(0)).unwrap_or(u32::MAX),
        next_try_ms: row.get(6)?,
        last_error: row.get(7)?,
    })
}

fn limit_sql(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// `s` cut to at most `max` bytes at a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl Outbox<'_> {
    /// Queues `payload` on `channel`, due at once. Returns `false`, and changes nothing, when
    /// the channel already holds an item with this `dedup_key` (so something is enqueued once
    /// while it waits; once delivered and deleted, the key is free again). Items without a key
    /// are never duplicates.
    pub fn enqueue(
        &self,
        channel: &str,
        dedup_key: Option<&str>,
        payload: &[u8],
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let path = self.store.path.as_path();
        let mut st = self
            .store
            .conn
            .prepare_cached(
                "INSERT INTO outbox (channel, dedup_key, created_ms, payload, next_try_ms)
                 VALUES (?1, ?2, ?3, ?4, ?3)
                 ON CONFLICT (channel, dedup_key) DO NOTHING",
            )
            .map_err(on_sql(path, "preparing an outbox insert"))?;
        let n = st
            .execute(rusqlite::params![channel, dedup_key, now_ms, payload])
            .map_err(|cause| {
                crate::sql_error(
                    path,
                    format!("enqueueing into outbox channel \"{channel}\""),
                    cause,
                )
            })?;
        Ok(n == 1)
    }

    /// Up to `limit` items of `channel` whose `next_try_ms` is at or before `now_ms`, oldest
    /// (lowest id) first.
    pub fn due(
        &self,
        channel: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        self.select(
            &format!(
                "SELECT {ITEM_COLUMNS} FROM outbox
                 WHERE channel = ?1 AND next_try_ms <= ?2 ORDER BY id LIMIT ?3"
            ),
            rusqlite::params![channel, now_ms, limit_sql(limit)],
            channel,
        )
    }

    /// Up to `limit` items of `channel`, oldest first, due or not: for a sender that keeps
    /// order and waits while the head of its queue is not due.
    pub fn oldest(&self, channel: &str, limit: usize) -> Result<Vec<OutboxItem>, StoreError> {
        self.select(
            &format!("SELECT {ITEM_COLUMNS} FROM outbox WHERE channel = ?1 ORDER BY id LIMIT ?2"),
            rusqlite::params![channel, limit_sql(limit)],
            channel,
        )
    }

    fn select(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        channel: &str,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let path = self.store.path.as_path();
        let fail =
            |cause| crate::sql_error(path, format!("reading outbox channel \"{channel}\""), cause);
        let mut st = self.store.conn.prepare_cached(sql).map_err(fail)?;
        let rows = st.query_map(params, read_item).map_err(fail)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(fail)
    }

    /// One item, by id; `None` when it is gone (delivered, trimmed).
    pub fn get(&self, id: i64) -> Result<Option<OutboxItem>, StoreError> {
        let path = self.store.path.as_path();
        self.store
            .conn
            .prepare_cached(&format!("SELECT {ITEM_COLUMNS} FROM outbox WHERE id = ?1"))
            .and_then(|mut st| st.query_row([id], read_item).optional())
            .map_err(|cause| crate::sql_error(path, format!("reading outbox item {id}"), cause))
    }

    /// Deletes a delivered item. Returns whether it was still there.
    pub fn delivered(&self, id: i64) -> Result<bool, StoreError> {
        let path = self.store.path.as_path();
        let n = self
            .store
            .conn
            .prepare_cached("DELETE FROM outbox WHERE id = ?1")
            .and_then(|mut st| st.execute([id]))
            .map_err(|cause| {
                crate::sql_error(path, format!("deleting delivered outbox item {id}"), cause)
            })?;
        Ok(n == 1)
    }

    /// Records a failed attempt: `attempts + 1`, `last_error` (cut to 2 000 bytes),
    /// and not to be tried again before `next_try_ms`. Returns whether the item was still
    /// there.
    pub fn failed(&self, id: i64, error: &str, next_try_ms: i64) -> Result<bool, StoreError> {
        let path = self.store.path.as_path();
        let n = self
            .store
            .conn
            .prepare_cached(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, next_try_ms = ?3
                 WHERE id = ?1",
            )
            .and_then(|mut st| {
                st.execute(rusqlite::params![
                    id,
                    truncate(error, MAX_ERROR_BYTES),
                    next_try_ms
                ])
            })
            .map_err(|cause| {
                crate::sql_error(
                    path,
                    format!("recording a failed attempt of outbox item {id}"),
                    cause,
                )
            })?;
        Ok(n == 1)
    }

    /// Items queued on `channel`.
    pub fn len(&self, channel: &str) -> Result<u64, StoreError> {
        let path = self.store.path.as_path();
        self.store
            .conn
            .prepare_cached("SELECT count(*) FROM outbox WHERE channel = ?1")
            .and_then(|mut st| st.query_row([channel], |r| r.get::<_, i64>(0)))
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(|cause| {
                crate::sql_error(
                    path,
                    format!("counting outbox channel \"{channel}\""),
                    cause,
                )
            })
    }

    /// Whether `channel` is empty.
    pub fn is_empty(&self, channel: &str) -> Result<bool, StoreError> {
        Ok(self.len(channel)? == 0)
    }

    /// Caps `channel` at `max_items`, deleting its oldest items beyond that. Returns how many
    /// were dropped.
    pub fn trim(&self, channel: &str, max_items: usize) -> Result<u64, StoreError> {
        let path = self.store.path.as_path();
        let n = self
            .store
            .conn
            .prepare_cached(
                "DELETE FROM outbox WHERE id IN (
                     SELECT id FROM outbox WHERE channel = ?1
                     ORDER BY id DESC LIMIT -1 OFFSET ?2)",
            )
            .and_then(|mut st| st.execute(rusqlite::params![channel, limit_sql(max_items)]))
            .map_err(|cause| {
                crate::sql_error(
                    path,
                    format!("trimming outbox channel \"{channel}\" to {max_items} items"),
                    cause,
                )
            })?;
        Ok(u64::try_from(n).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn truncate_keeps_char_boundaries() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("abc", 2), "ab");
        assert_eq!(truncate("aé", 2), "a");
        assert_eq!(truncate("", 0), "");
    }
}
