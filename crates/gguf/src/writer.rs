//! A GGUF writer for tests, fuzz seeds and fixtures — not for producing models: tensor data is
//! all zeros.
//!
//! [`GgufBuilder`] writes the header (any version: v1 with 32-bit counts, lengths and
//! dimensions, v2 and later with 64-bit ones), the metadata in the order given, the tensor
//! infos with offsets laid out one after another, each padded to the alignment
//! (`general.alignment` when given as a power-of-two integer, else 32), padding to the data
//! section, and — unless [`header_only`](GgufBuilder::header_only) — zero-filled tensor data.
//! It writes whatever it is told, so tests can also build invalid files (a removed ggml type,
//! an unsupported version, an odd alignment).

use std::path::Path;

use crate::types::GgmlType;
use crate::value::{Array, Value};
use crate::{TensorInfo, DEFAULT_ALIGNMENT};

/// Builds a GGUF file in memory.
#[derive(Debug, Clone)]
pub struct GgufBuilder {
    version: u32,
    metadata: Vec<(String, Value)>,
    tensors: Vec<Pending>,
    header_only: bool,
}

#[derive(Debug, Clone)]
struct Pending {
    name: String,
    dims: Vec<u64>,
    type_id: u32,
    /// `Some` for [`GgufBuilder::raw_tensor`]: written as given, with no data.
    offset: Option<u64>,
}

impl GgufBuilder {
    /// An empty file of GGUF `version` (1, 2 and 3 are valid; others are written with the v2
    /// layout, for tests).
    pub fn new(version: u32) -> Self {
        GgufBuilder {
            version,
            metadata: Vec::new(),
            tensors: Vec::new(),
            header_only: false,
        }
    }

    /// Adds a metadata pair (after those already added; duplicates are written as given).
    #[must_use]
    pub fn kv(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.metadata.push((key.into(), value.into()));
        self
    }

    /// Adds a tensor; its offset follows the previous tensor's data, padded to the alignment.
    #[must_use]
    pub fn tensor(mut self, name: impl Into<String>, dims: &[u64], ggml_type: GgmlType) -> Self {
        self.tensors.push(Pending {
            name: name.into(),
            dims: dims.to_vec(),
            type_id: ggml_type.id(),
            offset: None,
        });
        self
    }

    /// Adds a tensor info written exactly as given (any type id, any offset) with no data, for
    /// files that must fail to parse.
    #[must_use]
    pub fn raw_tensor(
        mut self,
        name: impl Into<String>,
        dims: &[u64],
        type_id: u32,
        offset: u64,
    ) -> Self {
        self.tensors.push(Pending {
            name: name.into(),
            dims: dims.to_vec(),
            type_id,
            offset: Some(offset),
        });
        self
    }

    /// Stops after the header and its padding: no tensor data (the file can be extended with
    /// `File::set_len` to look like a full model).
    #[must_use]
    pub fn header_only(mut self) -> Self {
        self.header_only = true;
        self
    }

    /// The alignment the file is laid out with.
    pub fn alignment(&self) -> u64 {
        self.metadata
            .iter()
            .find(|(k, _)| k == "general.alignment")
            .and_then(|(_, v)| v.as_u64())
            .filter(|a| a.is_power_of_two())
            .unwrap_or(DEFAULT_ALIGNMENT)
    }

    /// Tensor infos as [`parse`](crate::parse) returns them, for the tensors added with
    /// [`tensor`](Self::tensor) (raw ones are left out), with their offsets.
    pub fn tensor_infos(&self) -> Vec<TensorInfo> {
        self.layout()
            .into_iter()
            .filter_map(|(p, offset, _)| {
                let ggml_type = GgmlType::from_id(p.type_id).filter(|_| p.offset.is_none())?;
                Some(TensorInfo {
                    name: p.name.clone(),
                    dims: p.dims.clone(),
                    ggml_type,
                    offset,
                })
            })
            .collect()
    }

    /// Size of the data section: every tensor's data, each padded to the alignment.
    pub fn data_size(&self) -> u64 {
        let align = self.alignment();
        self.layout()
            .last()
            .map_or(0, |&(_, offset, n)| pad(offset.saturating_add(n), align))
    }

    /// Each tensor with its offset and data size (0 for raw tensors and unsized shapes).
    fn layout(&self) -> Vec<(&Pending, u64, u64)> {
        let align = self.alignment();
        let mut next = 0u64;
        let mut out = Vec::with_capacity(self.tensors.len());
        for p in &self.tensors {
            if let Some(offset) = p.offset {
                out.push((p, offset, 0));
                continue;
            }
            let n_bytes = GgmlType::from_id(p.type_id)
                .and_then(|ggml_type| {
                    TensorInfo {
                        name: String::new(),
                        dims: p.dims.clone(),
                        ggml_type,
                        offset: 0,
                    }
                    .n_bytes()
                    .ok()
                })
                .unwrap_or(0);
            out.push((p, next, n_bytes));
            next = pad(next.saturating_add(n_bytes), align);
        }
        out
    }

    /// The file's bytes.
    pub fn build(&self) -> Vec<u8> {
        let mut w = Writer {
            buf: Vec::new(),
            wide: self.version != 1,
        };
        w.buf.extend_from_slice(b"GGUF");
        w.u32(self.version);
        w.len(self.tensors.len());
        w.len(self.metadata.len());
        for (key, value) in &self.metadata {
            w.str(key);
            w.u32(value.value_type().id());
            w.value(value);
        }
        for (p, offset, _) in self.layout() {
            w.str(&p.name);
            w.u32(u32::try_from(p.dims.len()).unwrap_or(u32::MAX));
            for &d in &p.dims {
                w.len_u64(d);
            }
            w.u32(p.type_id);
            w.buf.extend_from_slice(&offset.to_le_bytes());
        }
        let align = self.alignment();
        let header = pad(len_u64(w.buf.len()), align);
        let total = if self.header_only {
            header
        } else {
            header.saturating_add(self.data_size())
        };
        w.buf
            .resize(usize::try_from(total).unwrap_or(usize::MAX), 0);
        w.buf
    }

    /// Writes [`build`](Self::build)'s bytes to `path`.
    ///
    /// # Errors
    ///
    /// The I/O error from writing the file.
    pub fn write_to(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.build())
    }
}

fn len_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn pad(n: u64, align: u64) -> u64 {
    n.checked_next_multiple_of(align).unwrap_or(u64::MAX)
}

struct Writer {
    buf: Vec<u8>,
    wide: bool,
}

impl Writer {
    fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// A count, length or dimension: u64, or u32 (saturating) in v1.
    fn len_u64(&mut self, n: u64) {
        if self.wide {
            self.buf.extend_from_slice(&n.to_le_bytes());
        } else {
            self.u32(u32::try_from(n).unwrap_or(u32::MAX));
        }
    }

    fn len(&mut self, n: usize) {
        self.len_u64(len_u64(n));
    }

    fn str(&mut self, s: &str) {
        self.len(s.len());
        self.buf.extend_from_slice(s.as_bytes());
    }

    fn value(&mut self, v: &Value) {
        match v {
            Value::U8(x) => self.buf.push(*x),
            Value::I8(x) => self.buf.extend_from_slice(&x.to_le_bytes()),
            Value::U16(x) => self.buf.extend_from_slice(&x.to_le_bytes()),
            Value::I16(x) => self.buf.extend_from_slice(&x.to_le_bytes()),
            Value::U32(x) => self.u32(*x),
            Value::I32(x) => self.buf.extend_from_slice(&x.to_le_bytes()),
            Value::F32(x) => self.buf.extend_from_slice(&x.to_le_bytes()),
            Value::Bool(x) => self.buf.push(u8::from(*x)),
            Value::String(x) => self.str(x),
            Value::Array(a) => self.array(a),
            Value::U64(x) => self.buf.extend_from_slice(&x.to_le_bytes()),
            Value::I64(x) => self.buf.extend_from_slice(&x.to_le_bytes()),
            Value::F64(x) => self.buf.extend_from_slice(&x.to_le_bytes()),
        }
    }

    fn array(&mut self, a: &Array) {
        self.u32(a.element_type().id());
        self.len(a.len());
        for i in 0..a.len() {
            match a {
                Array::String(v) => v.get(i).into_iter().for_each(|s| self.str(s)),
                Array::Array(v) => v.get(i).iter().for_each(|inner| self.array(inner)),
                other => other.get(i).iter().for_each(|x| self.value(x)),
            }
        }
    }
}
