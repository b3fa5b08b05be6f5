//! Timestamp and date parsing for format conversion: AWS's defaults (ISO-8601 with up to 9
//! fraction digits, `yyyy-[M]M-[d]d HH:mm:ss[.S]`, epoch seconds, epoch milliseconds, floating
//! point epoch seconds) and the Hive JSON SerDe's `timestamp_formats` (Joda patterns, `millis`).
//! Times are nanoseconds since the epoch, UTC; a text without an offset is read as UTC.

use chrono::NaiveDate;

const NANOS: i128 = 1_000_000_000;
/// Whole epoch numbers at or above this magnitude are milliseconds, below it seconds
/// (10^11 seconds is the year 5138; 10^11 milliseconds is March 1973).
const MILLIS_FROM: i128 = 100_000_000_000;

/// One of `timestamp_formats`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Format {
    /// Epoch milliseconds (numbers and numeric strings).
    Millis,
    /// Epoch microseconds (numbers and numeric strings): AWS's rule for Iceberg tables ("you
    /// must always send in microseconds"); never written in `timestamp_formats`.
    Micros,
    Pattern(Vec<Token>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    Literal(String),
    /// A numeric field and its letter count.
    Field(Field, usize),
    /// `SSS...`: fraction of a second.
    Fraction,
    /// `MMM`, `MMMM`: month name.
    MonthName,
    /// `EEE`: day name, read and ignored.
    DayName,
    /// `a`: AM/PM.
    HalfDay,
    /// `Z`, `ZZ`: an offset such as -0800, -08:00 or Z.
    Offset,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Year,
    Month,
    Day,
    Hour24,
    Hour12,
    Minute,
    Second,
}

/// Why a `timestamp_formats` entry is not a pattern firehosed reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FormatError {
    #[error("unclosed quote in {0:?}")]
    UnclosedQuote(String),
    #[error(
        "pattern letter `{letter}` in {text:?} is not supported (y M d H h m s S E a Z and 'quoted text' are)"
    )]
    Letter { letter: char, text: String },
    #[error("{0:?} has no date or time field (y M d H h m s)")]
    NoField(String),
}

impl Format {
    /// Parses `millis` or a Joda DateTimeFormat pattern.
    pub(crate) fn parse(text: &str) -> Result<Format, FormatError> {
        if text == "millis" {
            return Ok(Format::Millis);
        }
        let chars: Vec<char> = text.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '\'' {
                // 'text' is literal; '' is a quote.
                let mut lit = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(FormatError::UnclosedQuote(text.to_string())),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            lit.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(&c) => {
                            lit.push(c);
                            i += 1;
                        }
                    }
                }
                if lit.is_empty() {
                    lit.push('\'');
                }
                tokens.push(Token::Literal(lit));
                continue;
            }
            if !c.is_ascii_alphabetic() {
                tokens.push(Token::Literal(c.to_string()));
                i += 1;
                continue;
            }
            let mut n = 1;
            while chars.get(i + n) == Some(&c) {
                n += 1;
            }
            i += n;
            tokens.push(match c {
                'y' | 'Y' | 'u' => Token::Field(Field::Year, n),
                'M' if n >= 3 => Token::MonthName,
                'M' => Token::Field(Field::Month, n),
                'd' => Token::Field(Field::Day, n),
                'H' => Token::Field(Field::Hour24, n),
                'h' => Token::Field(Field::Hour12, n),
                'm' => Token::Field(Field::Minute, n),
                's' => Token::Field(Field::Second, n),
                'S' => Token::Fraction,
                'E' => Token::DayName,
                'a' => Token::HalfDay,
                'Z' => Token::Offset,
                other => {
                    return Err(FormatError::Letter {
                        letter: other,
                        text: text.to_string(),
                    });
                }
            });
        }
        if !tokens
            .iter()
            .any(|t| matches!(t, Token::Field(..) | Token::MonthName))
        {
            return Err(FormatError::NoField(text.to_string()));
        }
        Ok(Format::Pattern(tokens))
    }
}

/// How a destination reads timestamps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TimestampRules {
    /// Tried in order before AWS's defaults.
    pub(crate) formats: Vec<Format>,
}

impl TimestampRules {
    fn millis(&self) -> bool {
        self.formats.contains(&Format::Millis)
    }

    /// A JSON number: epoch seconds (whole or fractional) or milliseconds.
    pub(crate) fn nanos_of_number(&self, text: &str, integer: bool) -> Option<i128> {
        if self.formats.contains(&Format::Micros) && integer {
            return text.parse::<i128>().ok()?.checked_mul(1_000);
        }
        if self.millis() && integer {
            return text.parse::<i128>().ok()?.checked_mul(1_000_000);
        }
        epoch(text, integer)
    }

    /// A JSON string: the formats, then AWS's default text forms, then an epoch number.
    pub(crate) fn nanos_of_text(&self, text: &str) -> Option<i128> {
        let t = text.trim();
        for f in &self.formats {
            if let Format::Pattern(tokens) = f
                && let Some(v) = parse_pattern(tokens, t)
            {
                return Some(v);
            }
        }
        if let Some(v) = default_text(t) {
            return Some(v);
        }
        let integer = t.bytes().all(|b| b.is_ascii_digit() || b == b'-');
        if !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_digit() || b == b'-' || b == b'.')
        {
            return self.nanos_of_number(t, integer);
        }
        None
    }
}

/// Epoch seconds or milliseconds (whole numbers by magnitude), or fractional epoch seconds.
fn epoch(text: &str, integer: bool) -> Option<i128> {
    if integer {
        let v: i128 = text.parse().ok()?;
        return if v.abs() >= MILLIS_FROM {
            v.checked_mul(1_000_000)
        } else {
            Some(v * NANOS)
        };
    }
    if text.contains(['e', 'E']) {
        let v: f64 = text.parse().ok()?;
        let nanos = v * 1e9;
        return (nanos.is_finite() && nanos.abs() < 9.2e27).then_some(nanos.round() as i128);
    }
    let (whole, frac) = text.split_once('.')?;
    let negative = whole.starts_with('-');
    let secs = whole.parse::<i128>().ok()?.checked_mul(NANOS)?;
    let nanos = fraction_nanos(frac)?;
    if negative {
        secs.checked_sub(nanos)
    } else {
        secs.checked_add(nanos)
    }
}

/// `digits` after a decimal point, as nanoseconds (at most 9 digits).
fn fraction_nanos(digits: &str) -> Option<i128> {
    if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: i128 = digits.parse().ok()?;
    Some(v * 10i128.pow(9 - digits.len() as u32))
}

/// A calendar date `yyyy-[M]M-[d]d` as days since the epoch.
pub(crate) fn date_days(text: &str) -> Option<i32> {
    let mut c = Cursor::new(text.trim());
    let (y, m, d) = c.date()?;
    if !c.done() {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(y, m, d)?;
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
    i32::try_from((date - epoch).num_days()).ok()
}

/// `yyyy-[M]M-[d]d` + `T` or space + `HH:mm[:ss[.fraction]]` + optional `Z` / `±HH[:mm]`.
fn default_text(text: &str) -> Option<i128> {
    let mut c = Cursor::new(text);
    let (y, mo, d) = c.date()?;
    if !(c.eat('T') || c.eat(' ')) {
        return None;
    }
    let h = c.digits(1, 2)?;
    if !c.eat(':') {
        return None;
    }
    let mi = c.digits(2, 2)?;
    let mut s = 0;
    let mut nanos = 0;
    if c.eat(':') {
        s = c.digits(2, 2)?;
        if c.eat('.') || c.eat(',') {
            nanos = fraction_nanos(c.take_digits(9)?)?;
        }
    }
    let offset = c.offset()?;
    if !c.done() {
        return None;
    }
    instant(y, mo, d, h, mi, s, nanos, offset)
}

#[allow(clippy::too_many_arguments)]
fn instant(
    y: i32,
    mo: u32,
    d: u32,
    h: u32,
    mi: u32,
    s: u32,
    nanos: i128,
    offset_s: i64,
) -> Option<i128> {
    let dt = NaiveDate::from_ymd_opt(y, mo, d)?.and_hms_opt(h, mi, s)?;
    let secs = dt.and_utc().timestamp() - offset_s;
    Some(i128::from(secs) * NANOS + nanos)
}

fn parse_pattern(tokens: &[Token], text: &str) -> Option<i128> {
    let mut c = Cursor::new(text);
    let (mut y, mut mo, mut d, mut h, mut mi, mut s) = (1970, 1, 1, 0, 0, 0);
    let mut nanos = 0;
    let mut pm: Option<bool> = None;
    let mut offset = 0;
    for (i, t) in tokens.iter().enumerate() {
        let next_numeric = matches!(tokens.get(i + 1), Some(Token::Field(..) | Token::Fraction));
        match t {
            Token::Literal(l) => {
                if !c.rest().starts_with(l.as_str()) {
                    return None;
                }
                c.advance(l.len());
            }
            Token::Field(f, n) => {
                let max = if next_numeric {
                    (*n).max(if *f == Field::Year { 4 } else { 2 })
                } else if *f == Field::Year {
                    9
                } else {
                    2
                };
                let min = if next_numeric { max } else { 1 };
                let negative = *f == Field::Year && c.eat('-');
                let before = c.i;
                let v = c.digits(min, max)?;
                match f {
                    // `yy` with two digits: Joda's pivot, within 50 years of now.
                    Field::Year if *n == 2 && c.i - before == 2 && !negative => {
                        y = two_digit_year(v as i32)
                    }
                    Field::Year => y = if negative { -(v as i32) } else { v as i32 },
                    Field::Month => mo = v,
                    Field::Day => d = v,
                    Field::Hour24 | Field::Hour12 => h = v,
                    Field::Minute => mi = v,
                    Field::Second => s = v,
                }
            }
            Token::Fraction => nanos = fraction_nanos(c.take_digits(9)?)?,
            Token::MonthName => mo = c.month_name()?,
            Token::DayName => c.skip_letters()?,
            Token::HalfDay => pm = Some(c.half_day()?),
            Token::Offset => offset = c.offset_required()?,
        }
    }
    if !c.done() {
        return None;
    }
    if let Some(pm) = pm {
        if !(1..=12).contains(&h) {
            return None;
        }
        h = h % 12 + if pm { 12 } else { 0 };
    }
    instant(y, mo, d, h, mi, s, nanos, offset)
}

/// A two-digit year in the hundred years centred on this one (Joda's `yy`).
fn two_digit_year(yy: i32) -> i32 {
    use chrono::Datelike;
    let now = chrono::Utc::now().year();
    let low = now - 50;
    let mut y = low - low.rem_euclid(100) + yy;
    if y < low {
        y += 100;
    }
    y
}

struct Cursor<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a str) -> Self {
        Cursor { s, i: 0 }
    }

    fn rest(&self) -> &'a str {
        &self.s[self.i..]
    }

    fn advance(&mut self, n: usize) {
        self.i += n;
    }

    fn done(&self) -> bool {
        self.i == self.s.len()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.rest().starts_with(c) {
            self.i += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn take_digits(&mut self, max: usize) -> Option<&'a str> {
        let n = self.rest().bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 || n > max {
            return None;
        }
        let out = &self.rest()[..n];
        self.i += n;
        Some(out)
    }

    fn digits(&mut self, min: usize, max: usize) -> Option<u32> {
        let n = self
            .rest()
            .bytes()
            .take(max)
            .take_while(u8::is_ascii_digit)
            .count();
        if n < min {
            return None;
        }
        let v = self.rest()[..n].parse().ok()?;
        self.i += n;
        Some(v)
    }

    fn date(&mut self) -> Option<(i32, u32, u32)> {
        let y = self.digits(4, 4)? as i32;
        if !self.eat('-') {
            return None;
        }
        let m = self.digits(1, 2)?;
        if !self.eat('-') {
            return None;
        }
        let d = self.digits(1, 2)?;
        Some((y, m, d))
    }

    /// An optional offset: nothing (UTC), `Z`, `±HH`, `±HHmm`, `±HH:mm`; seconds east of UTC.
    fn offset(&mut self) -> Option<i64> {
        if self.done() {
            return Some(0);
        }
        self.offset_required()
    }

    fn offset_required(&mut self) -> Option<i64> {
        if self.eat('Z') {
            return Some(0);
        }
        let sign = if self.eat('+') {
            1
        } else if self.eat('-') {
            -1
        } else {
            return None;
        };
        let h = i64::from(self.digits(2, 2)?);
        self.eat(':');
        let m = if self.rest().starts_with(|c: char| c.is_ascii_digit()) {
            i64::from(self.digits(2, 2)?)
        } else {
            0
        };
        if h > 18 || m > 59 {
            return None;
        }
        Some(sign * (h * 3600 + m * 60))
    }

    fn month_name(&mut self) -> Option<u32> {
        const NAMES: [&str; 12] = [
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        ];
        let word: String = self
            .rest()
            .chars()
            .take_while(char::is_ascii_alphabetic)
            .collect();
        let lower = word.to_ascii_lowercase();
        let m = NAMES.iter().position(|n| {
            lower.len() >= 3 && (*n == lower || (lower.len() == 3 && n.starts_with(&lower)))
        })?;
        self.i += word.len();
        Some(m as u32 + 1)
    }

    fn skip_letters(&mut self) -> Option<()> {
        let n = self
            .rest()
            .bytes()
            .take_while(u8::is_ascii_alphabetic)
            .count();
        (n > 0).then(|| self.i += n)
    }

    fn half_day(&mut self) -> Option<bool> {
        let two = self.rest().get(..2)?.to_ascii_uppercase();
        let pm = match two.as_str() {
            "AM" => false,
            "PM" => true,
            _ => return None,
        };
        self.i += 2;
        Some(pm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i128 = 1_486_480_381; // 2017-02-07T15:13:01Z

    #[test]
    fn aws_default_forms() {
        let r = TimestampRules::default();
        assert_eq!(
            r.nanos_of_text("2017-02-07T15:13:01.39256Z"),
            Some(T * NANOS + 392_560_000)
        );
        assert_eq!(
            r.nanos_of_text("2017-02-07T15:13:01.123456789Z"),
            Some(T * NANOS + 123_456_789)
        );
        assert_eq!(
            r.nanos_of_text("2017-02-07 15:13:01.14"),
            Some(T * NANOS + 140_000_000)
        );
        assert_eq!(r.nanos_of_text("2017-2-7 15:13:01"), Some(T * NANOS));
        assert_eq!(
            r.nanos_of_text("2017-02-07T17:13:01+02:00"),
            Some(T * NANOS)
        );
        assert_eq!(r.nanos_of_text("2017-02-07T10:13:01-0500"), Some(T * NANOS));
        assert_eq!(r.nanos_of_number("1486480381", true), Some(T * NANOS));
        assert_eq!(
            r.nanos_of_number("1486480381123", true),
            Some(T * NANOS + 123_000_000)
        );
        assert_eq!(
            r.nanos_of_number("1486480381.5", false),
            Some(T * NANOS + 500_000_000)
        );
        assert_eq!(r.nanos_of_text("1486480381"), Some(T * NANOS));
        for bad in [
            "2017-02-30 00:00:00",
            "yesterday",
            "2017-02-07T15:13:01.1234567890Z",
            "2017-02-07",
        ] {
            assert_eq!(r.nanos_of_text(bad), None, "{bad}");
        }
    }

    #[test]
    fn hive_formats_and_millis() {
        let r = TimestampRules {
            formats: vec![
                Format::parse("dd/MMM/yyyy:HH:mm:ss Z").expect("pattern"),
                Format::parse("yyyyMMdd'T'HHmmss.SSS").expect("pattern"),
                Format::parse("hh:mm a, d MMMM yyyy").expect("pattern"),
                Format::Millis,
            ],
        };
        assert_eq!(
            r.nanos_of_text("07/Feb/2017:16:13:01 +0100"),
            Some(T * NANOS)
        );
        assert_eq!(
            r.nanos_of_text("20170207T151301.250"),
            Some(T * NANOS + 250_000_000)
        );
        assert_eq!(
            r.nanos_of_text("03:13 PM, 7 February 2017"),
            Some((T - 1) * NANOS)
        );
        assert_eq!(
            r.nanos_of_number("1486480381", true),
            Some(T * 1000 * 1_000_000 / 1000)
        );
        assert_eq!(
            r.nanos_of_text("2017-02-07 15:13:01"),
            Some(T * NANOS),
            "defaults still apply"
        );
        assert!(Format::parse("yyyy-MM-dd zzz").is_err());
        assert!(Format::parse("").is_err(), "a pattern needs a field");
        assert!(Format::parse("'T'").is_err());
        let yy = TimestampRules {
            formats: vec![Format::parse("dd/MM/yy").expect("pattern")],
        };
        assert_eq!(
            yy.nanos_of_text("07/02/17"),
            Some((T - 15 * 3600 - 13 * 60 - 1) * NANOS)
        );
        assert_eq!(two_digit_year(17), 2017);
        assert_eq!(
            r.nanos_of_number("100000000000000000000000000000.5", false),
            Some(100000000000000000000000000000 * NANOS + 500_000_000)
        );
        assert_eq!(
            r.nanos_of_number("1000000000000000000000000000000000.5", false),
            None
        );
        assert!(Format::parse("'open").is_err());
    }

    #[test]
    fn dates() {
        assert_eq!(date_days("1970-01-02"), Some(1));
        assert_eq!(date_days("2017-2-7"), Some(17204));
        assert_eq!(date_days("1969-12-31"), Some(-1));
        assert_eq!(date_days("2017-02-29"), None);
        assert_eq!(date_days("2017-02-07T00:00:00"), None);
    }
}
