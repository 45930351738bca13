//! The remote write 1.0 wire format: a protobuf `WriteRequest`, snappy block-compressed.
//!
//! Messages as `prometheus/prompb` defines them (only the fields 1.0 senders fill):
//! `WriteRequest { repeated TimeSeries timeseries = 1; }`,
//! `TimeSeries { repeated Label labels = 1; repeated Sample samples = 2; }`,
//! `Label { string name = 1; string value = 2; }`,
//! `Sample { double value = 1; int64 timestamp = 2; }` (ms since the Unix epoch).
//! Repeated fields concatenate, so the bytes of several `WriteRequest`s one after the other
//! are one `WriteRequest` holding all their series: that is how queued samples are batched.

use infermon_model::series::SeriesPoint;
use prost::Message;

/// A remote write request.
#[derive(Clone, PartialEq, Message)]
pub struct WriteRequest {
    /// The series, each with its samples.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// One series and its samples.
#[derive(Clone, PartialEq, Message)]
pub struct TimeSeries {
    /// Labels sorted by name, `__name__` among them.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Samples in time order.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

/// A label pair.
#[derive(Clone, PartialEq, Message)]
pub struct Label {
    /// Label name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Label value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// One value at one time.
#[derive(Clone, PartialEq, Message)]
pub struct Sample {
    /// The value.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// The labels of one point as the receiver stores them: `__name__`, the point's own labels,
/// then `extra` (the target's `job`, `instance` and the user's labels), sorted by name. A
/// point label that an extra label also names is kept as `exported_<name>`, as Prometheus
/// does when it scrapes with `honor_labels: false` (the engine URL infermon puts in
/// `instance` arrives as `exported_instance` both ways, so the same queries work).
pub fn labels_of(point: &SeriesPoint, extra: &[(String, String)]) -> Vec<Label> {
    let own = point.labels.iter().map(|(k, v)| (*k, v.as_str()));
    labels_for(point.name, own, extra)
}

/// [`labels_of`] for any name and label pairs.
pub fn labels_for<'a>(
    name: &str,
    own: impl Iterator<Item = (&'a str, &'a str)>,
    extra: &[(String, String)],
) -> Vec<Label> {
    let mut out: Vec<Label> = Vec::with_capacity(8 + extra.len());
    out.push(Label {
        name: "__name__".into(),
        value: name.into(),
    });
    for (k, v) in own {
        let name = if extra.iter().any(|(e, _)| e == k) {
            format!("exported_{k}")
        } else {
            k.to_string()
        };
        out.push(Label {
            name,
            value: v.to_string(),
        });
    }
    for (k, v) in extra {
        out.push(Label {
            name: k.clone(),
            value: v.clone(),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// One snapshot's points at `ts_ms` as a `WriteRequest`, protobuf-encoded (not compressed).
pub fn encode_points(points: &[SeriesPoint], ts_ms: i64, extra: &[(String, String)]) -> Vec<u8> {
    WriteRequest {
        timeseries: points
            .iter()
            .map(|p| TimeSeries {
                labels: labels_of(p, extra),
                samples: vec![Sample {
                    value: p.value,
                    timestamp: ts_ms,
                }],
            })
            .collect(),
    }
    .encode_to_vec()
}

/// Samples of a Prometheus text exposition (the agent's request histograms) at `ts_ms`, as a
/// `WriteRequest`, protobuf-encoded; their own timestamps, if any, are ignored.
pub fn encode_samples(
    samples: &[infermon_promtext::Sample],
    ts_ms: i64,
    extra: &[(String, String)],
) -> Vec<u8> {
    WriteRequest {
        timeseries: samples
            .iter()
            .filter(|s| s.value.is_finite())
            .map(|s| TimeSeries {
                labels: labels_for(
                    &s.name,
                    s.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                    extra,
                ),
                samples: vec![Sample {
                    value: s.value,
                    timestamp: ts_ms,
                }],
            })
            .collect(),
    }
    .encode_to_vec()
}

/// Snappy block format (what remote write requires; not the framed stream format).
pub fn compress(raw: &[u8]) -> Result<Vec<u8>, snap::Error> {
    snap::raw::Encoder::new().compress_vec(raw)
}

/// The inverse of [`compress`].
pub fn decompress(data: &[u8]) -> Result<Vec<u8>, snap::Error> {
    snap::raw::Decoder::new().decompress_vec(data)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use infermon_model::series::MetricKind;

    fn point(name: &'static str, labels: Vec<(&'static str, String)>, v: f64) -> SeriesPoint {
        SeriesPoint {
            name,
            labels,
            value: v,
            kind: MetricKind::Gauge,
        }
    }

    #[test]
    fn labels_are_sorted_and_clashes_exported() {
        let p = point(
            "infermon_engine_up",
            vec![
                ("engine", "llamacpp".into()),
                ("instance", "http://127.0.0.1:8080".into()),
            ],
            1.0,
        );
        let extra = vec![
            ("job".to_string(), "infermon".to_string()),
            ("instance".to_string(), "gpu1".to_string()),
        ];
        let names: Vec<_> = labels_of(&p, &extra)
            .into_iter()
            .map(|l| format!("{}={}", l.name, l.value))
            .collect();
        assert_eq!(
            names,
            [
                "__name__=infermon_engine_up",
                "engine=llamacpp",
                "exported_instance=http://127.0.0.1:8080",
                "instance=gpu1",
                "job=infermon"
            ]
        );
    }

    #[test]
    fn concatenated_requests_decode_as_one_and_survive_snappy() {
        let a = encode_points(&[point("m_a", vec![], 1.5)], 1_000, &[]);
        let b = encode_points(
            &[point("m_a", vec![], 2.5), point("m_b", vec![], -3.0)],
            3_000,
            &[],
        );
        let joined = [a, b].concat();
        let back = decompress(&compress(&joined).unwrap()).unwrap();
        let req = WriteRequest::decode(back.as_slice()).unwrap();
        let got: Vec<_> = req
            .timeseries
            .iter()
            .map(|t| {
                (
                    t.labels[0].value.as_str(),
                    t.samples[0].value,
                    t.samples[0].timestamp,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("m_a", 1.5, 1_000),
                ("m_a", 2.5, 3_000),
                ("m_b", -3.0, 3_000)
            ]
        );
    }

    #[test]
    fn the_encoding_is_the_protobuf_wire_format_by_hand() {
        // One series {__name__="x"} with one sample 1.0 at t=2:
        // WriteRequest.1 (len) → TimeSeries { 1 (len) Label { 1:"__name__" 2:"x" }, 2 (len)
        // Sample { 1: fixed64 1.0, 2: varint 2 } }.
        let bytes = encode_points(&[point("x", vec![], 1.0)], 2, &[]);
        let label = [&[0x0a, 8][..], b"__name__", &[0x12, 1], b"x"].concat();
        let sample = [&[0x09][..], &1.0f64.to_le_bytes(), &[0x10, 2]].concat();
        let series = [
            &[0x0a, label.len() as u8][..],
            &label,
            &[0x12, sample.len() as u8],
            &sample,
        ]
        .concat();
        let want = [&[0x0a, series.len() as u8][..], &series].concat();
        assert_eq!(bytes, want);
    }
}
