//! Metadata values: [`ValueType`], [`Value`] and typed [`Array`]s.

use std::fmt;

use crate::strings::Strings;

macro_rules! value_types {
    ($($variant:ident = $id:literal, $name:literal;)+) => {
        /// The type of a metadata value, as its id in the file (0..=12).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u32)]
        pub enum ValueType {
            $(
                #[doc = concat!("`", $name, "` (id ", $id, ").")]
                $variant = $id,
            )+
        }

        impl ValueType {
            /// The type with this id, or `None` outside 0..=12.
            pub const fn from_id(id: u32) -> Option<ValueType> {
                match id {
                    $($id => Some(ValueType::$variant),)+
                    _ => None,
                }
            }

            /// The short name used in messages (`"u32"`, `"string"`, `"array"`).
            pub const fn name(self) -> &'static str {
                match self { $(ValueType::$variant => $name),+ }
            }
        }
    };
}

value_types! {
    U8 = 0, "u8";
    I8 = 1, "i8";
    U16 = 2, "u16";
    I16 = 3, "i16";
    U32 = 4, "u32";
    I32 = 5, "i32";
    F32 = 6, "f32";
    Bool = 7, "bool";
    String = 8, "string";
    Array = 9, "array";
    U64 = 10, "u64";
    I64 = 11, "i64";
    F64 = 12, "f64";
}

impl ValueType {
    /// The type's id in the file.
    pub const fn id(self) -> u32 {
        self as u32
    }

    /// Bytes one value takes in the file, for fixed-size types (`None` for strings and arrays).
    pub const fn fixed_size(self) -> Option<u64> {
        match self {
            ValueType::U8 | ValueType::I8 | ValueType::Bool => Some(1),
            ValueType::U16 | ValueType::I16 => Some(2),
            ValueType::U32 | ValueType::I32 | ValueType::F32 => Some(4),
            ValueType::U64 | ValueType::I64 | ValueType::F64 => Some(8),
            ValueType::String | ValueType::Array => None,
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `u8`.
    U8(u8),
    /// `i8`.
    I8(i8),
    /// `u16`.
    U16(u16),
    /// `i16`.
    I16(i16),
    /// `u32`.
    U32(u32),
    /// `i32`.
    I32(i32),
    /// `f32`.
    F32(f32),
    /// `bool`.
    Bool(bool),
    /// A string. Metadata strings that are not valid UTF-8 (seen in some tokenizer
    /// vocabularies) are read with U+FFFD in place of the bad bytes.
    String(String),
    /// An array of one element type.
    Array(Array),
    /// `u64`.
    U64(u64),
    /// `i64`.
    I64(i64),
    /// `f64`.
    F64(f64),
}

/// An array value. Elements are stored by type, so a 150,000-entry `f32` array takes 600 KB
/// and a vocabulary of strings is two allocations ([`Strings`]); an empty array keeps its
/// element type.
#[derive(Debug, Clone, PartialEq)]
pub enum Array {
    /// `u8` elements.
    U8(Vec<u8>),
    /// `i8` elements.
    I8(Vec<i8>),
    /// `u16` elements.
    U16(Vec<u16>),
    /// `i16` elements.
    I16(Vec<i16>),
    /// `u32` elements.
    U32(Vec<u32>),
    /// `i32` elements.
    I32(Vec<i32>),
    /// `f32` elements.
    F32(Vec<f32>),
    /// `bool` elements.
    Bool(Vec<bool>),
    /// String elements (a tokenizer vocabulary, merges), stored in one buffer.
    String(Strings),
    /// Nested arrays, each with its own element type.
    Array(Vec<Array>),
    /// `u64` elements.
    U64(Vec<u64>),
    /// `i64` elements.
    I64(Vec<i64>),
    /// `f64` elements.
    F64(Vec<f64>),
}

impl Value {
    /// The value's type.
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::U8(_) => ValueType::U8,
            Value::I8(_) => ValueType::I8,
            Value::U16(_) => ValueType::U16,
            Value::I16(_) => ValueType::I16,
            Value::U32(_) => ValueType::U32,
            Value::I32(_) => ValueType::I32,
            Value::F32(_) => ValueType::F32,
            Value::Bool(_) => ValueType::Bool,
            Value::String(_) => ValueType::String,
            Value::Array(_) => ValueType::Array,
            Value::U64(_) => ValueType::U64,
            Value::I64(_) => ValueType::I64,
            Value::F64(_) => ValueType::F64,
        }
    }

    /// Any integer type holding a non-negative value, as `u64`.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// Any integer type whose value fits an `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => i64::try_from(v).ok(),
            Value::I8(v) => Some(v.into()),
            Value::I16(v) => Some(v.into()),
            Value::I32(v) => Some(v.into()),
            Value::I64(v) => Some(v),
            _ => None,
        }
    }

    /// `f32` or `f64` as `f64`; integers too (64-bit ones may round).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v.into()),
            Value::F64(v) => Some(v),
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::I8(v) => Some(v.into()),
            Value::I16(v) => Some(v.into()),
            Value::I32(v) => Some(v.into()),
            Value::U64(v) => Some(v as f64),
            Value::I64(v) => Some(v as f64),
            _ => None,
        }
    }

    /// The bool, for a `bool` value.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(v) => Some(v),
            _ => None,
        }
    }

    /// The string, for a `string` value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(v) => Some(v),
            _ => None,
        }
    }

    /// The array, for an `array` value.
    pub fn as_array(&self) -> Option<&Array> {
        match self {
            Value::Array(v) => Some(v),
            _ => None,
        }
    }
}

impl Array {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Array::U8(v) => v.len(),
            Array::I8(v) => v.len(),
            Array::U16(v) => v.len(),
            Array::I16(v) => v.len(),
            Array::U32(v) => v.len(),
            Array::I32(v) => v.len(),
            Array::F32(v) => v.len(),
            Array::Bool(v) => v.len(),
            Array::String(v) => v.len(),
            Array::Array(v) => v.len(),
            Array::U64(v) => v.len(),
            Array::I64(v) => v.len(),
            Array::F64(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element type.
    pub fn element_type(&self) -> ValueType {
        match self {
            Array::U8(_) => ValueType::U8,
            Array::I8(_) => ValueType::I8,
            Array::U16(_) => ValueType::U16,
            Array::I16(_) => ValueType::I16,
            Array::U32(_) => ValueType::U32,
            Array::I32(_) => ValueType::I32,
            Array::F32(_) => ValueType::F32,
            Array::Bool(_) => ValueType::Bool,
            Array::String(_) => ValueType::String,
            Array::Array(_) => ValueType::Array,
            Array::U64(_) => ValueType::U64,
            Array::I64(_) => ValueType::I64,
            Array::F64(_) => ValueType::F64,
        }
    }

    /// Element `i` as a [`Value`] (a copy; strings and nested arrays are cloned).
    pub fn get(&self, i: usize) -> Option<Value> {
        match self {
            Array::U8(v) => v.get(i).copied().map(Value::U8),
            Array::I8(v) => v.get(i).copied().map(Value::I8),
            Array::U16(v) => v.get(i).copied().map(Value::U16),
            Array::I16(v) => v.get(i).copied().map(Value::I16),
            Array::U32(v) => v.get(i).copied().map(Value::U32),
            Array::I32(v) => v.get(i).copied().map(Value::I32),
            Array::F32(v) => v.get(i).copied().map(Value::F32),
            Array::Bool(v) => v.get(i).copied().map(Value::Bool),
            Array::String(v) => v.get(i).map(|s| Value::String(s.to_owned())),
            Array::Array(v) => v.get(i).cloned().map(Value::Array),
            Array::U64(v) => v.get(i).copied().map(Value::U64),
            Array::I64(v) => v.get(i).copied().map(Value::I64),
            Array::F64(v) => v.get(i).copied().map(Value::F64),
        }
    }

    /// Element `i` of an integer array, when it is non-negative (see [`Value::as_u64`]).
    pub fn u64_at(&self, i: usize) -> Option<u64> {
        match self {
            Array::U8(v) => v.get(i).map(|&x| x.into()),
            Array::U16(v) => v.get(i).map(|&x| x.into()),
            Array::U32(v) => v.get(i).map(|&x| x.into()),
            Array::U64(v) => v.get(i).copied(),
            Array::I8(v) => v.get(i).and_then(|&x| u64::try_from(x).ok()),
            Array::I16(v) => v.get(i).and_then(|&x| u64::try_from(x).ok()),
            Array::I32(v) => v.get(i).and_then(|&x| u64::try_from(x).ok()),
            Array::I64(v) => v.get(i).and_then(|&x| u64::try_from(x).ok()),
            _ => None,
        }
    }

    /// Element `i` of a numeric array as `f64` (see [`Value::as_f64`]).
    pub fn f64_at(&self, i: usize) -> Option<f64> {
        match self {
            Array::F32(v) => v.get(i).map(|&x| x.into()),
            Array::F64(v) => v.get(i).copied(),
            Array::String(_) | Array::Array(_) | Array::Bool(_) => None,
            other => other.get(i).and_then(|v| v.as_f64()),
        }
    }

    /// Element `i` of a string array.
    pub fn str_at(&self, i: usize) -> Option<&str> {
        match self {
            Array::String(v) => v.get(i),
            _ => None,
        }
    }

    /// Element `i` of an array of arrays.
    pub fn array_at(&self, i: usize) -> Option<&Array> {
        match self {
            Array::Array(v) => v.get(i),
            _ => None,
        }
    }

    /// The elements of a string array.
    pub fn strings(&self) -> Option<&Strings> {
        match self {
            Array::String(v) => Some(v),
            _ => None,
        }
    }

    /// Every element as `u64`, for an integer array with no negative element.
    pub fn to_u64_vec(&self) -> Option<Vec<u64>> {
        (0..self.len()).map(|i| self.u64_at(i)).collect()
    }
}

macro_rules! from_impls {
    ($($t:ty => $variant:ident;)+) => {
        $(
            impl From<$t> for Value {
                fn from(v: $t) -> Value {
                    Value::$variant(v)
                }
            }
            impl From<Vec<$t>> for Array {
                fn from(v: Vec<$t>) -> Array {
                    Array::$variant(v)
                }
            }
            impl From<Vec<$t>> for Value {
                fn from(v: Vec<$t>) -> Value {
                    Value::Array(Array::$variant(v))
                }
            }
        )+
    };
}

from_impls! {
    u8 => U8;
    i8 => I8;
    u16 => U16;
    i16 => I16;
    u32 => U32;
    i32 => I32;
    f32 => F32;
    bool => Bool;
    u64 => U64;
    i64 => I64;
    f64 => F64;
    Array => Array;
}

impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::String(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::String(v.to_owned())
    }
}

impl From<Strings> for Array {
    fn from(v: Strings) -> Array {
        Array::String(v)
    }
}

impl From<Strings> for Value {
    fn from(v: Strings) -> Value {
        Value::Array(Array::String(v))
    }
}

impl<S: AsRef<str>> From<Vec<S>> for Strings {
    fn from(v: Vec<S>) -> Strings {
        v.iter().collect()
    }
}

impl From<Vec<String>> for Array {
    fn from(v: Vec<String>) -> Array {
        Array::String(v.into())
    }
}

impl From<Vec<&str>> for Array {
    fn from(v: Vec<&str>) -> Array {
        Array::String(v.into())
    }
}

impl From<Vec<String>> for Value {
    fn from(v: Vec<String>) -> Value {
        Value::Array(v.into())
    }
}

impl From<Vec<&str>> for Value {
    fn from(v: Vec<&str>) -> Value {
        Value::Array(v.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_accessors_accept_any_non_negative_integer() {
        assert_eq!(Value::U8(7).as_u64(), Some(7));
        assert_eq!(Value::I32(7).as_u64(), Some(7));
        assert_eq!(Value::I64(-1).as_u64(), None);
        assert_eq!(Value::U64(u64::MAX).as_u64(), Some(u64::MAX));
        assert_eq!(Value::U64(u64::MAX).as_i64(), None);
        assert_eq!(Value::I8(-3).as_i64(), Some(-3));
        assert_eq!(Value::F32(1.0).as_u64(), None);
        assert_eq!(Value::Bool(true).as_u64(), None);
        assert_eq!(Value::String("3".into()).as_u64(), None);
    }

    #[test]
    fn other_accessors() {
        assert_eq!(Value::F32(0.5).as_f64(), Some(0.5));
        assert_eq!(Value::U32(10_000).as_f64(), Some(10_000.0));
        assert_eq!(Value::Bool(true).as_f64(), None);
        assert_eq!(Value::from("llama").as_str(), Some("llama"));
        assert_eq!(Value::Bool(false).as_bool(), Some(false));
        let v = Value::from(vec![1i32, -2, 3]);
        let a = v.as_array().map(Array::to_u64_vec);
        assert_eq!(a, Some(None), "a negative element makes to_u64_vec None");
        let a = Array::from(vec![8u32, 4, 8]);
        assert_eq!(a.to_u64_vec(), Some(vec![8, 4, 8]));
        assert_eq!(a.u64_at(1), Some(4));
        assert_eq!(a.u64_at(3), None);
        assert_eq!(a.f64_at(2), Some(8.0));
        assert_eq!(a.get(0), Some(Value::U32(8)));
        assert_eq!(a.element_type(), ValueType::U32);
        let s = Array::from(vec!["a".to_string(), "b".to_string()]);
        assert_eq!(s.str_at(1), Some("b"));
        assert_eq!(s.get(0), Some(Value::from("a")));
        assert_eq!(s.strings().map(Strings::len), Some(2));
        let all: Vec<&str> = s.strings().map(|v| v.iter().collect()).unwrap_or_default();
        assert_eq!(all, ["a", "b"]);
        assert_eq!(s.u64_at(0), None);
        let nested = Array::Array(vec![s.clone(), Array::Bool(vec![])]);
        assert_eq!(nested.array_at(0), Some(&s));
        assert_eq!(nested.array_at(1).map(Array::is_empty), Some(true));
    }

    #[test]
    fn value_type_ids_round_trip() {
        for id in 0..=12 {
            let t = ValueType::from_id(id);
            assert_eq!(t.map(ValueType::id), Some(id));
        }
        assert_eq!(ValueType::from_id(13), None);
        assert_eq!(ValueType::Array.to_string(), "array");
    }
}
