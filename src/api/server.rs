//! The HTTP/1.1 server: an accept loop that serves each connection with hyper. On shutdown it
//! stops accepting and asks every connection to finish: an idle one (or one still sending a
//! request's headers) closes at once, a request still sending its body is answered "shutting
//! down" (see `body::read`), and only requests already being handled (records being made
//! durable) are waited for, so a stalled client cannot hold the drain.
//!
//! hyper answers a request it cannot parse itself (a garbage request line, a bad
//! Content-Length, oversized headers) with a bare status line; `Shaped` turns that answer into
//! an AWS-shaped error like every other answer of the API.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use bytes::BytesMut;

use super::error::{AwsError, REQUEST_ID_HEADER};
use super::framing::{Framing, Verdict};

/// How long a client may take to send a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `router` on `listener` until `stop` turns true; then returns once every connection has
/// finished (the caller bounds that wait with the drain deadline).
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    stop: watch::Receiver<bool>,
) -> io::Result<()> {
    let mut connections = JoinSet::new();
    let mut stopping = stop.clone();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopping.wait_for(|s| *s) => break,
        };
        match accepted {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                connections.spawn(connection(stream, router.clone(), stop.clone()));
            }
            // Out of file descriptors, or a connection reset before it was accepted: the loop
            // goes on (a short pause, so a descriptor shortage does not spin).
            Err(e) => {
                tracing::debug!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// One connection, to its end or, after `stop`, to the end of the request being handled.
async fn connection(stream: TcpStream, router: Router, mut stop: watch::Receiver<bool>) {
    let service = TowerToHyperService::new(router);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let conn = builder.serve_connection(TokioIo::new(Shaped::new(stream)), service);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = stop.wait_for(|s| *s) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

/// A connection's stream: requests' framing checked before hyper reads them (`framing`), and
/// hyper's own error answers replaced by AWS-shaped ones.
struct Shaped<S> {
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
}

/// Bytes read from the client at a time.
const READ_CHUNK: usize = 16 * 1024;
/// What hyper is handed in place of a refused request: a request line it cannot parse.
const REFUSED_HEAD: &[u8] = b"REFUSED\r\n\r\n";

impl<S> Shaped<S> {
    fn new(inner: S) -> Self {
        Shaped {
            inner,
            framing: Framing::new(),
            input: BytesMut::new(),
            checked: BytesMut::new(),
            eof: false,
            refused: None,
            pending: None,
            replaced: false,
        }
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
        408 => "The request's headers did not arrive in time",
        _ => "The request is not valid HTTP/1.1 (its request line, a header or its Content-Length)",
    };
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
            this.input.reserve(READ_CHUNK);
            match tokio_util::io::poll_read_buf(Pin::new(&mut this.inner), cx, &mut this.input) {
                Poll::Ready(Ok(0)) => this.eof = true,
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Shaped<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
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
}
