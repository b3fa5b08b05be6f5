//! Request framing, watched on the bytes before hyper reads them. hyper settles a request that
//! has both Content-Length and Transfer-Encoding by using the chunked body (RFC 9112 section
//! 6.1 allows that), but a proxy in front of firehosed may have used the length: the two then
//! disagree on where the next request starts (request smuggling). RFC 9112 section 6.3 lets a
//! server refuse such a request instead, and firehosed does. To see every request's head, not
//! only a connection's first, this follows each request's body to its end: a length, or the
//! chunks up to the last one and its trailer.
//!
//! What it cannot follow (a head that does not parse, one too large, a malformed chunk) is
//! passed through as it is: hyper then answers 400 and closes the connection.

use bytes::BytesMut;

/// The largest request head followed; a larger one goes to hyper as it is (hyper refuses it).
const MAX_HEAD: usize = 64 * 1024;
/// The longest chunk-size line (with extensions) or trailer line followed.
const MAX_LINE: usize = 4096;
/// Headers one request head may have for it to be followed.
const MAX_HEADERS: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Collecting a request head (held back until it is whole and checked).
    Head,
    /// This many bytes of a body with a Content-Length are still to come.
    Body(u64),
    /// A chunk-size line is next.
    ChunkSize,
    /// This many bytes of chunk data, then its CRLF.
    ChunkData(u64),
    ChunkEnd,
    /// Trailer lines after the last chunk, up to an empty line.
    Trailer,
    /// No longer followed: everything goes through.
    Through,
}

/// What `feed` found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Bytes were released (or more are needed); go on.
    Go,
    /// The request must be refused with this message; nothing more goes to hyper.
    Refuse(&'static str),
}

/// Follows the requests of one connection.
#[derive(Debug)]
pub(crate) struct Framing {
    state: State,
}

impl Framing {
    pub(crate) fn new() -> Self {
        Framing { state: State::Head }
    }

    /// `n` bytes of a body of known length went to hyper.
    fn passed(&mut self, n: u64) {
        if let State::Body(left) = self.state {
            let left = left.saturating_sub(n);
            self.state = if left == 0 {
                State::Head
            } else {
                State::Body(left)
            };
        }
    }

    /// Moves what is checked from `input` to `out` (for hyper); keeps what is not yet whole.
    /// `eof`: no more bytes will come (a partial head is then let through for hyper to refuse).
    pub(crate) fn feed(&mut self, input: &mut BytesMut, out: &mut BytesMut, eof: bool) -> Verdict {
        loop {
            let (before, state_before) = (input.len(), self.state.clone());
            match self.state {
                State::Through => {
                    out.extend_from_slice(&input.split());
                    return Verdict::Go;
                }
                State::Head => {
                    if let Verdict::Refuse(why) = self.head(input, out, eof) {
                        return Verdict::Refuse(why);
                    }
                }
                State::Body(n) => {
                    let take = (n.min(input.len() as u64)) as usize;
                    out.extend_from_slice(&input.split_to(take));
                    self.passed(take as u64);
                }
                State::ChunkData(n) => {
                    let take = (n.min(input.len() as u64)) as usize;
                    out.extend_from_slice(&input.split_to(take));
                    let left = n - take as u64;
                    self.state = if left == 0 {
                        State::ChunkEnd
                    } else {
                        State::ChunkData(left)
                    };
                }
                State::ChunkSize | State::ChunkEnd | State::Trailer => self.chunk_line(input, out),
            }
            let progressed = input.len() != before || self.state != state_before;
            if input.is_empty() || !progressed {
                return Verdict::Go;
            }
        }
    }

    /// A request head: held until whole, then checked and released; its framing decides what
    /// follows.
    fn head(&mut self, input: &mut BytesMut, out: &mut BytesMut, eof: bool) -> Verdict {
        // Empty lines before a request line are allowed (RFC 9112 section 2.2).
        while input.starts_with(b"\r\n") {
            out.extend_from_slice(&input.split_to(2));
        }
        let Some(end) = find(input, b"\r\n\r\n").map(|i| i + 4) else {
            if input.len() > MAX_HEAD || eof {
                self.state = State::Through;
            }
            return Verdict::Go;
        };
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        let next = match request.parse(&input[..end]) {
            Ok(httparse::Status::Complete(_)) => framing_of(request.headers),
            _ => None,
        };
        match next {
            Some(Ok(state)) => self.state = state,
            Some(Err(why)) => return Verdict::Refuse(why),
            None => self.state = State::Through,
        }
        out.extend_from_slice(&input.split_to(end));
        Verdict::Go
    }

    /// A chunk-size line, the CRLF after a chunk's data, or a trailer line.
    fn chunk_line(&mut self, input: &mut BytesMut, out: &mut BytesMut) {
        let Some(end) = find(input, b"\r\n").map(|i| i + 2) else {
            if input.len() > MAX_LINE {
                self.state = State::Through;
            }
            return;
        };
        let line = &input[..end - 2];
        self.state = match self.state {
            State::ChunkEnd if line.is_empty() => State::ChunkSize,
            State::ChunkSize => match chunk_size(line) {
                Some(0) => State::Trailer,
                Some(n) => State::ChunkData(n),
                None => State::Through,
            },
            State::Trailer if line.is_empty() => State::Head,
            State::Trailer => State::Trailer,
            _ => State::Through,
        };
        out.extend_from_slice(&input.split_to(end));
    }
}

/// What follows a head with these headers: its body's framing, or why it is refused; None
/// when the framing is not understood here (hyper decides).
fn framing_of(headers: &[httparse::Header<'_>]) -> Option<Result<State, &'static str>> {
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut encoded = false;
    for h in headers {
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value).ok()?.trim().parse().ok()?;
            if length.is_some_and(|l| l != n) {
                return None;
            }
            length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            encoded = true;
            let value = std::str::from_utf8(h.value).ok()?;
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        }
    }
    Some(match (length, encoded) {
        (Some(_), true) => Err(
            "The request has both Content-Length and Transfer-Encoding (ambiguous framing); send one of them",
        ),
        (_, true) if chunked => Ok(State::ChunkSize),
        (_, true) => return None,
        (Some(n), false) if n > 0 => Ok(State::Body(n)),
        (_, false) => Ok(State::Head),
    })
}

/// The size of a chunk-size line (hex, optional `;extensions`).
fn chunk_size(line: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(line).ok()?;
    let hex = text.split(';').next()?.trim();
    if hex.is_empty() || hex.len() > 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `stream` in pieces of `step` bytes; returns what went to hyper and the verdict.
    fn run(stream: &[u8], step: usize) -> (Vec<u8>, Verdict) {
        let mut f = Framing::new();
        let mut input = BytesMut::new();
        let mut out = BytesMut::new();
        for piece in stream.chunks(step) {
            input.extend_from_slice(piece);
            if let Verdict::Refuse(why) = f.feed(&mut input, &mut out, false) {
                return (out.to_vec(), Verdict::Refuse(why));
            }
        }
        let v = f.feed(&mut input, &mut out, true);
        (out.to_vec(), v)
    }

    #[test]
    fn pipelined_requests_of_every_framing_go_through_whole_at_any_split() {
        let stream: &[u8] = b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /healthz HTTP/1.1\r\n\r\n\r\nPOST /v1/streams/s/records HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nX-T: 1\r\n\r\nGET /metrics HTTP/1.1\r\n\r\n";
        for step in [1, 2, 3, 7, 16, 1000] {
            let (out, v) = run(stream, step);
            assert_eq!(v, Verdict::Go, "step {step}");
            assert_eq!(out, stream, "step {step}: every byte, in order");
        }
    }

    #[test]
    fn both_lengths_are_refused_on_any_request_of_a_connection() {
        let refused = b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        let (out, v) = run(refused, 5);
        assert!(matches!(v, Verdict::Refuse(_)), "{v:?}");
        assert!(out.is_empty(), "nothing of it reaches hyper");
        let mut second = b"GET /healthz HTTP/1.1\r\n\r\n".to_vec();
        second.extend_from_slice(refused);
        let (out, v) = run(&second, 4);
        assert!(matches!(v, Verdict::Refuse(_)));
        assert_eq!(
            out, b"GET /healthz HTTP/1.1\r\n\r\n",
            "only the first request"
        );
    }

    #[test]
    fn what_cannot_be_followed_goes_through_for_hyper_to_refuse() {
        for stream in [
            &b"GARBAGE\r\n\r\nmore"[..],
            b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\nzz",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nabc",
        ] {
            let (out, v) = run(stream, 3);
            assert_eq!(v, Verdict::Go);
            assert_eq!(out, stream, "{}", String::from_utf8_lossy(stream));
        }
        let huge = [b"GET / HTTP/1.1\r\nX: ".to_vec(), vec![b'a'; MAX_HEAD + 10]].concat();
        let (out, _) = run(&huge, 4096);
        assert_eq!(
            out, huge,
            "an oversized head goes to hyper (which answers 431)"
        );
        let (out, _) = run(b"GET / HTTP/1.1\r\nHost: x", 4);
        assert_eq!(
            out, b"GET / HTTP/1.1\r\nHost: x",
            "a cut head is let through at the end"
        );
    }
}
