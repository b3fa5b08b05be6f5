//! A strict JSON pull parser over one record (RFC 8259): strings are borrowed unless they hold
//! escapes, numbers come back as their exact text (decimals and 64-bit integers convert without
//! going through f64), and unknown values are skipped while still being checked.

use std::borrow::Cow;

/// Arrays and objects nested deeper than this are refused (a skipped value is walked with
/// recursion).
pub(crate) const MAX_DEPTH: usize = 128;

/// What the next value is, from its first character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Object,
    Array,
    String,
    Number,
    Bool,
    Null,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Object => "an object",
            Kind::Array => "an array",
            Kind::String => "a string",
            Kind::Number => "a number",
            Kind::Bool => "a boolean",
            Kind::Null => "null",
        }
    }
}

/// A JSON number's text and whether it is an integer (no fraction, no exponent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Number<'a> {
    pub(crate) text: &'a str,
    pub(crate) integer: bool,
}

/// The first position at or after `i` holding `"`, `\\` or a control character (or the end):
/// eight bytes at a time.
#[inline]
fn find_special(b: &[u8], mut i: usize) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    while let Some(chunk) = b.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        let quote = x ^ (LO * u64::from(b'"'));
        let slash = x ^ (LO * u64::from(b'\\'));
        // A zero byte in `quote`/`slash`, or a byte below 0x20 in `x`; the lowest flag is always
        // a true match (false flags only sit above one).
        let hits = ((quote.wrapping_sub(LO) & !quote)
            | (slash.wrapping_sub(LO) & !slash)
            | (x.wrapping_sub(LO * 0x20) & !x))
            & HI;
        if hits != 0 {
            return i + (hits.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&c) = b.get(i) {
        if c == b'"' || c == b'\\' || c < 0x20 {
            return i;
        }
        i += 1;
    }
    i
}

/// Where and why a record is not valid JSON (the text of its error record).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSON at byte {at}: {what}")]
pub(crate) struct JsonError {
    pub(crate) at: usize,
    pub(crate) what: Cow<'static, str>,
}

pub(crate) struct Parser<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    pub(crate) fn new(s: &'a str) -> Self {
        Parser {
            s,
            b: s.as_bytes(),
            i: 0,
        }
    }

    fn fail<T>(&self, what: impl Into<Cow<'static, str>>) -> Result<T, JsonError> {
        Err(JsonError {
            at: self.i,
            what: what.into(),
        })
    }

    pub(crate) fn skip_ws(&mut self) {
        while let Some(c) = self.b.get(self.i) {
            if matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    /// Whether only whitespace is left.
    pub(crate) fn at_end(&mut self) -> bool {
        self.skip_ws();
        self.i >= self.b.len()
    }

    /// The kind of the next value (whitespace skipped).
    pub(crate) fn peek(&mut self) -> Result<Kind, JsonError> {
        self.skip_ws();
        match self.b.get(self.i) {
            Some(b'{') => Ok(Kind::Object),
            Some(b'[') => Ok(Kind::Array),
            Some(b'"') => Ok(Kind::String),
            Some(b'-' | b'0'..=b'9') => Ok(Kind::Number),
            Some(b't' | b'f') => Ok(Kind::Bool),
            Some(b'n') => Ok(Kind::Null),
            Some(&c) => self.fail(format!("unexpected character {:?}", c as char)),
            None => self.fail("unexpected end of input"),
        }
    }

    /// Consumes `c` if it comes next.
    fn eat(&mut self, c: u8) -> bool {
        self.skip_ws();
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), JsonError> {
        if self.eat(c) {
            Ok(())
        } else if self.i >= self.b.len() {
            self.fail(format!("expected `{}`, got the end of input", c as char))
        } else {
            self.fail(format!("expected `{}`", c as char))
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), JsonError> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            self.fail("unknown literal")
        }
    }

    pub(crate) fn null(&mut self) -> Result<(), JsonError> {
        self.skip_ws();
        self.literal(b"null")
    }

    pub(crate) fn bool(&mut self) -> Result<bool, JsonError> {
        self.skip_ws();
        if self.b.get(self.i) == Some(&b't') {
            self.literal(b"true").map(|()| true)
        } else {
            self.literal(b"false").map(|()| false)
        }
    }

    pub(crate) fn number(&mut self) -> Result<Number<'a>, JsonError> {
        self.skip_ws();
        let start = self.i;
        let b = self.b;
        let mut i = self.i;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        match b.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                while b.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
            }
            _ => {
                self.i = i;
                return self.fail("a number needs digits");
            }
        }
        let mut integer = true;
        if b.get(i) == Some(&b'.') {
            integer = false;
            i += 1;
            if !b.get(i).is_some_and(u8::is_ascii_digit) {
                self.i = i;
                return self.fail("a fraction needs digits");
            }
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            integer = false;
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if !b.get(i).is_some_and(u8::is_ascii_digit) {
                self.i = i;
                return self.fail("an exponent needs digits");
            }
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        self.i = i;
        Ok(Number {
            text: &self.s[start..i],
            integer,
        })
    }

    pub(crate) fn string(&mut self) -> Result<Cow<'a, str>, JsonError> {
        self.skip_ws();
        if self.b.get(self.i) != Some(&b'"') {
            return self.fail("expected a string");
        }
        let start = self.i + 1;
        let b = self.b;
        // Unescaped runs are copied whole; `out` exists only once an escape is met.
        let mut out: Option<String> = None;
        let mut run = start;
        loop {
            let i = find_special(b, run);
            match b.get(i) {
                Some(b'"') => {
                    self.i = i + 1;
                    let tail = &self.s[run..i];
                    return Ok(match out {
                        None => Cow::Borrowed(tail),
                        Some(mut o) => {
                            o.push_str(tail);
                            Cow::Owned(o)
                        }
                    });
                }
                Some(b'\\') => {
                    let o = out.get_or_insert_with(|| String::with_capacity(i - start + 16));
                    o.push_str(&self.s[run..i]);
                    let c = match b.get(i + 1) {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            self.i = i + 2;
                            let c = self.unicode_escape()?;
                            o.push(c);
                            run = self.i;
                            continue;
                        }
                        _ => {
                            self.i = i + 1;
                            return self.fail("unknown escape");
                        }
                    };
                    o.push(c);
                    run = i + 2;
                }
                Some(_) => {
                    self.i = i;
                    return self.fail("control character in a string");
                }
                None => {
                    self.i = i;
                    return self.fail("unterminated string");
                }
            }
        }
    }

    /// After `\u`: four hex digits, and a low surrogate's escape after a high one.
    fn unicode_escape(&mut self) -> Result<char, JsonError> {
        let hi = self.hex4()?;
        let code = if (0xD800..0xDC00).contains(&hi) {
            if !self.b[self.i..].starts_with(b"\\u") {
                return self.fail("a high surrogate without its low surrogate");
            }
            self.i += 2;
            let lo = self.hex4()?;
            if !(0xDC00..0xE000).contains(&lo) {
                return self.fail("a high surrogate without its low surrogate");
            }
            0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
        } else if (0xDC00..0xE000).contains(&hi) {
            return self.fail("a lone low surrogate");
        } else {
            hi
        };
        match char::from_u32(code) {
            Some(c) => Ok(c),
            None => self.fail("invalid \\u escape"),
        }
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let Some(digits) = self.b.get(self.i..self.i + 4) else {
            return self.fail("a \\u escape needs four hex digits");
        };
        let mut v = 0u32;
        for &d in digits {
            let n = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                b'A'..=b'F' => d - b'A' + 10,
                _ => return self.fail("a \\u escape needs four hex digits"),
            };
            v = v * 16 + u32::from(n);
        }
        self.i += 4;
        Ok(v)
    }

    /// Consumes `{`; then call `next_key` until it answers None.
    pub(crate) fn begin_object(&mut self) -> Result<(), JsonError> {
        self.expect(b'{')
    }

    /// The next key of an object (`first`: right after `{`), with its `:` consumed; None at `}`.
    pub(crate) fn next_key(&mut self, first: bool) -> Result<Option<Cow<'a, str>>, JsonError> {
        if self.eat(b'}') {
            return Ok(None);
        }
        if !first {
            self.expect(b',')?;
        }
        self.skip_ws();
        if self.b.get(self.i) != Some(&b'"') {
            return self.fail("expected a key");
        }
        let key = self.string()?;
        self.expect(b':')?;
        Ok(Some(key))
    }

    pub(crate) fn begin_array(&mut self) -> Result<(), JsonError> {
        self.expect(b'[')
    }

    /// Whether another element follows (`first`: right after `[`); consumes `,` or `]`.
    pub(crate) fn next_element(&mut self, first: bool) -> Result<bool, JsonError> {
        if self.eat(b']') {
            return Ok(false);
        }
        if !first {
            self.expect(b',')?;
        }
        Ok(true)
    }

    /// The text of the next value, checked but not converted (a nested value written into a
    /// string column).
    pub(crate) fn raw_value(&mut self, depth: usize) -> Result<&'a str, JsonError> {
        self.skip_ws();
        let start = self.i;
        self.skip_value(depth)?;
        Ok(&self.s[start..self.i])
    }

    /// Skips the next value, checking that it is valid JSON.
    pub(crate) fn skip_value(&mut self, depth: usize) -> Result<(), JsonError> {
        if depth > MAX_DEPTH {
            return self.fail(format!("nested deeper than {MAX_DEPTH} levels"));
        }
        match self.peek()? {
            Kind::Object => {
                self.begin_object()?;
                let mut first = true;
                while self.next_key(first)?.is_some() {
                    first = false;
                    self.skip_value(depth + 1)?;
                }
                Ok(())
            }
            Kind::Array => {
                self.begin_array()?;
                let mut first = true;
                while self.next_element(first)? {
                    first = false;
                    self.skip_value(depth + 1)?;
                }
                Ok(())
            }
            Kind::String => self.string().map(drop),
            Kind::Number => self.number().map(drop),
            Kind::Bool => self.bool().map(drop),
            Kind::Null => self.null(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(text: &str) -> bool {
        let mut p = Parser::new(text);
        p.skip_value(0).is_ok() && p.at_end()
    }

    #[test]
    fn agrees_with_serde_json_on_validity() {
        for text in [
            r#"{"a":1,"b":[true,false,null,-0.5e+3,"x\"y\u00e9\ud83d\ude00"],"c":{}}"#,
            "[]",
            "  {\"a\" : [ 1 , 2 ] }  ",
            "{\"a\":1,}",
            "[1,]",
            "{\"a\" 1}",
            "01",
            "1.",
            "-",
            "1e",
            "\"\\ud800\"",
            "\"\\udc00\"",
            "\"a\tb\"",
            "\"\\x\"",
            "tru",
            "nul",
            "{\"a\":1}}",
            "[1 2]",
            "{1:2}",
            "\"unterminated",
        ] {
            let ours = valid(text);
            let theirs = serde_json::from_str::<serde_json::Value>(text).is_ok();
            assert_eq!(ours, theirs, "{text}");
        }
    }

    #[test]
    fn strings_and_numbers_come_back_exactly() {
        let mut p = Parser::new(
            r#"["plain", "esc\n\u0041\ud83d\ude00", 12345678901234567890.125, -3, 1E2]"#,
        );
        p.begin_array().expect("array");
        assert!(p.next_element(true).expect("first"));
        assert!(matches!(p.string().expect("s"), Cow::Borrowed("plain")));
        assert!(p.next_element(false).expect("second"));
        assert_eq!(p.string().expect("s"), "esc\nA\u{1F600}");
        assert!(p.next_element(false).expect("third"));
        assert_eq!(
            p.number().expect("n"),
            Number {
                text: "12345678901234567890.125",
                integer: false
            }
        );
        assert!(p.next_element(false).expect("fourth"));
        assert!(p.number().expect("n").integer);
        assert!(p.next_element(false).expect("fifth"));
        assert!(!p.number().expect("n").integer);
        assert!(!p.next_element(false).expect("end"));
        assert!(p.at_end());
    }

    #[test]
    fn the_word_scan_finds_what_the_byte_scan_finds() {
        let mut x: u64 = 12345;
        for _ in 0..5000 {
            let len = (x % 40) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    // Mostly plain text, sometimes a quote, a backslash, a control or high byte.
                    [b'a', b'z', b'"', b'\\', 0x1f, 0x20, 0x7f, 0x80, 0xe9, b'!'][(x % 10) as usize]
                })
                .collect();
            for start in 0..=len {
                let naive = (start..len)
                    .find(|&i| bytes[i] == b'"' || bytes[i] == b'\\' || bytes[i] < 0x20)
                    .unwrap_or(len);
                assert_eq!(find_special(&bytes, start), naive, "{bytes:?} from {start}");
            }
        }
    }

    #[test]
    fn depth_is_capped() {
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 2), "]".repeat(MAX_DEPTH + 2));
        let err = Parser::new(&deep).skip_value(0).expect_err("too deep");
        assert!(err.to_string().contains("nested deeper"), "{err}");
    }
}
