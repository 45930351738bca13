//! The upstream answer reader driven over bytes in memory, for the cargo-fuzz target in
//! `crates/proxy/fuzz` and for tests. Not part of the proxy's API.
//!
//! [`read_answer`] runs the same steps as a measured request's exchange: the head loop of
//! `exchange` ([`next_head`], which skips interim 1xx heads), the framing choice
//! ([`framing`]), then the body loop of [`UpstreamBody`](super::UpstreamBody) ([`step`], and
//! [`closed`] at end of stream), with the socket replaced by a reader that hands out the
//! input in reads of chosen sizes. [`check`] decodes a fuzzer's input into such a run and
//! asserts what must hold of every answer.

use bytes::BytesMut;
use hyper::{HeaderMap, Method, StatusCode};

use super::body::{closed, step, Step};
use super::chunked::{Framing, MAX_LINE};
use super::{closes, framing, next_head};

/// How an answer's body was delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delimited {
    /// No body (HEAD, 1xx, 204, 304, `Content-Length: 0`).
    Empty,
    /// `Content-Length` of this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Until the connection closed.
    UntilClose,
}

/// An answer read off the in-memory connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// Status code of the final (non-1xx) head.
    pub status: StatusCode,
    /// Its headers.
    pub headers: HeaderMap,
    /// Whether the connection could go back to the pool (not HTTP/1.0, no `Connection: close`).
    pub keep_alive: bool,
    /// How the body was delimited.
    pub delimited: Delimited,
    /// Offset in the input where the final head ended.
    pub head_end: usize,
    /// The decoded body.
    pub body: Vec<u8>,
    /// The input after the end of the answer (read or not): bytes that are not part of it.
    pub left: Vec<u8>,
}

/// Hands out `wire` in reads of `sizes[i % sizes.len()]` bytes (at least 1; the whole rest
/// when `sizes` is empty), then end of stream.
struct Reads<'a> {
    wire: &'a [u8],
    at: usize,
    sizes: &'a [usize],
    n: usize,
}

impl Reads<'_> {
    /// Appends the next read to `buf`; 0 at end of stream.
    fn read(&mut self, buf: &mut BytesMut) -> usize {
        let rest = self.wire.len() - self.at;
        let size = match self.sizes {
            [] => rest,
            s => s[self.n % s.len()].max(1).min(rest),
        };
        self.n += 1;
        buf.extend_from_slice(&self.wire[self.at..self.at + size]);
        self.at += size;
        size
    }
}

/// Reads one answer to a POST (or a HEAD when `head_request`) from `wire`, delivered in reads
/// of the given `sizes` (cycled; empty: one read).
///
/// # Errors
///
/// What the proxy would fail the request with: a head that is not HTTP/1.x or too large, a
/// bad `Content-Length`, bad chunked framing, or the connection closing early.
pub fn read_answer(wire: &[u8], sizes: &[usize], head_request: bool) -> Result<Answer, String> {
    let mut src = Reads {
        wire,
        at: 0,
        sizes,
        n: 0,
    };
    let mut buf = BytesMut::new();
    let head = loop {
        if src.read(&mut buf) == 0 {
            return Err("the connection closed before the answer head was complete".into());
        }
        if let Some(h) = next_head(&mut buf)? {
            break h;
        }
    };
    let head_end = src.at - head.rest.len();
    let method = if head_request {
        Method::HEAD
    } else {
        Method::POST
    };
    let mut framing = framing(&method, head.status, &head.headers)?;
    let delimited = match framing {
        Framing::Done => Delimited::Empty,
        Framing::Length(n) => Delimited::Length(n),
        Framing::Chunked(_) => Delimited::Chunked,
        Framing::UntilClose => Delimited::UntilClose,
    };
    let keep_alive = !closes(&head);
    let (status, headers, mut buf) = (head.status, head.headers, head.rest);
    let mut body = Vec::new();
    loop {
        match step(&mut framing, &mut buf)? {
            Step::Data(d) => body.extend_from_slice(&d),
            Step::End(last) => {
                body.extend_from_slice(last.as_deref().unwrap_or_default());
                break;
            }
            Step::Read => {
                if src.read(&mut buf) == 0 {
                    closed(&mut framing)?;
                    break;
                }
            }
        }
    }
    let mut left = buf.to_vec();
    left.extend_from_slice(&wire[src.at..]);
    Ok(Answer {
        status,
        headers,
        keep_alive,
        delimited,
        head_end,
        body,
        left,
    })
}

/// Runs one fuzz input and panics if an invariant fails.
///
/// Layout: byte 0 holds flags (bit 0: the request was a HEAD; bit 1: build a valid chunked
/// answer from the rest instead of reading it as the wire; bits 4–7: how many read sizes
/// follow), then that many bytes each giving a read size (the byte plus one), then the rest.
///
/// Invariants, for every answer read:
/// - reading never panics;
/// - the outcome does not depend on how the bytes were split into reads (inputs up to the
///   chunk-line limit; beyond it the limits count what one read brought);
/// - the body and what follows the answer never exceed what came after the head; with a
///   length, no body or until-close framing they are exactly what came after the head, and a
///   length body is exactly that long;
/// - an answer to HEAD has no body;
/// - a valid chunked answer decodes to its chunks' data concatenated, in any split, with
///   chunk extensions, upper-case hex, bare LF line ends, leading zeros, trailers, an interim
///   100 Continue, and bytes after the body left for the next answer.
pub fn check(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let n_sizes = usize::from(flags >> 4).min(rest.len());
    let (size_bytes, rest) = rest.split_at(n_sizes);
    let sizes: Vec<usize> = size_bytes.iter().map(|b| usize::from(*b) + 1).collect();
    if flags & 2 != 0 {
        check_chunked(rest, &sizes);
    } else {
        check_wire(rest, &sizes, flags & 1 != 0);
    }
}

fn check_wire(wire: &[u8], sizes: &[usize], head_request: bool) {
    let got = read_answer(wire, sizes, head_request);
    if wire.len() <= MAX_LINE {
        let whole = read_answer(wire, &[], head_request);
        match (&got, &whole) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "reads of {sizes:?} differ from one read"),
            (Err(_), Err(_)) => {}
            _ => panic!("reads of {sizes:?} gave {got:?}, one read gave {whole:?}"),
        }
    }
    let Ok(a) = got else { return };
    let after_head = &wire[a.head_end..];
    assert!(a.body.len() + a.left.len() <= after_head.len());
    assert!(after_head.ends_with(&a.left));
    match a.delimited {
        Delimited::Chunked => {}
        Delimited::Empty | Delimited::Length(_) | Delimited::UntilClose => {
            assert_eq!([&a.body[..], &a.left[..]].concat(), after_head);
        }
    }
    match a.delimited {
        Delimited::Length(n) => assert_eq!(a.body.len() as u64, n),
        Delimited::UntilClose => assert!(a.left.is_empty()),
        Delimited::Empty | Delimited::Chunked => {}
    }
    if head_request {
        assert_eq!(a.delimited, Delimited::Empty);
    }
}

/// Builds a valid chunked answer from `spec` and checks that it decodes to its chunks.
///
/// `spec[0]`: bit 0 HTTP/1.0, bit 1 a `Content-Length` too (ignored), bit 2 an interim
/// `100 Continue` first, bits 4–5 the number of trailer lines, bit 6 a next answer after the
/// body. Then chunks: a size byte (0 ends the list), an options byte (bit 0 upper-case hex,
/// bit 1 an extension, bit 2 bare LF, bit 3 leading zeros, bit 4 space before the
/// extension), and that many data bytes (fewer if the input ends).
fn check_chunked(spec: &[u8], sizes: &[usize]) {
    let Some((&opts, mut rest)) = spec.split_first() else {
        return;
    };
    let mut wire = Vec::new();
    if opts & 4 != 0 {
        wire.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    wire.extend_from_slice(if opts & 1 != 0 {
        b"HTTP/1.0 200 OK\r\n"
    } else {
        b"HTTP/1.1 200 OK\r\n"
    });
    wire.extend_from_slice(b"Content-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n");
    if opts & 2 != 0 {
        wire.extend_from_slice(b"Content-Length: 3\r\n");
    }
    wire.extend_from_slice(b"\r\n");
    let mut want = Vec::new();
    while let [len, o, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        if n == 0 {
            break;
        }
        let (data, tail) = tail.split_at(n);
        let eol: &[u8] = if o & 4 != 0 { b"\n" } else { b"\r\n" };
        let zeros = if o & 8 != 0 { "00" } else { "" };
        let hex = if o & 1 != 0 {
            format!("{zeros}{n:X}")
        } else {
            format!("{zeros}{n:x}")
        };
        wire.extend_from_slice(hex.as_bytes());
        if o & 16 != 0 {
            wire.push(b' ');
        }
        if o & 2 != 0 {
            wire.extend_from_slice(b";name=\"v\"");
        }
        wire.extend_from_slice(eol);
        wire.extend_from_slice(data);
        wire.extend_from_slice(eol);
        want.extend_from_slice(data);
        rest = tail;
    }
    wire.extend_from_slice(b"0\r\n");
    for i in 0..(opts >> 4) & 3 {
        wire.extend_from_slice(format!("x-trailer-{i}: {i}\r\n").as_bytes());
    }
    wire.extend_from_slice(b"\r\n");
    let next: &[u8] = if opts & 64 != 0 {
        b"HTTP/1.1 200 OK\r\n"
    } else {
        b""
    };
    wire.extend_from_slice(next);
    for s in [sizes, &[]] {
        let a = match read_answer(&wire, s, false) {
            Ok(a) => a,
            Err(e) => panic!("valid chunked answer refused in reads of {s:?}: {e}"),
        };
        assert_eq!(a.delimited, Delimited::Chunked);
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.keep_alive, opts & 1 == 0);
        assert_eq!(a.body, want, "reads of {s:?}");
        assert_eq!(a.left, next, "reads of {s:?}");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const SSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
Transfer-Encoding: chunked\r\n\r\n\
1b\r\ndata: {\"content\":\"Hello\"}\n\n\r\n\
e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n";

    #[test]
    fn sse_answers_read_alike_in_any_split() {
        for size in 1..=SSE.len() {
            let a = read_answer(SSE, &[size], false).unwrap();
            assert_eq!(a.delimited, Delimited::Chunked);
            assert_eq!(
                a.body, b"data: {\"content\":\"Hello\"}\n\ndata: [DONE]\n\n",
                "size {size}"
            );
            assert!(a.keep_alive && a.left.is_empty());
        }
        check(&[[0x10, 6].as_slice(), SSE].concat());
    }

    #[test]
    fn interim_heads_are_skipped_and_trailers_dropped() {
        let wire = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 Fine Thanks\r\n\
Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n3;x=y\r\nabc\r\n0\r\nx-t: 1\r\n\r\nNEXT";
        let a = read_answer(wire, &[5, 1, 17], false).unwrap();
        assert_eq!((a.status, a.keep_alive), (StatusCode::OK, false));
        assert_eq!((&a.body[..], &a.left[..]), (&b"abc"[..], &b"NEXT"[..]));
    }

    #[test]
    fn lengths_until_close_and_head_requests() {
        let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbodyextra";
        let a = read_answer(wire, &[3], false).unwrap();
        assert_eq!(
            (a.delimited, &a.body[..]),
            (Delimited::Length(4), &b"body"[..])
        );
        assert_eq!(&a.left[..], b"extra");
        let a = read_answer(wire, &[], true).unwrap();
        assert_eq!((a.delimited, a.body.len()), (Delimited::Empty, 0));
        let a = read_answer(b"HTTP/1.0 200 OK\r\n\r\nall of it", &[2], false).unwrap();
        assert_eq!(
            (a.delimited, &a.body[..]),
            (Delimited::UntilClose, &b"all of it"[..])
        );
        assert!(!a.keep_alive);
    }

    #[test]
    fn broken_answers_are_errors() {
        for (wire, want) in [
            (&b""[..], "closed before the answer head"),
            (
                &b"HTTP/1.1 200 OK\r\nContent-Len"[..],
                "closed before the answer head",
            ),
            (&b"SSH-2.0-OpenSSH_9.6\r\n\r\n"[..], "not HTTP/1.x"),
            (
                &b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"[..],
                "\"-1\"",
            ),
            (
                &b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort"[..],
                "closed the connection",
            ),
            (
                &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n"[..],
                "\"xyz\"",
            ),
            (
                &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"[..],
                "closed the connection",
            ),
        ] {
            let e = read_answer(wire, &[4], false).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn fuzz_layout_runs_both_modes() {
        // A valid chunked answer built from two chunks ("hi", "abc"), trailers and a next
        // answer, read in 1- and 3-byte reads.
        check(&[
            0x22,
            0,
            2,
            0b0111_0100,
            2,
            0b11,
            b'h',
            b'i',
            3,
            0b11100,
            b'a',
            b'b',
            b'c',
        ]);
        check(&[]);
        check(&[0xf0]);
    }
}
