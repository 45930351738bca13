//! A reader for the header of GGUF model files: the metadata key-value pairs and the tensor
//! infos (name, shape, ggml type, data offset), which is what `infermon fit` needs to plan
//! memory for llama.cpp. Tensor data is never read: [`read_path`] reads the header through a
//! buffered reader and stops at the end of the tensor infos (the buffer may hold up to 64 KiB
//! past it), so a 40 GB model costs a few milliseconds.
//!
//! GGUF versions 1, 2 and 3 are read (v1 used 32-bit counts, lengths and dimensions);
//! big-endian files are refused with a clear error. Every count and length is checked against
//! the bytes left in the file before anything is allocated, array nesting is limited to
//! [`MAX_ARRAY_DEPTH`], dimensions to [`MAX_DIMS`], the header to [`MAX_HEADER_LEN`], and all
//! size arithmetic is checked: any input gives a [`GgufFile`] or a [`GgufError`] naming the
//! byte offset and the field, never a panic. The checks follow llama.cpp's `gguf.cpp`:
//! duplicate keys or tensor names, an unknown or removed ggml type, a `general.alignment` that
//! is not a power-of-two `u32`, a tensor offset off the alignment, or rows that are not whole
//! blocks are errors.
//!
//! [`writer`] builds files for tests and fixtures.
//!
//! ```
//! use infermon_gguf::writer::GgufBuilder;
//! use infermon_gguf::{parse, GgmlType, PerLayer};
//!
//! let bytes = GgufBuilder::new(3)
//!     .kv("general.architecture", "llama")
//!     .kv("llama.block_count", 2u32)
//!     .kv("llama.attention.head_count_kv", vec![8u32, 4])
//!     .tensor("token_embd.weight", &[576, 49152], GgmlType::Q8_0)
//!     .build();
//!
//! let file = parse(&bytes)?;
//! assert_eq!(file.architecture(), Some("llama"));
//! assert_eq!(file.arch_u64("block_count"), Some(2));
//! let kv_heads = file.arch_u64_or_array("attention.head_count_kv");
//! assert_eq!(kv_heads.as_ref().and_then(|h| h.at(1)), Some(4));
//! assert_eq!(kv_heads, Some(PerLayer::Layers(vec![8, 4])));
//! let embd = file.tensor("token_embd.weight").ok_or("no tensor")?;
//! assert_eq!(embd.n_bytes()?, 576 * 49152 / 32 * 34);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

mod cursor;
mod error;
mod parse;
mod strings;
mod types;
mod value;
pub mod writer;

use std::fs::File;
use std::io::{BufReader, ErrorKind};
use std::path::Path;

pub use error::{GgufError, SizeError};
pub use strings::Strings;
pub use types::GgmlType;
pub use value::{Array, Value, ValueType};

/// Alignment of the data section and of tensor offsets when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// Most dimensions a tensor may have. ggml uses 4; up to 8 are read.
pub const MAX_DIMS: u32 = 8;

/// Deepest nesting of arrays in a metadata value (an array of arrays is depth 2).
pub const MAX_ARRAY_DEPTH: usize = 8;

/// Largest header (magic through tensor infos) this reader accepts: 256 MiB. Real headers,
/// vocabularies included, are under 20 MB; the limit keeps a corrupt length in a large file
/// from reading gigabytes of tensor data as metadata.
pub const MAX_HEADER_LEN: u64 = 256 << 20;

/// Size of the buffer [`read_path`] reads through.
const READ_BUFFER: usize = 64 << 10;

/// Reads the header of the GGUF file at `path`: metadata and tensor infos, never tensor data.
///
/// # Errors
///
/// [`GgufError::Io`] when the file cannot be opened, else [`GgufError::InFile`] (the path plus
/// the parse error) when it is not a well-formed GGUF header.
pub fn read_path(path: &Path) -> Result<GgufFile, GgufError> {
    let io = |cause| GgufError::Io {
        path: path.to_path_buf(),
        cause,
    };
    let file = File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if meta.is_dir() {
        return Err(io(std::io::Error::new(
            ErrorKind::IsADirectory,
            "is a directory",
        )));
    }
    let len = meta.len();
    let mut cur = cursor::Cursor::new(BufReader::with_capacity(READ_BUFFER, file), len);
    let mut gguf = parse::parse_from(&mut cur).map_err(|e| GgufError::InFile {
        path: path.to_path_buf(),
        cause: Box::new(e),
    })?;
    gguf.file_size = Some(len);
    Ok(gguf)
}

/// Parses a GGUF file held in memory (the whole file, or at least its header).
///
/// # Errors
///
/// A [`GgufError`] naming the offset and field when `bytes` does not start with a well-formed
/// GGUF header.
pub fn parse(bytes: &[u8]) -> Result<GgufFile, GgufError> {
    let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    let mut gguf = parse::parse_from(&mut cursor::Cursor::new(bytes, len))?;
    gguf.file_size = Some(len);
    Ok(gguf)
}

/// The header of a GGUF file.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufFile {
    /// GGUF version: 1, 2 or 3.
    pub version: u32,
    /// Metadata key-value pairs, in file order. Keys are unique.
    pub metadata: Vec<(String, Value)>,
    /// Tensor infos, in file order. Names are unique.
    pub tensors: Vec<TensorInfo>,
    /// Alignment of the data section and tensor offsets (`general.alignment`, default 32).
    pub alignment: u64,
    /// File offset where the data section starts: the end of the tensor infos, padded to the
    /// alignment. Tensor offsets are relative to it.
    pub data_offset: u64,
    /// Length of the file (or of the slice given to [`parse`]); `None` only for a value
    /// assembled by hand.
    pub file_size: Option<u64>,
}

impl GgufFile {
    /// Index of `key` in [`metadata`](Self::metadata).
    pub fn position(&self, key: &str) -> Option<usize> {
        self.metadata.iter().position(|(k, _)| k == key)
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata
            .iter()
            .find_map(|(k, v)| (k == key).then_some(v))
    }

    /// The value of `key` as `u64` (any integer type, when non-negative).
    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(Value::as_u64)
    }

    /// The value of `key` as `f64` (see [`Value::as_f64`]).
    pub fn get_f64(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(Value::as_f64)
    }

    /// The value of `key`, when it is a string.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    /// `general.architecture` (`"llama"`, `"qwen2"`, `"gemma3"`).
    pub fn architecture(&self) -> Option<&str> {
        self.get_str("general.architecture")
    }

    /// The value of `<architecture>.<suffix>`, e.g. `arch_get("context_length")` reads
    /// `llama.context_length` in a llama model.
    pub fn arch_get(&self, suffix: &str) -> Option<&Value> {
        let arch = self.architecture()?;
        self.get(&format!("{arch}.{suffix}"))
    }

    /// [`arch_get`](Self::arch_get) as `u64`.
    pub fn arch_u64(&self, suffix: &str) -> Option<u64> {
        self.arch_get(suffix).and_then(Value::as_u64)
    }

    /// `<architecture>.<suffix>` as one value for every layer or an array with one per layer
    /// (`attention.head_count_kv` is an array in models whose layers differ). `None` when
    /// absent, not an integer or integer array, or negative.
    pub fn arch_u64_or_array(&self, suffix: &str) -> Option<PerLayer> {
        match self.arch_get(suffix)? {
            Value::Array(a) => a.to_u64_vec().map(PerLayer::Layers),
            v => v.as_u64().map(PerLayer::All),
        }
    }

    /// The tensor named `name`.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// Sum of every tensor's [`n_bytes`](TensorInfo::n_bytes): the weights' size, without
    /// alignment padding.
    ///
    /// # Errors
    ///
    /// [`GgufError::TensorSize`] when a tensor's size, or the sum, cannot be computed (never
    /// for a value returned by [`parse`] or [`read_path`], except for the sum's overflow).
    pub fn tensor_bytes(&self) -> Result<u64, GgufError> {
        let mut total = 0u64;
        for t in &self.tensors {
            total = total.checked_add(t.checked_n_bytes()?).ok_or_else(|| {
                t.size_error(SizeError::Overflow {
                    what: "sum of tensor sizes",
                })
            })?;
        }
        Ok(total)
    }

    /// File offset where the last byte of tensor data ends: the data offset plus the largest
    /// tensor offset + size (the data offset when there are no tensors).
    ///
    /// # Errors
    ///
    /// [`GgufError::TensorSize`] when a size or the sum overflows.
    pub fn data_end(&self) -> Result<u64, GgufError> {
        let mut end = self.data_offset;
        for t in &self.tensors {
            end = end.max(t.data_end(self.data_offset)?);
        }
        Ok(end)
    }

    /// Checks that every tensor's data lies within the file: a short file is usually an
    /// incomplete download. Passes when the file size is unknown.
    ///
    /// # Errors
    ///
    /// [`GgufError::DataPastEnd`] naming the first tensor that does not fit, or
    /// [`GgufError::TensorSize`].
    pub fn check_data_in_file(&self) -> Result<(), GgufError> {
        let Some(file_size) = self.file_size else {
            return Ok(());
        };
        for t in &self.tensors {
            let end = t.data_end(self.data_offset)?;
            if end > file_size {
                return Err(GgufError::DataPastEnd {
                    name: t.name.clone(),
                    end,
                    file_size,
                });
            }
        }
        Ok(())
    }
}

/// A per-layer hyperparameter: one value for all layers, or one per layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PerLayer {
    /// The same value for every layer.
    All(u64),
    /// One value per layer, in layer order.
    Layers(Vec<u64>),
}

impl PerLayer {
    /// The value for `layer`; `None` past the end of a per-layer array.
    pub fn at(&self, layer: usize) -> Option<u64> {
        match self {
            PerLayer::All(v) => Some(*v),
            PerLayer::Layers(v) => v.get(layer).copied(),
        }
    }

    /// The largest value (`None` for an empty array).
    pub fn max(&self) -> Option<u64> {
        match self {
            PerLayer::All(v) => Some(*v),
            PerLayer::Layers(v) => v.iter().copied().max(),
        }
    }
}

/// One tensor info: where a tensor's data is and how it is shaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// Dimensions, innermost (row length) first, as ggml's `ne`.
    pub dims: Vec<u64>,
    /// Element type.
    pub ggml_type: GgmlType,
    /// Offset of the data from the start of the data section.
    pub offset: u64,
}

impl TensorInfo {
    /// Number of elements: the product of the dimensions (1 for no dimensions).
    ///
    /// # Errors
    ///
    /// [`SizeError::Overflow`] when the product does not fit in a `u64`.
    pub fn n_elements(&self) -> Result<u64, SizeError> {
        self.dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .ok_or(SizeError::Overflow {
                what: "element count",
            })
    }

    /// Bytes of data, as ggml computes for a contiguous tensor.
    ///
    /// # Errors
    ///
    /// [`SizeError::RowNotBlockMultiple`] when the first dimension is not a whole number of
    /// blocks of the type, [`SizeError::Overflow`] when the size does not fit in a `u64`.
    pub fn n_bytes(&self) -> Result<u64, SizeError> {
        let row = self.dims.first().copied().unwrap_or(1);
        let block = self.ggml_type.block_size();
        if !row.is_multiple_of(block) {
            return Err(SizeError::RowNotBlockMultiple {
                ggml_type: self.ggml_type,
                row,
                block,
            });
        }
        self.ggml_type.row_size(self.n_elements()?)
    }

    fn size_error(&self, cause: SizeError) -> GgufError {
        GgufError::TensorSize {
            offset: None,
            name: self.name.clone(),
            cause,
        }
    }

    fn checked_n_bytes(&self) -> Result<u64, GgufError> {
        self.n_bytes().map_err(|e| self.size_error(e))
    }

    /// File offset where this tensor's data ends, given the data section's offset.
    fn data_end(&self, data_offset: u64) -> Result<u64, GgufError> {
        let n_bytes = self.checked_n_bytes()?;
        data_offset
            .checked_add(self.offset)
            .and_then(|start| start.checked_add(n_bytes))
            .ok_or_else(|| {
                self.size_error(SizeError::Overflow {
                    what: "data end offset",
                })
            })
    }
}
