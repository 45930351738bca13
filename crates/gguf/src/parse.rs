//! The parser: header, metadata key-value pairs, tensor infos. Written once over [`Cursor`],
//! which both [`parse`](crate::parse) (a slice) and [`read_path`](crate::read_path) (a
//! buffered file) feed.

use std::collections::HashSet;
use std::io::Read;

use crate::cursor::{capacity, Ctx, Cursor, Part, Path, Utf8};
use crate::error::GgufError;
use crate::strings::Strings;
use crate::types::GgmlType;
use crate::value::{Array, Value, ValueType};
use crate::{GgufFile, TensorInfo, DEFAULT_ALIGNMENT, MAX_ARRAY_DEPTH, MAX_DIMS};

/// Reads a whole header from `cur`, which must start at the beginning of the file.
pub(crate) fn parse_from<R: Read>(cur: &mut Cursor<R>) -> Result<GgufFile, GgufError> {
    let version = read_preamble(cur)?;
    cur.wide = version >= 2;
    let width = cur.len_width();

    let at = cur.offset();
    let what = Ctx::Header("tensor count");
    let n_tensors = cur.len_field(&what)?;
    let kv_at = cur.offset();
    let kv_what = Ctx::Header("metadata count");
    let n_kv = cur.len_field(&kv_what)?;
    // A tensor info is at least a name length, n_dims, a type and an offset; a key-value pair
    // at least a key length, a type and one byte of value.
    cur.check_count(at, n_tensors, width + 4 + 4 + 8, "tensor infos", &what)?;
    cur.check_count(kv_at, n_kv, width + 4 + 1, "metadata pairs", &kv_what)?;

    let mut metadata = Vec::with_capacity(capacity(n_kv));
    let mut keys = HashSet::with_capacity(capacity(n_kv));
    let mut alignment = DEFAULT_ALIGNMENT;
    for index in 0..n_kv {
        let key_at = cur.offset();
        let key = cur.string(&Ctx::Key(index), Utf8::Strict)?;
        if key.is_empty() {
            return Err(GgufError::EmptyKey {
                offset: key_at,
                index,
            });
        }
        if !keys.insert(key.clone()) {
            return Err(GgufError::DuplicateKey {
                offset: key_at,
                index,
                key,
            });
        }
        let what = |part| Ctx::Kv {
            index,
            key: &key,
            part,
        };
        let type_at = cur.offset();
        let ty = value_type(cur, &what(Part::Type))?;
        let value_at = cur.offset();
        let value = read_value(cur, ty, &what, Path::default(), type_at)?;
        if key == "general.alignment" {
            alignment = check_alignment(&value, value_at)?;
        }
        metadata.push((key, value));
    }

    let mut tensors = Vec::with_capacity(capacity(n_tensors));
    let mut info_offsets = Vec::with_capacity(capacity(n_tensors));
    for index in 0..n_tensors {
        info_offsets.push(cur.offset());
        tensors.push(read_tensor_info(cur, index, alignment)?);
    }
    check_unique_names(&tensors, &info_offsets)?;

    let end = cur.offset();
    let data_offset =
        end.checked_next_multiple_of(alignment)
            .ok_or(GgufError::PaddingOverflow {
                offset: end,
                alignment,
            })?;
    Ok(GgufFile {
        version,
        metadata,
        tensors,
        alignment,
        data_offset,
        file_size: None,
    })
}

/// Tensor names must be unique (llama.cpp refuses duplicates).
fn check_unique_names(tensors: &[TensorInfo], offsets: &[u64]) -> Result<(), GgufError> {
    let mut names = HashSet::with_capacity(tensors.len());
    for ((index, t), &offset) in (0u64..).zip(tensors).zip(offsets) {
        if !names.insert(t.name.as_str()) {
            return Err(GgufError::DuplicateTensor {
                offset,
                index,
                name: t.name.clone(),
            });
        }
    }
    Ok(())
}

/// Magic and version; returns the version.
fn read_preamble<R: Read>(cur: &mut Cursor<R>) -> Result<u32, GgufError> {
    let magic: [u8; 4] = cur.array(&Ctx::Header("magic"))?;
    match &magic {
        b"GGUF" => {}
        b"FUGG" => {
            return Err(GgufError::BigEndian {
                offset: 0,
                found: "magic reads \"FUGG\"".to_owned(),
            })
        }
        _ => return Err(GgufError::NotGguf { magic }),
    }
    let version = cur.u32(&Ctx::Header("version"))?;
    match version {
        1..=3 => Ok(version),
        v if v & 0xFFFF == 0 && (1..=3).contains(&v.swap_bytes()) => Err(GgufError::BigEndian {
            offset: 4,
            found: format!("version reads {v:#010x}, {} byte-swapped", v.swap_bytes()),
        }),
        version => Err(GgufError::UnsupportedVersion { version }),
    }
}

fn value_type<R: Read>(cur: &mut Cursor<R>, what: &Ctx<'_>) -> Result<ValueType, GgufError> {
    let at = cur.offset();
    let id = cur.u32(what)?;
    ValueType::from_id(id).ok_or_else(|| GgufError::UnknownValueType {
        offset: at,
        what: what.to_string(),
        id,
    })
}

fn check_alignment(value: &Value, at: u64) -> Result<u64, GgufError> {
    match *value {
        Value::U32(v) if v.is_power_of_two() => Ok(v.into()),
        Value::U32(value) => Err(GgufError::AlignmentValue { offset: at, value }),
        ref other => Err(GgufError::AlignmentType {
            offset: at,
            found: other.value_type(),
        }),
    }
}

/// One value of type `ty`; `what(part)` names the key-value pair, `path` the array element.
fn read_value<'k, R: Read>(
    cur: &mut Cursor<R>,
    ty: ValueType,
    what: &impl Fn(Part) -> Ctx<'k>,
    path: Path,
    type_at: u64,
) -> Result<Value, GgufError> {
    let ctx = what(Part::Value(path));
    Ok(match ty {
        ValueType::U8 => Value::U8(cur.u8(&ctx)?),
        ValueType::I8 => Value::I8(i8::from_le_bytes(cur.array(&ctx)?)),
        ValueType::U16 => Value::U16(u16::from_le_bytes(cur.array(&ctx)?)),
        ValueType::I16 => Value::I16(i16::from_le_bytes(cur.array(&ctx)?)),
        ValueType::U32 => Value::U32(cur.u32(&ctx)?),
        ValueType::I32 => Value::I32(i32::from_le_bytes(cur.array(&ctx)?)),
        ValueType::F32 => Value::F32(f32::from_le_bytes(cur.array(&ctx)?)),
        ValueType::U64 => Value::U64(cur.u64(&ctx)?),
        ValueType::I64 => Value::I64(i64::from_le_bytes(cur.array(&ctx)?)),
        ValueType::F64 => Value::F64(f64::from_le_bytes(cur.array(&ctx)?)),
        ValueType::Bool => {
            let at = cur.offset();
            Value::Bool(to_bool(cur.u8(&ctx)?, at, &ctx)?)
        }
        ValueType::String => Value::String(cur.string(&ctx, Utf8::Lossy)?),
        ValueType::Array => Value::Array(read_array(cur, what, path, 1, type_at)?),
    })
}

fn to_bool(byte: u8, at: u64, what: &Ctx<'_>) -> Result<bool, GgufError> {
    match byte {
        0 => Ok(false),
        1 => Ok(true),
        byte => Err(GgufError::InvalidBool {
            offset: at,
            what: what.to_string(),
            byte,
        }),
    }
}

/// An array (element type, count, elements) at nesting `depth` (1 for a top-level array).
fn read_array<'k, R: Read>(
    cur: &mut Cursor<R>,
    what: &impl Fn(Part) -> Ctx<'k>,
    path: Path,
    depth: usize,
    type_at: u64,
) -> Result<Array, GgufError> {
    if depth > MAX_ARRAY_DEPTH {
        return Err(GgufError::NestingTooDeep {
            offset: type_at,
            what: what(Part::Value(path)).to_string(),
            max: MAX_ARRAY_DEPTH,
        });
    }
    let elem = value_type(cur, &what(Part::ArrayType(path)))?;
    let count_at = cur.offset();
    let count_what = what(Part::ArrayLen(path));
    let count = cur.len_field(&count_what)?;
    let unit = format_unit(elem);
    let ctx = what(Part::Value(path));

    if let Some(size) = elem.fixed_size() {
        let bytes = cur.elements(count_at, count, size, &unit, &count_what)?;
        return fixed_array(elem, &bytes, count_at.saturating_add(cur.len_width()), &ctx);
    }
    // Strings take at least their length prefix; arrays a type and a length.
    let min = match elem {
        ValueType::String => cur.len_width(),
        _ => 4 + cur.len_width(),
    };
    cur.check_count(count_at, count, min, &unit, &count_what)?;
    if elem == ValueType::String {
        let mut out = Strings::with_capacity(capacity(count));
        let mut scratch = Vec::new();
        for i in 0..count {
            cur.push_string(&what(Part::Value(path.push(i))), &mut scratch, &mut out)?;
        }
        Ok(Array::String(out))
    } else {
        let mut out = Vec::with_capacity(capacity(count));
        for i in 0..count {
            let inner_at = cur.offset();
            out.push(read_array(cur, what, path.push(i), depth + 1, inner_at)?);
        }
        Ok(Array::Array(out))
    }
}

fn format_unit(elem: ValueType) -> String {
    format!("{elem} elements")
}

/// Decodes `bytes` (a whole number of `elem`-sized values, starting at file offset `start`).
fn fixed_array(
    elem: ValueType,
    bytes: &[u8],
    start: u64,
    what: &Ctx<'_>,
) -> Result<Array, GgufError> {
    fn le<const N: usize, T>(bytes: &[u8], f: fn([u8; N]) -> T) -> Vec<T> {
        bytes.as_chunks::<N>().0.iter().map(|c| f(*c)).collect()
    }
    Ok(match elem {
        ValueType::U8 => Array::U8(bytes.to_vec()),
        ValueType::I8 => Array::I8(le(bytes, i8::from_le_bytes)),
        ValueType::U16 => Array::U16(le(bytes, u16::from_le_bytes)),
        ValueType::I16 => Array::I16(le(bytes, i16::from_le_bytes)),
        ValueType::U32 => Array::U32(le(bytes, u32::from_le_bytes)),
        ValueType::I32 => Array::I32(le(bytes, i32::from_le_bytes)),
        ValueType::F32 => Array::F32(le(bytes, f32::from_le_bytes)),
        ValueType::U64 => Array::U64(le(bytes, u64::from_le_bytes)),
        ValueType::I64 => Array::I64(le(bytes, i64::from_le_bytes)),
        ValueType::F64 => Array::F64(le(bytes, f64::from_le_bytes)),
        ValueType::Bool => {
            let mut out = Vec::with_capacity(bytes.len());
            for (i, &b) in (0u64..).zip(bytes) {
                out.push(to_bool(b, start.saturating_add(i), what)?);
            }
            Array::Bool(out)
        }
        // Not fixed-size; `read_array` handles them.
        ValueType::String | ValueType::Array => Array::U8(Vec::new()),
    })
}

fn read_tensor_info<R: Read>(
    cur: &mut Cursor<R>,
    index: u64,
    alignment: u64,
) -> Result<TensorInfo, GgufError> {
    let info_at = cur.offset();
    let what = |name, part| Ctx::Tensor { index, name, part };
    let name = cur.string(&what(None, "name"), Utf8::Strict)?;
    let named = |part| what(Some(name.as_str()), part);

    let n_dims_at = cur.offset();
    let n_dims = cur.u32(&named("n_dims"))?;
    if n_dims > MAX_DIMS {
        return Err(GgufError::TooManyDims {
            offset: n_dims_at,
            name,
            n_dims,
            max: MAX_DIMS,
        });
    }
    let mut dims = Vec::with_capacity(capacity(n_dims.into()));
    for _ in 0..n_dims {
        // Dimensions are u64 from v2 on, u32 in v1, like other lengths.
        dims.push(cur.len_field(&named("dims"))?);
    }

    let type_at = cur.offset();
    let id = cur.u32(&named("ggml type"))?;
    let Some(ggml_type) = GgmlType::from_id(id) else {
        return Err(match GgmlType::removed_name(id) {
            Some(removed) => GgufError::RemovedGgmlType {
                offset: type_at,
                name,
                id,
                removed,
            },
            None => GgufError::UnknownGgmlType {
                offset: type_at,
                name,
                id,
            },
        });
    };

    let offset_at = cur.offset();
    let offset = cur.u64(&named("offset"))?;
    if !offset.is_multiple_of(alignment) {
        return Err(GgufError::MisalignedTensor {
            offset: offset_at,
            name,
            data_offset: offset,
            alignment,
        });
    }
    let info = TensorInfo {
        name,
        dims,
        ggml_type,
        offset,
    };
    match info.n_bytes() {
        Ok(_) => Ok(info),
        Err(cause) => Err(GgufError::TensorSize {
            offset: Some(info_at),
            name: info.name,
            cause,
        }),
    }
}
