//! The proxy's own HTTP/1.1 client for measured requests.
//!
//! A measured request's body is already read whole, so it is sent in one go on a pooled
//! keep-alive connection, and the answer is read by the task that serves the client's
//! connection: no connection task, no channel and no cross-task wake-up per chunk (hyper's
//! pooled client hands every chunk from its connection task to the caller's). Each read takes
//! whatever has arrived, so chunks that arrived together leave as one frame, as nginx does.
//! A connection goes back to the pool only after its answer ended cleanly; dropping the body
//! (the client went away) closes it, which makes the engine stop generating.

mod body;
mod chunked;
#[doc(hidden)]
pub mod fuzzing;

use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use hyper::header::{
    HeaderMap, HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING,
};
use hyper::{Method, StatusCode, Version};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

pub(crate) use body::UpstreamBody;
use chunked::{Chunk, Framing};

/// Largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Most headers in a response head.
const MAX_HEADERS: usize = 128;
/// Idle connections older than this are not reused: llama-server and uvicorn close idle
/// keep-alive connections after 5 s, and one reused just as it closes fails the request.
const MAX_IDLE: Duration = Duration::from_secs(4);
/// Read buffer growth step.
const READ_CHUNK: usize = 16 * 1024;

/// Why a request got no answer head.
#[derive(Debug)]
pub(crate) enum SendError {
    /// No connection could be made.
    Connect(io::Error),
    /// The connection broke, or the answer head was not HTTP.
    Failed(String),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Connect(e) => write!(f, "cannot connect: {e}"),
            SendError::Failed(s) => f.write_str(s),
        }
    }
}

/// Keep-alive connections to one upstream.
pub(crate) struct Pool {
    /// `host:port` to connect to.
    addr: String,
    idle: Mutex<Vec<(TcpStream, Instant)>>,
    max_idle: usize,
    connect_timeout: Duration,
}

impl Pool {
    /// A pool for `authority` (`host[:port]`, port 80 when absent).
    pub(crate) fn new(authority: &str, max_idle: usize, connect_timeout: Duration) -> Arc<Pool> {
        let has_port = match authority.strip_prefix('[') {
            Some(v6) => v6.contains("]:"),
            None => authority.contains(':'),
        };
        Arc::new(Pool {
            addr: if has_port {
                authority.to_string()
            } else {
                format!("{authority}:80")
            },
            idle: Mutex::new(Vec::new()),
            max_idle,
            connect_timeout,
        })
    }

    /// A live idle connection, if one is left.
    fn take_idle(&self) -> Option<TcpStream> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some((s, since)) = idle.pop() {
            if since.elapsed() > MAX_IDLE {
                continue;
            }
            // An idle connection has nothing to read: EOF means the upstream closed it,
            // bytes mean it is out of step. Only "would block" is a live one.
            let mut probe = [0u8; 1];
            match s.try_read(&mut probe) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Some(s),
                _ => continue,
            }
        }
        None
    }

    /// Returns a connection whose answer ended cleanly.
    pub(crate) fn put_back(&self, s: TcpStream) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.max_idle {
            idle.push((s, Instant::now()));
        }
    }

    async fn connect(&self) -> Result<TcpStream, SendError> {
        let s = tokio::time::timeout(self.connect_timeout, TcpStream::connect(&self.addr))
            .await
            .map_err(|_| {
                SendError::Connect(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "no connection to {} within {} s",
                        self.addr,
                        self.connect_timeout.as_secs_f64()
                    ),
                ))
            })?
            .map_err(SendError::Connect)?;
        let _ = s.set_nodelay(true);
        Ok(s)
    }
}

/// A request to send: its head fields and whole body.
pub(crate) struct Outgoing<'a> {
    pub method: &'a Method,
    /// Path and query.
    pub target: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a Bytes,
}

/// An answer head, with the body still to read.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: UpstreamBody,
}

/// Sends `req` and reads the answer head. A reused connection that fails before any byte of
/// an answer arrived (the upstream closed it while idle) is retried once on a new one.
pub(crate) async fn send(pool: &Arc<Pool>, req: &Outgoing<'_>) -> Result<Answer, SendError> {
    let wire = serialise(req);
    if let Some(s) = pool.take_idle() {
        match exchange(s, &wire, req.body).await {
            Ok((s, head)) => return answer(pool, s, head, req.method),
            Err(Exchange::Nothing(_)) => {}
            Err(Exchange::Broken(e)) => return Err(SendError::Failed(e)),
        }
    }
    let s = pool.connect().await?;
    match exchange(s, &wire, req.body).await {
        Ok((s, head)) => answer(pool, s, head, req.method),
        Err(Exchange::Nothing(e) | Exchange::Broken(e)) => Err(SendError::Failed(e)),
    }
}

/// Request line and headers (the body is written after them).
fn serialise(req: &Outgoing<'_>) -> Vec<u8> {
    let mut w = Vec::with_capacity(256 + req.headers.len() * 48);
    w.extend_from_slice(req.method.as_str().as_bytes());
    w.push(b' ');
    w.extend_from_slice(req.target.as_bytes());
    w.extend_from_slice(b" HTTP/1.1\r\n");
    for (k, v) in req.headers {
        w.extend_from_slice(k.as_str().as_bytes());
        w.extend_from_slice(b": ");
        w.extend_from_slice(v.as_bytes());
        w.extend_from_slice(b"\r\n");
    }
    w.extend_from_slice(b"\r\n");
    w
}

/// How an exchange failed.
enum Exchange {
    /// Before any byte of an answer: safe to retry on a new connection.
    Nothing(String),
    /// After part of an answer.
    Broken(String),
}

/// A parsed head and the bytes read past it.
#[derive(Debug)]
struct Head {
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    rest: BytesMut,
}

async fn exchange(
    mut s: TcpStream,
    head: &[u8],
    body: &Bytes,
) -> Result<(TcpStream, Head), Exchange> {
    let write = async {
        if body.len() <= 64 * 1024 {
            let mut one = Vec::with_capacity(head.len() + body.len());
            one.extend_from_slice(head);
            one.extend_from_slice(body);
            s.write_all(&one).await
        } else {
            s.write_all(head).await?;
            s.write_all(body).await
        }
    };
    write
        .await
        .map_err(|e| Exchange::Nothing(format!("sending the request failed: {e}")))?;
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut got_any = false;
    let fail = |got_any: bool, msg: String| {
        if got_any {
            Exchange::Broken(msg)
        } else {
            Exchange::Nothing(msg)
        }
    };
    loop {
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(READ_CHUNK);
        }
        s.readable()
            .await
            .map_err(|e| fail(got_any, format!("reading the answer failed: {e}")))?;
        match s.try_read_buf(&mut buf) {
            Ok(0) => {
                return Err(fail(
                    got_any,
                    if got_any {
                        "the upstream closed the connection inside the answer head".into()
                    } else {
                        "the upstream closed the connection before answering".into()
                    },
                ))
            }
            Ok(_) => got_any = true,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(fail(got_any, format!("reading the answer failed: {e}"))),
        }
        match next_head(&mut buf) {
            Ok(Some(h)) => return Ok((s, h)),
            Ok(None) => {}
            Err(e) => return Err(Exchange::Broken(e)),
        }
    }
}

/// The answer head in the bytes read so far, past any interim (1xx) heads, which are
/// dropped from `buf`; `None` while it is incomplete.
///
/// # Errors
///
/// A head that is not HTTP/1.x, or more than [`MAX_HEAD`] bytes read without a complete head.
fn next_head(buf: &mut BytesMut) -> Result<Option<Head>, String> {
    while let Some(h) = parse_head(buf)? {
        // 100 Continue and the like: the real head follows.
        if h.status.is_informational() && h.status != StatusCode::SWITCHING_PROTOCOLS {
            *buf = h.rest;
        } else {
            return Ok(Some(h));
        }
    }
    if buf.len() > MAX_HEAD {
        return Err(format!("answer head larger than {} KiB", MAX_HEAD / 1024));
    }
    Ok(None)
}

/// Parses a complete head off the front of `buf`; `None` while incomplete.
fn parse_head(buf: &mut BytesMut) -> Result<Option<Head>, String> {
    let mut raw = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut r = httparse::Response::new(&mut raw);
    let n = match r.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => {
            return Err(format!(
                "the upstream's answer is not HTTP/1.x ({e}): {:?}",
                String::from_utf8_lossy(&buf[..buf.len().min(60)])
            ))
        }
    };
    let status = r
        .code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or("the upstream's answer has no valid status code")?;
    let version = if r.version == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let mut headers = HeaderMap::with_capacity(r.headers.len());
    for h in r.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| format!("bad header name {:?} in the upstream's answer", h.name))?;
        let value = HeaderValue::from_bytes(h.value)
            .map_err(|_| format!("bad value of header {} in the upstream's answer", h.name))?;
        headers.append(name, value);
    }
    let rest = buf.split_off(n);
    Ok(Some(Head {
        status,
        version,
        headers,
        rest,
    }))
}

/// How the body of an answer to `method` with this head is framed (RFC 9112 §6.3).
fn framing(method: &Method, status: StatusCode, headers: &HeaderMap) -> Result<Framing, String> {
    if method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok(Framing::Done);
    }
    if let Some(te) = headers.get_all(TRANSFER_ENCODING).iter().next_back() {
        let last = te
            .to_str()
            .unwrap_or("")
            .rsplit(',')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        return Ok(if last == "chunked" {
            Framing::Chunked(Chunk::Size)
        } else {
            Framing::UntilClose
        });
    }
    match headers.get(CONTENT_LENGTH) {
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(|n| {
                if n == 0 {
                    Framing::Done
                } else {
                    Framing::Length(n)
                }
            })
            .ok_or_else(|| format!("the upstream sent Content-Length {v:?}, not a number")),
        None => Ok(Framing::UntilClose),
    }
}

/// Whether the upstream closes the connection after this answer (HTTP/1.0, or
/// `Connection: close`), so it cannot go back to the pool.
fn closes(head: &Head) -> bool {
    head.version == Version::HTTP_10
        || head
            .headers
            .get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("close"))
}

fn answer(
    pool: &Arc<Pool>,
    s: TcpStream,
    head: Head,
    method: &Method,
) -> Result<Answer, SendError> {
    let close = closes(&head);
    let framing = framing(method, head.status, &head.headers).map_err(SendError::Failed)?;
    let body = UpstreamBody::new(s, head.rest, framing, (!close).then(|| pool.clone()));
    Ok(Answer {
        status: head.status,
        headers: head.headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn heads_parse_and_keep_what_follows() {
        let mut b = BytesMut::from(
            &b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"[..],
        );
        let h = parse_head(&mut b).unwrap().unwrap();
        assert_eq!(h.status, StatusCode::OK);
        assert_eq!(&h.rest[..], b"5\r\nhel");
        assert!(matches!(
            framing(&Method::POST, h.status, &h.headers).unwrap(),
            Framing::Chunked(_)
        ));
        let mut partial = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-"[..]);
        assert!(parse_head(&mut partial).unwrap().is_none());
        let mut junk = BytesMut::from(&b"SSH-2.0-OpenSSH\r\n\r\n"[..]);
        assert!(parse_head(&mut junk).unwrap_err().contains("not HTTP"));
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let h = |pairs: &[(&str, &str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.append(
                    HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                );
            }
            m
        };
        let ok = StatusCode::OK;
        assert_eq!(
            framing(&Method::POST, ok, &h(&[("content-length", "12")])).unwrap(),
            Framing::Length(12)
        );
        assert_eq!(
            framing(&Method::POST, ok, &h(&[("content-length", "0")])).unwrap(),
            Framing::Done
        );
        assert_eq!(
            framing(&Method::HEAD, ok, &h(&[("content-length", "12")])).unwrap(),
            Framing::Done
        );
        assert_eq!(
            framing(&Method::POST, StatusCode::NO_CONTENT, &h(&[])).unwrap(),
            Framing::Done
        );
        assert_eq!(
            framing(&Method::POST, ok, &h(&[])).unwrap(),
            Framing::UntilClose
        );
        // Transfer-Encoding wins over Content-Length; chunked must be the last coding.
        assert_eq!(
            framing(
                &Method::POST,
                ok,
                &h(&[
                    ("transfer-encoding", "gzip, chunked"),
                    ("content-length", "3")
                ])
            )
            .unwrap(),
            Framing::Chunked(Chunk::Size)
        );
        assert_eq!(
            framing(&Method::POST, ok, &h(&[("transfer-encoding", "gzip")])).unwrap(),
            Framing::UntilClose
        );
        assert!(framing(&Method::POST, ok, &h(&[("content-length", "x")]))
            .unwrap_err()
            .contains("\"x\""));
    }

    #[test]
    fn requests_serialise_with_their_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("h:1"));
        headers.insert("content-length", HeaderValue::from_static("2"));
        let body = Bytes::from_static(b"{}");
        let w = serialise(&Outgoing {
            method: &Method::POST,
            target: "/v1/chat/completions?x=1",
            headers: &headers,
            body: &body,
        });
        assert_eq!(
            String::from_utf8(w).unwrap(),
            "POST /v1/chat/completions?x=1 HTTP/1.1\r\nhost: h:1\r\ncontent-length: 2\r\n\r\n"
        );
    }

    #[test]
    fn authorities_get_a_default_port() {
        let d = Duration::from_secs(1);
        assert_eq!(Pool::new("box", 1, d).addr, "box:80");
        assert_eq!(Pool::new("box:11434", 1, d).addr, "box:11434");
        assert_eq!(Pool::new("[::1]", 1, d).addr, "[::1]:80");
        assert_eq!(Pool::new("[::1]:8080", 1, d).addr, "[::1]:8080");
    }
}
