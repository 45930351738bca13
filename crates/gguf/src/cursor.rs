//! A little-endian reader over any [`Read`] that tracks the byte offset and guards every read
//! against the bytes left in the file and [`MAX_HEADER_LEN`].

use std::fmt;
use std::io::{ErrorKind, Read};

use crate::error::GgufError;
use crate::strings::Strings;
use crate::{MAX_ARRAY_DEPTH, MAX_HEADER_LEN};

/// Initial capacity cap for collections whose length comes from the file, so a corrupt count
/// can never pre-allocate more than this many elements; longer ones grow as they are read.
pub(crate) const PREALLOC_CAP: u64 = 1 << 16;

/// Where in the file a read happens; rendered only when an error is built.
#[derive(Clone, Copy)]
pub(crate) enum Ctx<'a> {
    /// A header field.
    Header(&'static str),
    /// The key of key-value pair `.0`.
    Key(u64),
    /// Part of the value of a key-value pair.
    Kv {
        index: u64,
        key: &'a str,
        part: Part,
    },
    /// Part of a tensor info.
    Tensor {
        index: u64,
        name: Option<&'a str>,
        part: &'static str,
    },
}

/// Which part of a key-value pair.
#[derive(Clone, Copy)]
pub(crate) enum Part {
    Type,
    Value(Path),
    ArrayType(Path),
    ArrayLen(Path),
}

/// Element indices from the top-level array value down to the one being read.
#[derive(Clone, Copy, Default)]
pub(crate) struct Path {
    idx: [u64; MAX_ARRAY_DEPTH],
    depth: usize,
}

impl Path {
    /// This path extended by element `i`.
    pub(crate) fn push(mut self, i: u64) -> Path {
        if let Some(slot) = self.idx.get_mut(self.depth) {
            *slot = i;
            self.depth += 1;
        }
        self
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("value")?;
        for i in self.idx.iter().take(self.depth) {
            write!(f, "[{i}]")?;
        }
        Ok(())
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Part::Type => f.write_str("type"),
            Part::Value(p) => write!(f, "{p}"),
            Part::ArrayType(p) if p.depth == 0 => f.write_str("array element type"),
            Part::ArrayType(p) => write!(f, "array element type of {p}"),
            Part::ArrayLen(p) if p.depth == 0 => f.write_str("array length"),
            Part::ArrayLen(p) => write!(f, "array length of {p}"),
        }
    }
}

impl fmt::Display for Ctx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ctx::Header(field) => write!(f, "header ({field})"),
            Ctx::Key(index) => write!(f, "metadata key {index}"),
            Ctx::Kv { index, key, part } => write!(f, "metadata key {index} {key:?} ({part})"),
            Ctx::Tensor {
                index,
                name: None,
                part,
            } => write!(f, "tensor info {index} ({part})"),
            Ctx::Tensor {
                index,
                name: Some(name),
                part,
            } => write!(f, "tensor info {index} {name:?} ({part})"),
        }
    }
}

/// What to do with a string that is not UTF-8.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Utf8 {
    /// An error (keys, tensor names).
    Strict,
    /// Replace bad bytes with U+FFFD (values).
    Lossy,
}

fn len_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// The reader. `len` is the file's length; nothing past it is ever requested.
pub(crate) struct Cursor<R> {
    inner: R,
    offset: u64,
    len: u64,
    /// `true` for GGUF v2 and later: counts and lengths are `u64`, else `u32`.
    pub(crate) wide: bool,
}

impl<R: Read> Cursor<R> {
    pub(crate) fn new(inner: R, len: u64) -> Self {
        Cursor {
            inner,
            offset: 0,
            len,
            wide: true,
        }
    }

    /// Bytes read so far: the offset of the next byte.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes between the current offset and the end of the file.
    pub(crate) fn left(&self) -> u64 {
        self.len.saturating_sub(self.offset)
    }

    fn check_limit(&self, n: u64, what: &Ctx<'_>) -> Result<(), GgufError> {
        if self.offset.saturating_add(n) > MAX_HEADER_LEN {
            return Err(GgufError::HeaderTooLarge {
                offset: self.offset,
                what: what.to_string(),
                len: n,
                limit: MAX_HEADER_LEN,
            });
        }
        Ok(())
    }

    /// Fills `buf`, or fails with `Truncated` when the file ends first.
    pub(crate) fn fill(&mut self, buf: &mut [u8], what: &Ctx<'_>) -> Result<(), GgufError> {
        let n = len_u64(buf.len());
        if n > self.left() {
            return Err(GgufError::Truncated {
                offset: self.len,
                what: what.to_string(),
            });
        }
        self.check_limit(n, what)?;
        match self.inner.read_exact(buf) {
            Ok(()) => {
                self.offset = self.offset.saturating_add(n);
                Ok(())
            }
            // The file shrank after its length was taken.
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => Err(GgufError::Truncated {
                offset: self.offset,
                what: what.to_string(),
            }),
            Err(cause) => Err(GgufError::Read {
                offset: self.offset,
                what: what.to_string(),
                cause,
            }),
        }
    }

    pub(crate) fn array<const N: usize>(&mut self, what: &Ctx<'_>) -> Result<[u8; N], GgufError> {
        let mut buf = [0u8; N];
        self.fill(&mut buf, what)?;
        Ok(buf)
    }

    pub(crate) fn u8(&mut self, what: &Ctx<'_>) -> Result<u8, GgufError> {
        self.array::<1>(what).map(|[b]| b)
    }

    pub(crate) fn u32(&mut self, what: &Ctx<'_>) -> Result<u32, GgufError> {
        self.array(what).map(u32::from_le_bytes)
    }

    pub(crate) fn u64(&mut self, what: &Ctx<'_>) -> Result<u64, GgufError> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// A count or length: `u64` from v2 on, `u32` in v1.
    pub(crate) fn len_field(&mut self, what: &Ctx<'_>) -> Result<u64, GgufError> {
        if self.wide {
            self.u64(what)
        } else {
            self.u32(what).map(u64::from)
        }
    }

    /// Bytes a count or length field takes.
    pub(crate) fn len_width(&self) -> u64 {
        if self.wide {
            8
        } else {
            4
        }
    }

    /// Reads `n` bytes after checking they exist, so a corrupt length never allocates more
    /// than the file holds (or [`MAX_HEADER_LEN`]).
    fn bytes(&mut self, n: u64, what: &Ctx<'_>) -> Result<Vec<u8>, GgufError> {
        if n > self.left() {
            return Err(GgufError::Truncated {
                offset: self.len,
                what: what.to_string(),
            });
        }
        self.check_limit(n, what)?;
        let size = usize::try_from(n).map_err(|_| GgufError::HeaderTooLarge {
            offset: self.offset,
            what: what.to_string(),
            len: n,
            limit: MAX_HEADER_LEN,
        })?;
        let mut buf = vec![0u8; size];
        self.fill(&mut buf, what)?;
        Ok(buf)
    }

    /// Reads a length-prefixed string's bytes into `buf` (replacing what it held); returns
    /// the offset of the bytes.
    fn raw_string(&mut self, what: &Ctx<'_>, buf: &mut Vec<u8>) -> Result<u64, GgufError> {
        let at = self.offset;
        let len = self.len_field(what)?;
        let left = self.left();
        if len > left {
            return Err(GgufError::StringTooLong {
                offset: at,
                what: what.to_string(),
                len,
                left,
            });
        }
        self.check_limit(len, what)?;
        let size = usize::try_from(len).map_err(|_| GgufError::HeaderTooLarge {
            offset: self.offset,
            what: what.to_string(),
            len,
            limit: MAX_HEADER_LEN,
        })?;
        buf.clear();
        buf.resize(size, 0);
        let start = self.offset;
        self.fill(buf, what)?;
        Ok(start)
    }

    /// A length-prefixed string.
    pub(crate) fn string(&mut self, what: &Ctx<'_>, utf8: Utf8) -> Result<String, GgufError> {
        let mut buf = Vec::new();
        let start = self.raw_string(what, &mut buf)?;
        match String::from_utf8(buf) {
            Ok(s) => Ok(s),
            Err(e) if utf8 == Utf8::Lossy => Ok(String::from_utf8_lossy(e.as_bytes()).into_owned()),
            Err(_) => Err(GgufError::InvalidUtf8 {
                offset: start,
                what: what.to_string(),
            }),
        }
    }

    /// A length-prefixed string value appended to `out` (lossily decoded), read through
    /// `scratch` so a vocabulary costs no allocation per token.
    pub(crate) fn push_string(
        &mut self,
        what: &Ctx<'_>,
        scratch: &mut Vec<u8>,
        out: &mut Strings,
    ) -> Result<(), GgufError> {
        self.raw_string(what, scratch)?;
        match std::str::from_utf8(scratch) {
            Ok(s) => out.push(s),
            Err(_) => out.push(&String::from_utf8_lossy(scratch)),
        }
        Ok(())
    }

    /// Checks that `count` items of at least `min_size` bytes each fit in the rest of the
    /// file; `at` is the offset of the count field.
    pub(crate) fn check_count(
        &self,
        at: u64,
        count: u64,
        min_size: u64,
        unit: &str,
        what: &Ctx<'_>,
    ) -> Result<(), GgufError> {
        let needed = u128::from(count) * u128::from(min_size);
        let left = self.left();
        if needed > u128::from(left) {
            return Err(GgufError::CountTooLarge {
                offset: at,
                what: what.to_string(),
                count,
                unit: unit.to_owned(),
                needed,
                left,
            });
        }
        Ok(())
    }

    /// `count` fixed-size elements of `size` bytes, as raw bytes (the count is checked first).
    pub(crate) fn elements(
        &mut self,
        at: u64,
        count: u64,
        size: u64,
        unit: &str,
        what: &Ctx<'_>,
    ) -> Result<Vec<u8>, GgufError> {
        self.check_count(at, count, size, unit, what)?;
        // `check_count` bounds the product by the bytes left, so it cannot overflow.
        self.bytes(count.saturating_mul(size), what)
    }
}

/// Initial capacity for `count` items read from the file: never more than [`PREALLOC_CAP`].
pub(crate) fn capacity(count: u64) -> usize {
    usize::try_from(count.min(PREALLOC_CAP)).unwrap_or(0)
}
