//! The crate's error types.
//!
//! Messages are lowercase and complete on their own (`to_string()` is the whole story): they
//! name the byte offset where the offending field starts, which field it is (metadata key
//! index and name, tensor info index and name), and the value found.

use std::path::PathBuf;

use crate::types::GgmlType;
use crate::value::ValueType;

/// Everything that can go wrong while reading a GGUF file.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// [`read_path`](crate::read_path) could not open or stat the file.
    #[error("cannot read \"{}\": {cause}", .path.display())]
    Io {
        /// The file asked for.
        path: PathBuf,
        /// What the operating system said.
        cause: std::io::Error,
    },

    /// An error inside a file read by [`read_path`](crate::read_path), with the file's path.
    #[error("\"{}\": {cause}", .path.display())]
    InFile {
        /// The file.
        path: PathBuf,
        /// The error found in it.
        cause: Box<GgufError>,
    },

    /// Reading failed for a reason other than end of file.
    #[error("offset {offset}: i/o error while reading {what}: {cause}")]
    Read {
        /// Where the read started.
        offset: u64,
        /// The field being read.
        what: String,
        /// What the operating system said.
        cause: std::io::Error,
    },

    /// The first four bytes are not `GGUF`.
    #[error(
        "not a GGUF file: magic is \"{}\" at offset 0, expected \"GGUF\"",
        .magic.escape_ascii()
    )]
    NotGguf {
        /// The bytes found.
        magic: [u8; 4],
    },

    /// The file is big-endian (its magic or version reads byte-swapped).
    #[error(
        "offset {offset}: big-endian GGUF file ({found}); only little-endian files are supported"
    )]
    BigEndian {
        /// Offset of the field that gave it away (0: magic, 4: version).
        offset: u64,
        /// What was seen.
        found: String,
    },

    /// A GGUF version this reader does not know.
    #[error("offset 4: unsupported GGUF version {version}; this reader knows versions 1, 2 and 3")]
    UnsupportedVersion {
        /// The version found.
        version: u32,
    },

    /// The file ends inside a field.
    #[error("truncated at offset {offset} while reading {what}")]
    Truncated {
        /// Where the file (or the readable part of it) ends.
        offset: u64,
        /// The field being read.
        what: String,
    },

    /// A string's length prefix is larger than what is left of the file.
    #[error(
        "offset {offset}: {what}: string length {len} exceeds the {left} bytes left in the file"
    )]
    StringTooLong {
        /// Offset of the length prefix.
        offset: u64,
        /// The string's field.
        what: String,
        /// The length found.
        len: u64,
        /// Bytes after the length prefix.
        left: u64,
    },

    /// A count (tensors, metadata pairs, array elements) cannot fit in what is left of the file.
    #[error(
        "offset {offset}: {what}: {count} {unit} need at least {needed} bytes, but only {left} \
         are left in the file"
    )]
    CountTooLarge {
        /// Offset of the count.
        offset: u64,
        /// The count's field.
        what: String,
        /// The count found.
        count: u64,
        /// What is counted ("tensor infos", "u32 elements", ...).
        unit: String,
        /// The fewest bytes that many items take.
        needed: u128,
        /// Bytes after the count.
        left: u64,
    },

    /// Reading a field would take the header past [`MAX_HEADER_LEN`](crate::MAX_HEADER_LEN).
    #[error(
        "offset {offset}: {what}: {len} bytes would take the header past {limit} bytes, more \
         than any real GGUF header; the length or count is likely corrupt"
    )]
    HeaderTooLarge {
        /// Offset of the field.
        offset: u64,
        /// The field.
        what: String,
        /// Bytes it asked for.
        len: u64,
        /// The limit.
        limit: u64,
    },

    /// A metadata value type id outside 0..=12.
    #[error("offset {offset}: {what}: unknown metadata value type {id}")]
    UnknownValueType {
        /// Offset of the type id.
        offset: u64,
        /// The field.
        what: String,
        /// The id found.
        id: u32,
    },

    /// A bool byte other than 0 or 1.
    #[error("offset {offset}: {what}: bool byte {byte}, expected 0 or 1")]
    InvalidBool {
        /// Offset of the byte.
        offset: u64,
        /// The field.
        what: String,
        /// The byte found.
        byte: u8,
    },

    /// Arrays of arrays nested deeper than [`MAX_ARRAY_DEPTH`](crate::MAX_ARRAY_DEPTH).
    #[error("offset {offset}: {what}: arrays nested more than {max} deep")]
    NestingTooDeep {
        /// Offset of the array that is one level too deep.
        offset: u64,
        /// The field.
        what: String,
        /// The limit.
        max: usize,
    },

    /// A metadata key or tensor name that is not UTF-8.
    #[error("offset {offset}: {what} is not valid UTF-8")]
    InvalidUtf8 {
        /// Offset of the string's bytes.
        offset: u64,
        /// The field.
        what: String,
    },

    /// A metadata key of length 0.
    #[error("offset {offset}: metadata key {index} is empty")]
    EmptyKey {
        /// Offset of the key.
        offset: u64,
        /// Index of the key-value pair.
        index: u64,
    },

    /// A metadata key that appeared before.
    #[error("offset {offset}: metadata key {index}: duplicate key {key:?}")]
    DuplicateKey {
        /// Offset of the second occurrence.
        offset: u64,
        /// Index of the second occurrence.
        index: u64,
        /// The key.
        key: String,
    },

    /// `general.alignment` is not a `u32`.
    #[error("offset {offset}: general.alignment has type {found}, expected u32")]
    AlignmentType {
        /// Offset of the value.
        offset: u64,
        /// The type found.
        found: ValueType,
    },

    /// `general.alignment` is 0 or not a power of two.
    #[error("offset {offset}: general.alignment {value} is not a power of two")]
    AlignmentValue {
        /// Offset of the value.
        offset: u64,
        /// The value found.
        value: u32,
    },

    /// A tensor with more dimensions than [`MAX_DIMS`](crate::MAX_DIMS).
    #[error(
        "offset {offset}: tensor {name:?} has {n_dims} dimensions; at most {max} are supported"
    )]
    TooManyDims {
        /// Offset of the dimension count.
        offset: u64,
        /// The tensor.
        name: String,
        /// The count found.
        n_dims: u32,
        /// The limit.
        max: u32,
    },

    /// A tensor type id that ggml never had.
    #[error("offset {offset}: tensor {name:?} has unknown ggml type {id}")]
    UnknownGgmlType {
        /// Offset of the type id.
        offset: u64,
        /// The tensor.
        name: String,
        /// The id found.
        id: u32,
    },

    /// A tensor type id that ggml has removed.
    #[error(
        "offset {offset}: tensor {name:?} has ggml type {id} ({removed}), which llama.cpp \
         no longer supports"
    )]
    RemovedGgmlType {
        /// Offset of the type id.
        offset: u64,
        /// The tensor.
        name: String,
        /// The id found.
        id: u32,
        /// Its former name.
        removed: &'static str,
    },

    /// A tensor name that appeared before.
    #[error("offset {offset}: tensor info {index}: duplicate tensor name {name:?}")]
    DuplicateTensor {
        /// Offset of the second occurrence.
        offset: u64,
        /// Index of the second occurrence.
        index: u64,
        /// The name.
        name: String,
    },

    /// A tensor's data offset is not a multiple of the alignment.
    #[error(
        "offset {offset}: tensor {name:?} has data offset {data_offset}, not a multiple of the \
         alignment {alignment}"
    )]
    MisalignedTensor {
        /// Offset of the data-offset field.
        offset: u64,
        /// The tensor.
        name: String,
        /// The data offset found.
        data_offset: u64,
        /// The file's alignment.
        alignment: u64,
    },

    /// A tensor whose size cannot be computed.
    #[error("{}tensor {name:?}: {cause}", at(*.offset))]
    TensorSize {
        /// Offset of the tensor info, when the tensor came from a file being parsed.
        offset: Option<u64>,
        /// The tensor.
        name: String,
        /// Why.
        cause: SizeError,
    },

    /// Padding the end of the header to the alignment overflows 64 bits.
    #[error("offset {offset}: padding the header end to the alignment {alignment} overflows")]
    PaddingOverflow {
        /// End of the tensor infos.
        offset: u64,
        /// The file's alignment.
        alignment: u64,
    },

    /// A tensor's data lies past the end of the file (an incomplete download, usually).
    #[error(
        "tensor {name:?} data ends at byte {end}, past the end of the {file_size}-byte file \
         (incomplete download?)"
    )]
    DataPastEnd {
        /// The tensor.
        name: String,
        /// Where its data ends.
        end: u64,
        /// The file's size.
        file_size: u64,
    },
}

fn at(offset: Option<u64>) -> String {
    offset.map_or_else(String::new, |o| format!("offset {o}: "))
}

/// Why a tensor's element count or byte size cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// An element count that is not a whole number of blocks.
    #[error("{count} elements is not a multiple of the {ggml_type} block size {block}")]
    NotBlockMultiple {
        /// The type.
        ggml_type: GgmlType,
        /// The element count.
        count: u64,
        /// The type's block size.
        block: u64,
    },
    /// A row (first dimension) that is not a whole number of blocks.
    #[error("rows of {row} elements are not a multiple of the {ggml_type} block size {block}")]
    RowNotBlockMultiple {
        /// The type.
        ggml_type: GgmlType,
        /// The first dimension.
        row: u64,
        /// The type's block size.
        block: u64,
    },
    /// The result does not fit in 64 bits.
    #[error("{what} overflows 64 bits")]
    Overflow {
        /// What overflowed.
        what: &'static str,
    },
}
