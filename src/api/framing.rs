//! Request framing, watched on the bytes before hyper reads them. hyper settles a request that
//! has both Content-Length and Transfer-Encoding by using the chunked body (RFC 9112 section
//! 6.1 allows that), but a proxy in front of firehosed may have used the length: the two then
//! disagree on where the next request starts (request smuggling). RFC 9112 section 6.3 lets a
//! server refuse such a request instead, and firehosed does. To see every request's head, not
//! only a connection's first, this follows each request's body to its end: a length, or the
//! chunks up to the last one and its trailer.
//!
//! A request that cannot be followed (a head that does not parse or is too large, a framing it
//! does not know, a malformed chunk) is refused too: following stops only with the connection.

use bytes::BytesMut;

/// The largest request head (request line and headers).
const MAX_HEAD: usize = 64 * 1024;
/// The longest chunk-size line (with its extensions) or trailer line; hyper's own limit on
/// chunk extensions is 16 KiB.
const MAX_LINE: usize = 17 * 1024;
/// The most headers one request may have.
const MAX_HEADERS: usize = 128;

const NOT_HTTP: &str =
    "The request is not valid HTTP/1.1 (its request line, a header or its Content-Length)";
const TOO_LARGE: &str = "The request's headers are too large (at most 64 KiB)";
const AMBIGUOUS: &str = "The request has both Content-Length and Transfer-Encoding (ambiguous framing); send one of them";
const NOT_CHUNKED: &str = "The request's Transfer-Encoding must end with chunked";
const BAD_CHUNK: &str = "The request's chunked body is not valid";

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Collecting a request head (held back until it is whole and checked); how much of what
    /// is held has been looked at already.
    Head {
        scanned: usize,
    },
    /// This many bytes of a body with a Content-Length are still to come.
    Body(u64),
    /// A chunk-size line is next.
    ChunkSize,
    /// This many bytes of chunk data, then its CRLF.
    ChunkData(u64),
    ChunkEnd,
    /// Trailer lines after the last chunk, up to an empty line.
    Trailer,
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
        Framing {
            state: State::Head { scanned: 0 },
        }
    }

    /// Whether a request head is next (between requests, or one begun).
    pub(crate) fn in_head(&self) -> bool {
        matches!(self.state, State::Head { .. })
    }

    /// How many bytes may go to hyper as they are, unlooked at: the rest of a body with a
    /// Content-Length, or of a chunk's data (None between them). The connection passes them
    /// straight from the socket, saving two copies of every body (`shaped`).
    pub(crate) fn body_left(&self) -> Option<u64> {
        match self.state {
            State::Body(n) | State::ChunkData(n) if n > 0 => Some(n),
            _ => None,
        }
    }

    /// `n` bytes of body (at most `body_left`) went to hyper.
    pub(crate) fn passed(&mut self, n: u64) {
        self.state = match self.state {
            State::Body(left) if left > n => State::Body(left - n),
            State::Body(_) => State::Head { scanned: 0 },
            State::ChunkData(left) if left > n => State::ChunkData(left - n),
            State::ChunkData(_) => State::ChunkEnd,
            ref other => other.clone(),
        };
    }

    /// Moves what is checked from `input` to `out` (for hyper); keeps what is not yet whole
    /// (more bytes are needed). Anything that cannot be followed is a refusal.
    pub(crate) fn feed(&mut self, input: &mut BytesMut, out: &mut BytesMut) -> Verdict {
        loop {
            let (before, state_before) = (input.len(), self.state.clone());
            let step = match self.state {
                State::Head { scanned } => self.head(input, out, scanned),
                State::Body(n) | State::ChunkData(n) => {
                    let take = (n.min(input.len() as u64)) as usize;
                    out.extend_from_slice(&input.split_to(take));
                    self.passed(take as u64);
                    Verdict::Go
                }
                State::ChunkSize | State::ChunkEnd | State::Trailer => self.chunk_line(input, out),
            };
            if let Verdict::Refuse(why) = step {
                return Verdict::Refuse(why);
            }
            let progressed = input.len() != before || self.state != state_before;
            if input.is_empty() || !progressed {
                return Verdict::Go;
            }
        }
    }

    /// A request head: held until httparse finds it whole, then checked and released; its
    /// framing decides what follows. It is parsed only when a new line has arrived, so a head
    /// sent a byte at a time costs one parse per line, not per byte.
    fn head(&mut self, input: &mut BytesMut, out: &mut BytesMut, scanned: usize) -> Verdict {
        let fresh = &input[scanned.min(input.len())..];
        if !fresh.contains(&b'\n') {
            self.state = State::Head {
                scanned: input.len(),
            };
            return if input.len() > MAX_HEAD {
                Verdict::Refuse(TOO_LARGE)
            } else {
                Verdict::Go
            };
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        let end = match request.parse(input) {
            Ok(httparse::Status::Complete(end)) => end,
            Ok(httparse::Status::Partial) if input.len() <= MAX_HEAD => {
                self.state = State::Head {
                    scanned: input.len(),
                };
                return Verdict::Go;
            }
            Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
                return Verdict::Refuse(TOO_LARGE);
            }
            Err(_) => return Verdict::Refuse(NOT_HTTP),
        };
        if end > MAX_HEAD {
            return Verdict::Refuse(TOO_LARGE);
        }
        match framing_of(request.headers) {
            Ok(state) => self.state = state,
            Err(why) => return Verdict::Refuse(why),
        }
        out.extend_from_slice(&input.split_to(end));
        Verdict::Go
    }

    /// A chunk-size line, the CRLF after a chunk's data, or a trailer line.
    fn chunk_line(&mut self, input: &mut BytesMut, out: &mut BytesMut) -> Verdict {
        let Some(end) = find(input, b"\r\n").map(|i| i + 2) else {
            return if input.len() > MAX_LINE {
                Verdict::Refuse(BAD_CHUNK)
            } else {
                Verdict::Go
            };
        };
        if end > MAX_LINE {
            return Verdict::Refuse(BAD_CHUNK);
        }
        let line = &input[..end - 2];
        self.state = match self.state {
            State::ChunkEnd if line.is_empty() => State::ChunkSize,
            State::ChunkSize => match chunk_size(line) {
                Some(0) => State::Trailer,
                Some(n) => State::ChunkData(n),
                None => return Verdict::Refuse(BAD_CHUNK),
            },
            State::Trailer if line.is_empty() => State::Head { scanned: 0 },
            State::Trailer => State::Trailer,
            _ => return Verdict::Refuse(BAD_CHUNK),
        };
        out.extend_from_slice(&input.split_to(end));
        Verdict::Go
    }
}

/// What follows a head with these headers (its body's framing), or why it is refused.
fn framing_of(headers: &[httparse::Header<'_>]) -> Result<State, &'static str> {
    let mut length: Option<u64> = None;
    let mut has_length = false;
    let mut valid_length = true;
    let mut chunked = false;
    let mut encoded = false;
    for h in headers {
        if h.name.eq_ignore_ascii_case("content-length") {
            has_length = true;
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok());
            match (n, length) {
                (Some(n), None) => length = Some(n),
                (Some(n), Some(l)) if n == l => {}
                _ => valid_length = false,
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            encoded = true;
            chunked = std::str::from_utf8(h.value).is_ok_and(|value| {
                value
                    .rsplit(',')
                    .next()
                    .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
            });
        }
    }
    // Both framings present is refused whatever their values are.
    if has_length && encoded {
        return Err(AMBIGUOUS);
    }
    if encoded {
        return if chunked {
            Ok(State::ChunkSize)
        } else {
            Err(NOT_CHUNKED)
        };
    }
    match (valid_length, length) {
        (false, _) => Err(NOT_HTTP),
        (true, Some(n)) if n > 0 => Ok(State::Body(n)),
        (true, _) => Ok(State::Head { scanned: 0 }),
    }
}

/// The size of a chunk-size line (hex, optional `;extensions`).
fn chunk_size(line: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(line).ok()?;
    let hex = text
        .split(';')
        .next()?
        .trim_matches(|c| c == ' ' || c == '\t');
    let digits = hex.trim_start_matches('0');
    if hex.is_empty() || digits.len() > 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    if digits.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(digits, 16).ok()
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
            if let Verdict::Refuse(why) = f.feed(&mut input, &mut out) {
                return (out.to_vec(), Verdict::Refuse(why));
            }
        }
        (out.to_vec(), Verdict::Go)
    }

    #[test]
    fn pipelined_requests_of_every_framing_go_through_whole_at_any_split() {
        let stream: &[u8] = b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /healthz HTTP/1.1\r\n\r\n\r\nPOST /v1/streams/s/records HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0003;x=y\r\nabc\r\n0\r\nX-T: 1\r\n\r\nGET /metrics HTTP/1.1\nHost: x\n\nGET /readyz HTTP/1.1\r\n\r\n";
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
        assert_eq!(v, Verdict::Refuse(AMBIGUOUS));
        assert!(out.is_empty(), "nothing of it reaches hyper");
        let mut second = b"GET /healthz HTTP/1.1\r\n\r\n".to_vec();
        second.extend_from_slice(refused);
        let (out, v) = run(&second, 4);
        assert_eq!(v, Verdict::Refuse(AMBIGUOUS));
        assert_eq!(
            out, b"GET /healthz HTTP/1.1\r\n\r\n",
            "only the first request"
        );
        // Whatever the length says, and in either order.
        for head in [
            &b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: x\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nContent-Length: 5, 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            assert_eq!(run(head, 3).1, Verdict::Refuse(AMBIGUOUS));
        }
    }

    #[test]
    fn what_cannot_be_followed_is_refused() {
        for (stream, why) in [
            (&b"GARBAGE\r\n\r\nmore"[..], NOT_HTTP),
            (b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\nzz", NOT_HTTP),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nzz",
                NOT_HTTP,
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello",
                BAD_CHUNK,
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nabc",
                NOT_CHUNKED,
            ),
        ] {
            let (_, v) = run(stream, 3);
            assert_eq!(
                v,
                Verdict::Refuse(why),
                "{}",
                String::from_utf8_lossy(stream)
            );
        }
        let huge = [b"GET / HTTP/1.1\r\nX: ".to_vec(), vec![b'a'; MAX_HEAD + 10]].concat();
        assert_eq!(run(&huge, 4096).1, Verdict::Refuse(TOO_LARGE));
        let long_chunk = [
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;".to_vec(),
            vec![b'e'; MAX_LINE + 10],
        ]
        .concat();
        assert_eq!(run(&long_chunk, 4096).1, Verdict::Refuse(BAD_CHUNK));
    }

    #[test]
    fn a_request_cut_off_holds_its_rest_back() {
        // A head or a chunk line that never ends: nothing of the incomplete part goes to
        // hyper, and feeding more of nothing makes no progress (the caller ends the stream).
        for stream in [
            &b"GET / HTTP/1.1\r\nHost: x"[..],
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5",
        ] {
            let mut f = Framing::new();
            let mut input = BytesMut::from(stream);
            let mut out = BytesMut::new();
            assert_eq!(f.feed(&mut input, &mut out), Verdict::Go);
            let held = input.len();
            assert!(held > 0);
            assert_eq!(f.feed(&mut input, &mut out), Verdict::Go);
            assert_eq!(input.len(), held, "no progress without more bytes");
        }
    }

    #[test]
    fn chunk_sizes_allow_leading_zeros_and_refuse_overflow() {
        assert_eq!(chunk_size(b"0000000000000000000a"), Some(10));
        assert_eq!(chunk_size(b"0"), Some(0));
        assert_eq!(chunk_size(b"ff; name=value"), Some(255));
        assert_eq!(chunk_size(b"1ffffffffffffffff"), None);
        assert_eq!(chunk_size(b"x"), None);
        assert_eq!(chunk_size(b""), None);
    }
}
