//! Measured requests: written in batches, read newest first.

use infermon_model::request::RequestRecord;
use rusqlite::params_from_iter;

use crate::{on_sql, Store, StoreError};

/// Which requests [`Store::requests`] returns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestQuery {
    /// Only this model.
    pub model: Option<String>,
    /// Only requests that arrived at or after this time, ms since the Unix epoch.
    pub since_ms: Option<i64>,
    /// At most this many (newest first).
    pub limit: usize,
}

fn gaps_to_blob(gaps: &[f64]) -> Vec<u8> {
    gaps.iter()
        .flat_map(|g| (*g as f32).to_le_bytes())
        .collect()
}

fn blob_to_gaps(b: &[u8]) -> Vec<f64> {
    b.chunks_exact(4)
        .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
        .collect()
}

impl Store {
    /// Writes a batch of requests in one transaction.
    pub fn write_requests(&mut self, rs: &[RequestRecord]) -> Result<(), StoreError> {
        let path = self.path.as_path();
        let tx = self
            .conn
            .transaction()
            .map_err(on_sql(path, "beginning a requests write"))?;
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT INTO requests (ts_ms, model, upstream, outcome, record, itl)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(on_sql(path, "preparing a requests insert"))?;
            for r in rs {
                let json = serde_json::to_string(r).map_err(|cause| StoreError::Encode {
                    ts_ms: r.ts_unix_ms,
                    cause,
                })?;
                let itl = (!r.itl_gaps_ms.is_empty()).then(|| gaps_to_blob(&r.itl_gaps_ms));
                st.execute(rusqlite::params![
                    r.ts_unix_ms,
                    r.model,
                    r.upstream,
                    r.outcome.as_str(),
                    json,
                    itl
                ])
                .map_err(on_sql(path, "inserting a request"))?;
            }
        }
        tx.commit().map_err(on_sql(path, "committing requests"))
    }

    /// Reads requests, newest first.
    pub fn requests(&self, q: &RequestQuery) -> Result<Vec<RequestRecord>, StoreError> {
        let mut sql = String::from("SELECT ts_ms, record, itl FROM requests WHERE 1 = 1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(m) = &q.model {
            sql += " AND model = ?";
            args.push(m.clone().into());
        }
        if let Some(s) = q.since_ms {
            sql += " AND ts_ms >= ?";
            args.push(s.into());
        }
        sql += " ORDER BY ts_ms DESC, id DESC LIMIT ?";
        args.push(i64::try_from(q.limit).unwrap_or(i64::MAX).into());
        let path = self.path.as_path();
        let mut st = self
            .conn
            .prepare_cached(&sql)
            .map_err(on_sql(path, "preparing a requests query"))?;
        let rows = st
            .query_map(params_from_iter(args), |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, Option<Vec<u8>>>(2)?,
                ))
            })
            .map_err(on_sql(path, "querying requests"))?;
        let mut out = Vec::new();
        for row in rows {
            let (ts_ms, json, itl) = row.map_err(on_sql(path, "reading a request row"))?;
            let mut r: RequestRecord =
                serde_json::from_str(&json).map_err(|cause| StoreError::Decode {
                    path: path.to_path_buf(),
                    ts_ms,
                    cause,
                })?;
            r.itl_gaps_ms = itl.as_deref().map(blob_to_gaps).unwrap_or_default();
            out.push(r);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::Retention;
    use infermon_model::request::{Api, Outcome};

    fn rec(ts: i64, model: &str, outcome: Outcome) -> RequestRecord {
        RequestRecord {
            ts_unix_ms: ts,
            upstream: "http://127.0.0.1:8080".into(),
            api: Api::OpenaiChat,
            model: model.into(),
            stream: true,
            status: 200,
            outcome,
            error: None,
            ttfb_ms: Some(1.0),
            ttft_ms: Some(12.5),
            tpot_ms: Some(10.25),
            e2e_ms: 42.0,
            itl_ms: None,
            itl_gaps_ms: vec![10.0, 10.5],
            prompt_tokens: Some(5),
            completion_tokens: Some(4),
            token_chunks: 3,
            usage_injected: true,
            server_timings: None,
            request_body: None,
            response_body: None,
        }
    }

    #[test]
    fn round_trip_filters_order_and_prune() {
        let mut s = Store::open_in_memory(Retention::default()).unwrap();
        let rs = [
            rec(1_000, "a", Outcome::Ok),
            rec(2_000, "b", Outcome::Cancelled),
            rec(3_000, "a", Outcome::HttpError),
        ];
        s.write_requests(&rs).unwrap();
        let all = s
            .requests(&RequestQuery {
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(
            all.iter().map(|r| r.ts_unix_ms).collect::<Vec<_>>(),
            [3_000, 2_000, 1_000]
        );
        assert_eq!(all[2], rs[0], "the record comes back whole, gaps included");
        let a = s
            .requests(&RequestQuery {
                model: Some("a".into()),
                since_ms: Some(2_000),
                limit: 10,
            })
            .unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].outcome, Outcome::HttpError);
        assert_eq!(
            s.requests(&RequestQuery {
                limit: 1,
                ..Default::default()
            })
            .unwrap()
            .len(),
            1
        );
        let week = 7 * 24 * 3_600_000;
        let p = s.prune(2_000 + week).unwrap();
        assert_eq!(p.requests, 1);
        assert_eq!(s.stats().unwrap().requests, 2);
    }
}
