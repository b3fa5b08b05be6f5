//! A connection's byte stream as hyper sees it. Every request's framing is checked before
//! hyper reads it (`framing`); a body's bytes, once its head is checked, are only counted, and
//! read from the socket straight into hyper's buffer (a body was copied twice more here, a
//! fifth of the acknowledgement path's instructions: BENCHMARKS.md); a client gets
//! `header_timeout` to send a request's headers and `idle_timeout` between requests (a
//! slowloris holds nothing for long); and hyper's own error answers (a garbage request line, a
//! bad Content-Length, oversized headers: hyper writes a bare status line) are replaced by
//! AWS-shaped ones like every other answer of the API.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::error::{AwsError, REQUEST_ID_HEADER};
use super::framing::{Framing, Verdict};

/// The read-side time limits of a connection.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timeouts {
    /// From a request's first byte to the end of its headers.
    pub(super) header: Duration,
    /// Between requests of a kept-alive connection (and before the first).
    pub(super) idle: Duration,
}

const HEADERS_LATE: &str = "The request's headers did not arrive in time";

/// A connection's stream: requests' framing checked before hyper reads them (`framing`), and
/// hyper's own error answers replaced by AWS-shaped ones.
pub(super) struct Shaped<S> {
    inner: S,
    framing: Framing,
    /// Bytes read from the client, not yet checked.
    input: BytesMut,
    /// Bytes checked, for hyper to read.
    checked: BytesMut,
    /// The client closed its side.
    eof: bool,
    /// Why the request being read is refused: hyper is handed a request line it refuses, and
    /// its answer is replaced by one with this message.
    refused: Option<&'static str>,
    /// A replacement answer still being written, and how much of it is written.
    pending: Option<(Vec<u8>, usize)>,
    /// hyper's own answer was replaced: what it writes after it is dropped (it closes next).
    replaced: bool,
    timeouts: Timeouts,
    /// When the current wait for a head (or for the next request) times out.
    timer: Pin<Box<Sleep>>,
    /// Whether `timer` runs for a head already begun (header timeout) or for idleness.
    timing_head: bool,
    /// Requests of this connection being handled: no clock runs while one is (a flush may
    /// wait on a slow destination; hyper ends the request if the read side ends under it).
    busy: Busy,
}

/// Requests of a connection being handled (counted by the server's service).
#[derive(Debug, Clone, Default)]
pub(super) struct Busy(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Busy {
    /// One request is being handled until the guard is dropped.
    pub(super) fn enter(&self) -> BusyGuard {
        self.0.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        BusyGuard(self.0.clone())
    }

    fn any(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Acquire) > 0
    }
}

/// See `Busy::enter`.
pub(super) struct BusyGuard(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// Bytes read from the client at a time.
const READ_CHUNK: usize = 16 * 1024;
/// What hyper is handed in place of a refused request: a request line it cannot parse.
const REFUSED_HEAD: &[u8] = b"REFUSED\r\n\r\n";

impl<S> Shaped<S> {
    pub(super) fn new(inner: S, timeouts: Timeouts, busy: Busy) -> Self {
        Shaped {
            inner,
            framing: Framing::new(),
            input: BytesMut::new(),
            checked: BytesMut::new(),
            eof: false,
            refused: None,
            pending: None,
            replaced: false,
            timeouts,
            timer: Box::pin(tokio::time::sleep(timeouts.idle)),
            timing_head: false,
            busy,
        }
    }

    /// Something happened on the connection: the idle clock starts again.
    fn active(&mut self) {
        if !self.timing_head {
            let at = Instant::now() + self.timeouts.idle;
            self.timer.as_mut().reset(at);
        }
    }

    /// Before waiting for bytes: the clock that applies (a head begun: its header timeout,
    /// counted from its first byte; between requests: the idle timeout). Ready when it ran out.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.busy.any() {
            // Its answer, when written, starts the idle clock again (`active`).
            return Poll::Pending;
        }
        let in_head = self.framing.in_head();
        let head_begun = in_head && !self.input.is_empty();
        if head_begun && !self.timing_head {
            self.timing_head = true;
            let at = Instant::now() + self.timeouts.header;
            self.timer.as_mut().reset(at);
        } else if !head_begun && self.timing_head {
            self.timing_head = false;
            let at = Instant::now() + self.timeouts.idle;
            self.timer.as_mut().reset(at);
        }
        if !in_head {
            // A body being sent: its time is `body::read`'s to judge.
            return Poll::Pending;
        }
        self.timer.as_mut().poll(cx)
    }
}

/// When `head` is an error answer hyper made itself (a 4xx or 5xx status without the request id
/// every handler's answer carries), the AWS-shaped answer to write instead.
fn replacement(head: &[u8], refused: Option<&'static str>) -> Option<Vec<u8>> {
    let rest = head.strip_prefix(b"HTTP/1.1 ")?;
    let status: u16 = std::str::from_utf8(rest.get(..3)?).ok()?.parse().ok()?;
    if status < 400 {
        return None;
    }
    let end = head
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(head.len());
    let lower = head[..end].to_ascii_lowercase();
    if lower
        .windows(REQUEST_ID_HEADER.len())
        .any(|w| w == REQUEST_ID_HEADER.as_bytes())
    {
        return None;
    }
    let message = match status {
        _ if refused.is_some() => refused.unwrap_or_default(),
        431 => "The request's headers are too large",
        414 => "The request's URI is too long",
        408 => HEADERS_LATE,
        _ => "The request is not valid HTTP/1.1 (its request line, a header or its Content-Length)",
    };
    if message == HEADERS_LATE {
        return Some(AwsError::request_timeout(message).raw_response());
    }
    let status = axum::http::StatusCode::from_u16(status).ok()?;
    let error = AwsError::bad_request(message).with_status(status);
    Some(error.raw_response())
}

impl<S: AsyncWrite + Unpin> Shaped<S> {
    /// Writes what is left of the replacement answer; Ready(Ok) once it is all written.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, done)) = self.pending.as_mut() {
            match Pin::new(&mut self.inner).poll_write(cx, &bytes[*done..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    *done += n;
                    if *done == bytes.len() {
                        self.pending = None;
                    }
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Shaped<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if !this.checked.is_empty() {
                let n = this.checked.len().min(buf.remaining());
                buf.put_slice(&this.checked.split_to(n));
                return Poll::Ready(Ok(()));
            }
            if this.refused.is_some() || this.eof {
                // The end of what hyper gets: after a refusal, or when the client closed its
                // side (an unfinished request it left is dropped: hyper sees the end).
                return Poll::Ready(Ok(()));
            }
            // (hyper never asks with a full buffer; if it did, bytes go the checked way.)
            let body = this.framing.body_left().filter(|_| buf.remaining() > 0);
            if let Some(left) = body
                && !this.input.is_empty()
            {
                // Body bytes already read go to hyper as they are, once.
                let n = (left.min(this.input.len() as u64) as usize).min(buf.remaining());
                buf.put_slice(&this.input.split_to(n));
                this.framing.passed(n as u64);
                return Poll::Ready(Ok(()));
            }
            if !this.input.is_empty() {
                if let Verdict::Refuse(why) = this.framing.feed(&mut this.input, &mut this.checked)
                {
                    this.refused = Some(why);
                    this.checked.extend_from_slice(REFUSED_HEAD);
                }
                if !this.checked.is_empty() {
                    continue;
                }
            }
            let read = match body {
                // The rest of a body: read from the socket into hyper's buffer, no copy.
                Some(left) => poll_read_at_most(Pin::new(&mut this.inner), cx, buf, left),
                None => {
                    this.input.reserve(READ_CHUNK);
                    tokio_util::io::poll_read_buf(Pin::new(&mut this.inner), cx, &mut this.input)
                }
            };
            match read {
                Poll::Ready(Ok(0)) => this.eof = true,
                Poll::Ready(Ok(n)) => {
                    this.active();
                    if body.is_some() {
                        this.framing.passed(n as u64);
                        return Poll::Ready(Ok(()));
                    }
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    if this.poll_deadline(cx).is_pending() {
                        return Poll::Pending;
                    }
                    crate::metrics::SERVER.connections_timed_out.add(1);
                    if this.input.is_empty() {
                        // Idle too long: the connection ends quietly.
                        this.eof = true;
                    } else {
                        this.refused = Some(HEADERS_LATE);
                        this.input.clear();
                        this.checked.extend_from_slice(REFUSED_HEAD);
                    }
                }
            }
        }
    }
}

/// Reads at most `limit` bytes from `inner` into `buf`, as tokio's `Take` does; how many.
fn poll_read_at_most<S: AsyncRead + Unpin>(
    inner: Pin<&mut S>,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
    limit: u64,
) -> Poll<io::Result<usize>> {
    let limit = usize::try_from(limit)
        .unwrap_or(usize::MAX)
        .min(buf.remaining());
    let mut part = buf.take(limit);
    let start = part.filled().as_ptr();
    match inner.poll_read(cx, &mut part) {
        Poll::Ready(Ok(())) => {
            // A reader may only fill the buffer it was given, never swap in another (tokio's
            // `Take` asserts the same before trusting what was filled).
            if part.filled().as_ptr() != start {
                return Poll::Ready(Err(io::Error::other("a reader replaced its read buffer")));
            }
            let n = part.filled().len();
            // SAFETY: the read filled (so initialized) these `n` bytes at the start of `part`,
            // which is `buf`'s unfilled part (the same memory: checked above), and `n` is at
            // most `part`'s capacity, at most `buf.remaining()`.
            unsafe { buf.assume_init(n) };
            buf.advance(n);
            Poll::Ready(Ok(n))
        }
        Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        Poll::Pending => Poll::Pending,
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Shaped<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        this.active();
        if this.pending.is_some() || this.replaced {
            // hyper's own bytes after its error head: dropped, once the replacement is out.
            return match this.poll_pending(cx) {
                Poll::Ready(Ok(())) => Poll::Ready(Ok(buf.len())),
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            };
        }
        if let Some(answer) = replacement(buf, this.refused) {
            this.pending = Some((answer, 0));
            this.replaced = true;
            return match this.poll_pending(cx) {
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                // Taken: the rest of the replacement goes out with the next write or flush.
                _ => Poll::Ready(Ok(buf.len())),
            };
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match this.poll_pending(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.inner).poll_flush(cx),
            other => other,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match this.poll_pending(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.inner).poll_shutdown(cx),
            other => other,
        }
    }

    // Not vectored: hyper then writes a response's head in one buffer, which `replacement`
    // looks at.
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_own_error_answers_are_replaced() {
        let hyper = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let answer = String::from_utf8(replacement(hyper, None).expect("replaced")).expect("text");
        assert!(
            answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{answer}"
        );
        assert!(answer.contains("x-amzn-requestid: "), "{answer}");
        assert!(answer.contains("connection: close"), "{answer}");
        let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{answer}"
        );
        let v: serde_json::Value = serde_json::from_str(body).expect("JSON");
        assert_eq!(v["__type"], "BadRequestException");
        let ours = b"HTTP/1.1 400 Bad Request\r\nx-amzn-requestid: abc\r\n\r\n{}";
        assert_eq!(replacement(ours, None), None, "a handler's answer stays");
        assert_eq!(replacement(b"HTTP/1.1 100 Continue\r\n\r\n", None), None);
        assert_eq!(replacement(b"HTTP/1.1 200 OK\r\n\r\n", None), None);
        assert_eq!(replacement(b"some body bytes", None), None);
        let big = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n";
        assert!(replacement(big, None).is_some());
    }

    /// Everything a client sends reaches hyper's side once, in order, whether a body's bytes
    /// came with its head (checked) or after it (passed straight from the socket), whatever
    /// the sizes of the client's writes and hyper's reads; a smuggling attempt after a long
    /// body is still seen and refused.
    #[tokio::test]
    async fn bodies_pass_straight_through_and_framing_is_still_followed() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let body = vec![b'b'; 300_000];
        let mut stream =
            format!("POST /a HTTP/1.1\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        stream.extend_from_slice(&body);
        stream.extend_from_slice(b"POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
        stream.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
        stream.extend_from_slice(&body);
        stream.extend_from_slice(b"\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n");
        let timeouts = Timeouts {
            header: Duration::from_secs(30),
            idle: Duration::from_secs(30),
        };
        for (write, read) in [(7, 5), (1000, 65_536), (65_536, 8_192), (300_123, 1)] {
            let (mut client, server) = tokio::io::duplex(64 * 1024);
            let sent = stream.clone();
            let writer = tokio::spawn(async move {
                for piece in sent.chunks(write) {
                    client.write_all(piece).await.expect("writes");
                }
            });
            let mut shaped = Shaped::new(server, timeouts, Busy::default());
            let mut got = Vec::new();
            let mut buf = vec![0u8; read];
            while got.len() < stream.len() {
                let n = shaped.read(&mut buf).await.expect("reads");
                assert!(n > 0, "no end before everything arrived");
                got.extend_from_slice(&buf[..n]);
            }
            assert!(got == stream, "every byte once, in order ({write}/{read})");
            assert!(shaped.framing.in_head(), "between requests");
            writer.await.expect("writer");
        }
        // After a long body, a request with both lengths is refused: hyper gets the refusal's
        // request line, not the request.
        let mut smuggled = stream.clone();
        smuggled.extend_from_slice(
            b"POST /c HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        );
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let writer = tokio::spawn(async move {
            client.write_all(&smuggled).await.expect("writes");
        });
        let mut shaped = Shaped::new(server, timeouts, Busy::default());
        let mut got = Vec::new();
        shaped.read_to_end(&mut got).await.expect("reads");
        assert!(got.starts_with(&stream), "the requests before it pass");
        assert_eq!(&got[stream.len()..], REFUSED_HEAD);
        assert!(shaped.refused.is_some_and(|why| why.contains("ambiguous")));
        writer.await.expect("writer");
    }
}
