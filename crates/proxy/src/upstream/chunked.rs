//! The framing of an HTTP/1.1 response body (RFC 9112 §6–7): a known length, chunked
//! transfer coding, or everything until the connection closes. Pure: it takes the bytes
//! read so far and hands out the body's data, never reading itself.

use bytes::{Buf, BytesMut};

/// Longest chunk-size line or trailer line accepted.
pub(super) const MAX_LINE: usize = 8 * 1024;

/// How the body is delimited, and how far it has got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Framing {
    /// `Content-Length`: this many bytes are still to come.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked(Chunk),
    /// Neither: the body ends when the upstream closes the connection.
    UntilClose,
    /// The body is complete.
    Done,
}

/// Where the chunked decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chunk {
    /// Before a chunk-size line.
    Size,
    /// Inside a chunk's data: this many bytes are left.
    Data(u64),
    /// After a chunk's data: its CRLF.
    DataEnd,
    /// After the last (zero-size) chunk: trailer lines until an empty one.
    Trailers,
}

/// What [`Framing::decode`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// More bytes are needed (the data found so far was appended).
    More,
    /// The body ended (the data found so far was appended); any bytes left in the buffer
    /// do not belong to it.
    End,
}

impl Framing {
    /// Moves the body's data from `buf` to `out` as far as `buf` goes.
    ///
    /// # Errors
    ///
    /// A chunk-size line that is not hexadecimal, overflows or is too long, or a chunk not
    /// followed by CRLF; the message names what was seen.
    pub(crate) fn decode(
        &mut self,
        buf: &mut BytesMut,
        out: &mut BytesMut,
    ) -> Result<Decoded, String> {
        loop {
            match self {
                Framing::Done => return Ok(Decoded::End),
                Framing::UntilClose => {
                    out.extend_from_slice(buf);
                    buf.clear();
                    return Ok(Decoded::More);
                }
                Framing::Length(left) => {
                    let n = (*left).min(buf.len() as u64) as usize;
                    out.extend_from_slice(&buf[..n]);
                    buf.advance(n);
                    *left -= n as u64;
                    if *left == 0 {
                        *self = Framing::Done;
                        return Ok(Decoded::End);
                    }
                    return Ok(Decoded::More);
                }
                Framing::Chunked(c) => match *c {
                    Chunk::Size => {
                        let Some(line) = take_line(buf)? else {
                            return Ok(Decoded::More);
                        };
                        let size = chunk_size(&line)?;
                        *c = if size == 0 {
                            Chunk::Trailers
                        } else {
                            Chunk::Data(size)
                        };
                    }
                    Chunk::Data(left) => {
                        if buf.is_empty() {
                            return Ok(Decoded::More);
                        }
                        let n = left.min(buf.len() as u64) as usize;
                        out.extend_from_slice(&buf[..n]);
                        buf.advance(n);
                        *c = if left == n as u64 {
                            Chunk::DataEnd
                        } else {
                            Chunk::Data(left - n as u64)
                        };
                    }
                    Chunk::DataEnd => {
                        let Some(line) = take_line(buf)? else {
                            return Ok(Decoded::More);
                        };
                        if !line.is_empty() {
                            return Err(format!(
                                "chunk data not followed by CRLF (found {:?})",
                                String::from_utf8_lossy(&line[..line.len().min(40)])
                            ));
                        }
                        *c = Chunk::Size;
                    }
                    Chunk::Trailers => {
                        let Some(line) = take_line(buf)? else {
                            return Ok(Decoded::More);
                        };
                        if line.is_empty() {
                            *self = Framing::Done;
                            return Ok(Decoded::End);
                        }
                    }
                },
            }
        }
    }

    /// Bytes still to come when the length is known.
    pub(crate) fn remaining(&self) -> Option<u64> {
        match self {
            Framing::Length(n) => Some(*n),
            Framing::Done => Some(0),
            _ => None,
        }
    }
}

/// Takes one line (without its CRLF or LF) off the front of `buf`, or `None` when no line
/// end has arrived yet.
fn take_line(buf: &mut BytesMut) -> Result<Option<BytesMut>, String> {
    match buf.iter().position(|b| *b == b'\n') {
        Some(i) => {
            let mut line = buf.split_to(i + 1);
            line.truncate(i);
            if line.last() == Some(&b'\r') {
                line.truncate(i - 1);
            }
            Ok(Some(line))
        }
        None if buf.len() > MAX_LINE => Err(format!(
            "chunk-size or trailer line longer than {MAX_LINE} bytes"
        )),
        None => Ok(None),
    }
}

/// The size on a chunk-size line (`1a;ext=x`).
fn chunk_size(line: &[u8]) -> Result<u64, String> {
    let hex = line
        .split(|b| *b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    let bad = || {
        format!(
            "chunk size {:?} is not a hexadecimal number",
            String::from_utf8_lossy(&line[..line.len().min(40)])
        )
    };
    if hex.is_empty() || hex.len() > 16 {
        return Err(bad());
    }
    hex.iter().try_fold(0u64, |acc, b| {
        let d = (*b as char).to_digit(16).ok_or_else(bad)?;
        Ok((acc << 4) | u64::from(d))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Feeds `wire` to a decoder in pieces of `step` bytes; the data and whether it ended.
    fn feed(mut f: Framing, wire: &[u8], step: usize) -> (Vec<u8>, bool, BytesMut) {
        let mut buf = BytesMut::new();
        let mut out = BytesMut::new();
        let mut ended = false;
        for piece in wire.chunks(step) {
            buf.extend_from_slice(piece);
            if f.decode(&mut buf, &mut out).unwrap() == Decoded::End {
                ended = true;
                break;
            }
        }
        (out.to_vec(), ended, buf)
    }

    #[test]
    fn chunked_bodies_decode_in_any_split() {
        let wire = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nx-trailer: 1\r\n\r\n";
        for step in 1..=wire.len() {
            let (data, ended, left) = feed(Framing::Chunked(Chunk::Size), wire, step);
            assert_eq!(data, b"hello, world", "step {step}");
            assert!(ended, "step {step}");
            assert!(left.is_empty());
        }
    }

    #[test]
    fn bare_lf_and_upper_case_hex_are_accepted() {
        let (data, ended, _) = feed(Framing::Chunked(Chunk::Size), b"A\nabcdefghij\n0\n\n", 3);
        assert_eq!((data.as_slice(), ended), (&b"abcdefghij"[..], true));
    }

    #[test]
    fn bytes_after_the_body_are_left_in_the_buffer() {
        let (data, ended, left) = feed(Framing::Length(3), b"abcdef", 6);
        assert_eq!(
            (data.as_slice(), ended, &left[..]),
            (&b"abc"[..], true, &b"def"[..])
        );
        let (_, ended, left) = feed(
            Framing::Chunked(Chunk::Size),
            b"1\r\na\r\n0\r\n\r\nHTTP",
            64,
        );
        assert!(ended);
        assert_eq!(&left[..], b"HTTP");
    }

    #[test]
    fn until_close_never_ends_by_itself() {
        let (data, ended, _) = feed(Framing::UntilClose, b"anything", 3);
        assert_eq!((data.as_slice(), ended), (&b"anything"[..], false));
    }

    #[test]
    fn bad_framing_is_an_error_naming_what_was_seen() {
        for (wire, want) in [
            (&b"zz\r\n"[..], "\"zz\""),
            (&b"3\r\nabcX\r\n"[..], "not followed by CRLF"),
            (&b"11111111111111111\r\n"[..], "hexadecimal"),
        ] {
            let mut f = Framing::Chunked(Chunk::Size);
            let mut buf = BytesMut::from(wire);
            let mut out = BytesMut::new();
            let e = f.decode(&mut buf, &mut out).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
        let mut f = Framing::Chunked(Chunk::Size);
        let mut buf = BytesMut::from(&vec![b'1'; MAX_LINE + 1][..]);
        assert!(f.decode(&mut buf, &mut BytesMut::new()).is_err());
    }
}
