//! Diagnosis: observations (upserted by id as they open, change and resolve) and the
//! detectors' baselines (one row per key, written when learned since the last save).

use infermon_detect::baseline::{Baseline, Baselines};
use infermon_detect::Observation;
use rusqlite::params;

use crate::{on_sql, Store, StoreError};

/// Which observations [`Store::observations`] returns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObservationQuery {
    /// Only those still open, or that ended at or after this time, ms since the Unix epoch.
    pub since_ms: Option<i64>,
    /// Only open ones.
    pub active_only: bool,
    /// At most this many, newest start first.
    pub limit: usize,
}

/// Observations are kept this long after they end.
pub const OBSERVATION_RETENTION_MS: i64 = 30 * 86_400_000;

fn ms(s: f64) -> i64 {
    (s * 1000.0).round() as i64
}

impl Store {
    /// Inserts or replaces observations by id, in one transaction.
    pub fn upsert_observations(&mut self, obs: &[Observation]) -> Result<(), StoreError> {
        let path = self.path.as_path();
        let tx = self
            .conn
            .transaction()
            .map_err(on_sql(path, "beginning an observations write"))?;
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO observations
                     (id, kind, subject, severity, start_ms, end_ms, body)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(on_sql(path, "preparing an observations write"))?;
            for o in obs {
                let body = serde_json::to_string(o).map_err(|cause| StoreError::Encode {
                    ts_ms: ms(o.start_s),
                    cause,
                })?;
                st.execute(params![
                    o.id,
                    o.kind.as_str(),
                    o.subject,
                    o.severity.as_str(),
                    ms(o.start_s),
                    o.end_s.map(ms),
                    body
                ])
                .map_err(on_sql(path, format!("writing observation \"{}\"", o.id)))?;
            }
        }
        tx.commit().map_err(on_sql(path, "committing observations"))
    }

    /// Observations, newest start first.
    pub fn observations(&self, q: &ObservationQuery) -> Result<Vec<Observation>, StoreError> {
        let mut sql = String::from("SELECT start_ms, body FROM observations WHERE 1 = 1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if q.active_only {
            sql += " AND end_ms IS NULL";
        }
        if let Some(s) = q.since_ms {
            sql += " AND (end_ms IS NULL OR end_ms >= ?)";
            args.push(s.into());
        }
        sql += " ORDER BY start_ms DESC, id LIMIT ?";
        args.push(i64::try_from(q.limit).unwrap_or(i64::MAX).into());
        let path = self.path.as_path();
        let rows: Vec<(i64, String)> = self
            .conn
            .prepare(&sql)
            .and_then(|mut st| {
                st.query_map(rusqlite::params_from_iter(args), |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect()
            })
            .map_err(on_sql(path, "reading observations"))?;
        rows.into_iter()
            .map(|(ts_ms, body)| {
                serde_json::from_str(&body).map_err(|cause| StoreError::Decode {
                    path: self.path.clone(),
                    ts_ms,
                    cause,
                })
            })
            .collect()
    }

    /// Writes the baselines learned after `since_s` (seconds, the detector's clock).
    pub fn save_baselines(
        &mut self,
        b: &Baselines,
        since_s: f64,
        now_ms: i64,
    ) -> Result<usize, StoreError> {
        let path = self.path.as_path();
        let tx = self
            .conn
            .transaction()
            .map_err(on_sql(path, "beginning a baselines write"))?;
        let mut n = 0;
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO baselines (key, body, updated_ms) VALUES (?1, ?2, ?3)",
                )
                .map_err(on_sql(path, "preparing a baselines write"))?;
            for (k, v) in b.keys.iter().filter(|(_, v)| v.updated_s > since_s) {
                let body = serde_json::to_string(v).map_err(|cause| StoreError::Encode {
                    ts_ms: now_ms,
                    cause,
                })?;
                st.execute(params![k, body, now_ms])
                    .map_err(on_sql(path, format!("writing baseline \"{k}\"")))?;
                n += 1;
            }
        }
        tx.commit().map_err(on_sql(path, "committing baselines"))?;
        Ok(n)
    }

    /// Every stored baseline. A row that no longer decodes (an older format) is skipped: it
    /// is learned again.
    pub fn load_baselines(&self) -> Result<Baselines, StoreError> {
        let rows: Vec<(String, String)> = self
            .conn
            .prepare("SELECT key, body FROM baselines")
            .and_then(|mut st| st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .map_err(on_sql(self.path.as_path(), "reading baselines"))?;
        let mut b = Baselines::default();
        for (k, body) in rows {
            if let Ok(v) = serde_json::from_str::<Baseline>(&body) {
                b.keys.insert(k, v);
            }
        }
        Ok(b)
    }

    /// Deletes observations that ended more than [`OBSERVATION_RETENTION_MS`] before `now_ms`.
    pub fn prune_observations(&mut self, now_ms: i64) -> Result<u64, StoreError> {
        self.conn
            .execute(
                "DELETE FROM observations WHERE end_ms IS NOT NULL AND end_ms < ?1",
                [now_ms - OBSERVATION_RETENTION_MS],
            )
            .map(|n| n as u64)
            .map_err(on_sql(self.path.as_path(), "pruning observations"))
    }
}

#[cfg(test)]
mod tests {
    use infermon_detect::{Evidence, Kind, Severity};

    use super::*;
    use crate::Retention;

    fn obs(id: &str, start: f64, end: Option<f64>) -> Observation {
        Observation {
            id: id.into(),
            kind: Kind::EngineDown,
            start_s: start,
            confirmed_s: start + 4.0,
            end_s: end,
            severity: Severity::Critical,
            subject: "engine:http://127.0.0.1:8080".into(),
            evidence: Evidence::default(),
            cause: None,
            action: "restart it".into(),
        }
    }

    #[test]
    fn observations_upsert_and_query() {
        let mut s = Store::open_in_memory(Retention::default()).unwrap();
        s.upsert_observations(&[obs("a", 100.0, None), obs("b", 200.0, Some(250.0))])
            .unwrap();
        s.upsert_observations(&[obs("a", 100.0, Some(300.0))])
            .unwrap();
        let all = s
            .observations(&ObservationQuery {
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(
            all.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(),
            ["b", "a"]
        );
        assert_eq!(all[1].end_s, Some(300.0));
        s.upsert_observations(&[obs("c", 400.0, None)]).unwrap();
        let open = s
            .observations(&ObservationQuery {
                active_only: true,
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(open.len(), 1);
        let recent = s
            .observations(&ObservationQuery {
                since_ms: Some(260_000),
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(
            recent.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(),
            ["c", "a"]
        );
        assert_eq!(
            s.prune_observations(300_000 + OBSERVATION_RETENTION_MS)
                .unwrap(),
            1
        );
    }

    #[test]
    fn baselines_survive_a_reopen_and_save_only_what_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        let mut b = Baselines::default();
        for i in 0..40 {
            b.entry("e|m|tpot_p50_ms|r1").learn(i as f64, 20.0);
        }
        b.entry("old").learn(0.0, 1.0);
        {
            let mut s = Store::open(&path, Retention::default()).unwrap();
            assert_eq!(s.save_baselines(&b, -1.0, 1).unwrap(), 2);
            assert_eq!(
                s.save_baselines(&b, 10.0, 2).unwrap(),
                1,
                "only the key learned after 10 s"
            );
        }
        let s = Store::open(&path, Retention::default()).unwrap();
        let mut back = s.load_baselines().unwrap();
        assert_eq!(
            back.normal("e|m|tpot_p50_ms|r1").map(|n| n.centre),
            Some(20.0)
        );
    }
}
