//! The hub's node registry (`hub.db`): which names joined, the SHA-256 of each node's token
//! (never the token itself) and revocations. It is written only when a node joins or is
//! revoked, so the lookup at every push never waits on a writer. (Hubs before 2026-12-06 also
//! kept each node's last push here, `last_seen_ms` and `last_push`; they are read once at
//! start for a node whose store holds none. Each node's store keeps it now.)
//!
//! Every lookup reads the file, so `infermon hub revoke NAME` run beside a running hub takes
//! effect on that node's next push.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension};
use sha2::{Digest, Sha256};

use crate::HubError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS nodes (
    name         TEXT PRIMARY KEY,
    token_sha256 TEXT NOT NULL UNIQUE,
    joined_ms    INTEGER NOT NULL,
    revoked_ms   INTEGER,
    last_seen_ms INTEGER,
    last_push    TEXT
);
";

/// One registered node as the registry holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Registered {
    /// Its name.
    pub name: String,
    /// When it joined, ms since the Unix epoch.
    pub joined_ms: i64,
    /// When it was revoked, if it was.
    pub revoked_ms: Option<i64>,
    /// When a hub before 2026-12-06 last stored a push of it (newer hubs keep it in the
    /// node's store).
    pub last_seen_ms: Option<i64>,
    /// Its newest pushed sample as a hub before 2026-12-06 kept it (JSON of a
    /// `PushedSample`), if any; only read by [`Registry::all_with_last_push`].
    pub last_push: Option<String>,
}

/// The open registry.
pub struct Registry {
    /// Lookups (authenticating every push, listing nodes). WAL lets them go on while the
    /// writer commits or checkpoints.
    reader: Mutex<Connection>,
    /// Joins and revocations.
    writer: Mutex<Connection>,
    path: PathBuf,
}

fn sql(path: &Path, what: &str) -> impl FnOnce(rusqlite::Error) -> HubError {
    let (path, what) = (path.display().to_string(), what.to_string());
    move |e| HubError::internal(format!("hub registry {path}: {what}: {e}"))
}

/// Hex SHA-256 of a token.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// 32 random bytes from the kernel, as 64 hex digits.
pub fn new_token() -> Result<String, HubError> {
    use std::io::Read;
    let mut b = [0_u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|e| HubError::internal(format!("reading /dev/urandom for a node token: {e}")))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

impl Registry {
    /// Opens (creating) `DIR/hub.db`.
    pub fn open(dir: &Path) -> Result<Registry, HubError> {
        let path = dir.join("hub.db");
        let writer = Self::connect(&path)?;
        writer
            .execute_batch(SCHEMA)
            .map_err(sql(&path, "creating the schema"))?;
        let reader = Self::connect(&path)?;
        Ok(Registry {
            reader: Mutex::new(reader),
            writer: Mutex::new(writer),
            path,
        })
    }

    fn connect(path: &Path) -> Result<Connection, HubError> {
        let conn = Connection::open(path).map_err(sql(path, "opening"))?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(sql(path, "setting the busy timeout"))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql(path, "turning on WAL"))?;
        // Joins and revocations sync their commit themselves (`durably`).
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql(path, "setting synchronous"))?;
        Ok(conn)
    }

    fn lock<'a>(&self, m: &'a Mutex<Connection>) -> Result<MutexGuard<'a, Connection>, HubError> {
        m.lock()
            .map_err(|_| HubError::internal("the hub registry's lock was poisoned by a panic"))
    }

    /// Registers `name` and returns its new token. A name already registered is refused (409,
    /// or 403 when it was revoked): one node can never take another's name.
    pub fn join(&self, name: &str, now_ms: i64) -> Result<String, HubError> {
        // The check and the insert under the writer's lock: two joins of one name race to
        // one 201 and one 409, never a 500.
        let writer = self.lock(&self.writer)?;
        if let Some(r) = self.one(&writer, name)? {
            return Err(if r.revoked_ms.is_some() {
                HubError::new(
                    403,
                    format!("node {name} was revoked: it may not join again under that name"),
                )
            } else {
                HubError::new(
                    409,
                    format!(
                        "node {name} is already registered with another token: pick another \
                         --node-name, or revoke {name} on the hub (infermon hub revoke {name})"
                    ),
                )
            });
        }
        let token = new_token()?;
        durably(&writer, |c| {
            c.execute(
                "INSERT INTO nodes (name, token_sha256, joined_ms) VALUES (?1, ?2, ?3)",
                (name, token_hash(&token), now_ms),
            )
        })
        .map_err(sql(&self.path, &format!("registering {name}")))?;
        Ok(token)
    }

    /// The node a token belongs to: 401 when no node has it, 403 when it was revoked.
    pub fn authenticate(&self, token: &str) -> Result<String, HubError> {
        let row: Option<(String, Option<i64>)> = self
            .lock(&self.reader)?
            .prepare_cached("SELECT name, revoked_ms FROM nodes WHERE token_sha256 = ?1")
            .and_then(|mut st| {
                st.query_row([token_hash(token)], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(sql(&self.path, "looking up a node token"))?;
        match row {
            None => Err(HubError::new(401, "unknown node token: join again")),
            Some((name, Some(_))) => Err(HubError::new(
                403,
                format!("node {name} was revoked on this hub"),
            )),
            Some((name, None)) => Ok(name),
        }
    }

    /// Revokes `name`: its token stops working at once. `false` when it is not registered.
    pub fn revoke(&self, name: &str, now_ms: i64) -> Result<bool, HubError> {
        let writer = self.lock(&self.writer)?;
        let n = durably(&writer, |c| {
            c.execute(
                "UPDATE nodes SET revoked_ms = ?2 WHERE name = ?1 AND revoked_ms IS NULL",
                (name, now_ms),
            )
        })
        .map_err(sql(&self.path, &format!("revoking {name}")))?;
        Ok(n > 0 || self.one(&writer, name)?.is_some())
    }

    /// One node, without its last push.
    pub fn get(&self, name: &str) -> Result<Option<Registered>, HubError> {
        self.one(&*self.lock(&self.reader)?, name)
    }

    fn one(&self, conn: &Connection, name: &str) -> Result<Option<Registered>, HubError> {
        Ok(self
            .list(
                conn,
                "SELECT name, joined_ms, revoked_ms, last_seen_ms, NULL FROM nodes WHERE name = ?1",
                Some(name),
            )?
            .pop())
    }

    /// Every registered node, by name, without its last push.
    pub fn all(&self) -> Result<Vec<Registered>, HubError> {
        self.list(
            &*self.lock(&self.reader)?,
            "SELECT name, joined_ms, revoked_ms, last_seen_ms, NULL FROM nodes ORDER BY name",
            None,
        )
    }

    /// Every registered node with its last push kept (read once, when the hub starts).
    pub fn all_with_last_push(&self) -> Result<Vec<Registered>, HubError> {
        self.list(
            &*self.lock(&self.reader)?,
            "SELECT name, joined_ms, revoked_ms, last_seen_ms, last_push FROM nodes ORDER BY name",
            None,
        )
    }

    fn list(
        &self,
        conn: &Connection,
        query: &str,
        name: Option<&str>,
    ) -> Result<Vec<Registered>, HubError> {
        conn.prepare_cached(query)
            .and_then(|mut st| {
                let row = |r: &rusqlite::Row<'_>| {
                    Ok(Registered {
                        name: r.get(0)?,
                        joined_ms: r.get(1)?,
                        revoked_ms: r.get(2)?,
                        last_seen_ms: r.get(3)?,
                        last_push: r.get(4)?,
                    })
                };
                match name {
                    Some(n) => st.query_map([n], row)?.collect(),
                    None => st.query_map([], row)?.collect(),
                }
            })
            .map_err(sql(&self.path, "listing nodes"))
    }
}

/// Runs `f` on `conn` with the WAL synced at its commit (`synchronous=FULL`): a join answered
/// or a revocation reported survives a power loss.
fn durably<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.pragma_update(None, "synchronous", "FULL")?;
    let r = f(conn);
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    r
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn join_authenticate_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let r = Registry::open(dir.path()).unwrap();
        let t = r.join("edge-1", 1).unwrap();
        assert_eq!(t.len(), 64);
        assert_eq!(r.authenticate(&t).unwrap(), "edge-1");
        // The name is taken: nobody else gets a token for it.
        assert_eq!(r.join("edge-1", 2).unwrap_err().status, 409);
        let other = r.join("edge-2", 3).unwrap();
        assert_ne!(other, t);
        assert_eq!(r.authenticate(&other).unwrap(), "edge-2");
        assert_eq!(r.authenticate("nope").unwrap_err().status, 401);
        // Revoked from another connection (the CLI beside a running hub): refused at once.
        let cli = Registry::open(dir.path()).unwrap();
        assert!(cli.revoke("edge-1", 4).unwrap());
        assert!(!cli.revoke("edge-9", 4).unwrap());
        let e = r.authenticate(&t).unwrap_err();
        assert_eq!(e.status, 403);
        assert!(e.message.contains("edge-1"), "{}", e.message);
        assert_eq!(r.join("edge-1", 5).unwrap_err().status, 403);
        // Only the hash is stored.
        let raw = std::fs::read(dir.path().join("hub.db")).unwrap();
        assert!(!raw.windows(t.len()).any(|w| w == t.as_bytes()));
    }
}
