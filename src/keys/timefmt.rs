//! Java `DateTimeFormatter` patterns, the language of `!{timestamp:FMT}`: pattern letters
//! (`yyyy`, `MM`, `dd`, `HH`, ...), text in single quotes as a literal, `''` for a quote.
//! Letters with a locale-dependent meaning (week fields, localized day numbers) are refused at
//! config load rather than guessed.

use chrono::{DateTime, Datelike, Offset, TimeZone, Timelike};
use std::fmt::Write;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(String),
    Field(char, usize),
}

/// A parsed pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TimeFormat {
    tokens: Vec<Token>,
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// Why a Java DateTimeFormatter pattern is not one firehosed formats.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PatternError {
    #[error("unterminated quote in {0:?}")]
    UnterminatedQuote(String),
    #[error("{c:?} is reserved in date-time patterns (in {pattern:?}); quote it as '{c}'")]
    Reserved { c: char, pattern: String },
    #[error(
        "pattern letter {c:?} is not supported in {pattern:?} (supported: y u M L d D H h k K m s S a E G Z X x; quote literal text as 'text')"
    )]
    Unsupported { c: char, pattern: String },
    #[error("too many pattern letters {c:?} in {pattern:?}")]
    TooMany { c: char, pattern: String },
}

impl TimeFormat {
    pub(crate) fn parse(pattern: &str) -> Result<TimeFormat, PatternError> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut tokens = Vec::new();
        let mut literal = String::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '\'' {
                if chars.get(i + 1) == Some(&'\'') {
                    literal.push('\'');
                    i += 2;
                    continue;
                }
                let mut j = i + 1;
                loop {
                    match chars.get(j) {
                        None => return Err(PatternError::UnterminatedQuote(pattern.into())),
                        Some('\'') if chars.get(j + 1) == Some(&'\'') => {
                            literal.push('\'');
                            j += 2;
                        }
                        Some('\'') => break,
                        Some(ch) => {
                            literal.push(*ch);
                            j += 1;
                        }
                    }
                }
                i = j + 1;
                continue;
            }
            if c.is_ascii_alphabetic() {
                let mut n = 1;
                while chars.get(i + n) == Some(&c) {
                    n += 1;
                }
                check_field(c, n, pattern)?;
                if !literal.is_empty() {
                    tokens.push(Token::Literal(std::mem::take(&mut literal)));
                }
                tokens.push(Token::Field(c, n));
                i += n;
                continue;
            }
            if matches!(c, '[' | ']' | '{' | '}' | '#') {
                return Err(PatternError::Reserved {
                    c,
                    pattern: pattern.into(),
                });
            }
            literal.push(c);
            i += 1;
        }
        if !literal.is_empty() {
            tokens.push(Token::Literal(literal));
        }
        Ok(TimeFormat { tokens })
    }

    pub(crate) fn format<Tz: TimeZone>(&self, t: &DateTime<Tz>) -> String {
        let mut out = String::new();
        for token in &self.tokens {
            match token {
                Token::Literal(s) => out.push_str(s),
                Token::Field(c, n) => write_field(&mut out, t, *c, *n),
            }
        }
        out
    }
}

fn check_field(c: char, n: usize, pattern: &str) -> Result<(), PatternError> {
    let max = match c {
        'y' | 'u' | 'S' => 9,
        'M' | 'L' => 4,
        'd' | 'H' | 'h' | 'k' | 'K' | 'm' | 's' => 2,
        'D' => 3,
        'a' => 1,
        'E' => 4,
        'Z' => 5,
        'X' | 'x' => 5,
        'G' => 4,
        _ => {
            return Err(PatternError::Unsupported {
                c,
                pattern: pattern.into(),
            });
        }
    };
    if n > max {
        return Err(PatternError::TooMany {
            c,
            pattern: pattern.into(),
        });
    }
    Ok(())
}

fn pad(out: &mut String, v: i64, width: usize) {
    let _ = write!(out, "{v:0width$}");
}

fn write_field<Tz: TimeZone>(out: &mut String, t: &DateTime<Tz>, c: char, n: usize) {
    match c {
        'y' | 'u' => {
            let y = i64::from(t.year());
            if n == 2 {
                pad(out, y.rem_euclid(100), 2);
            } else {
                pad(out, y, n);
            }
        }
        'M' | 'L' => {
            let m = t.month() as usize;
            match n {
                1 | 2 => pad(out, m as i64, n),
                3 => out.push_str(&MONTHS[m - 1][..3]),
                _ => out.push_str(MONTHS[m - 1]),
            }
        }
        'd' => pad(out, i64::from(t.day()), n),
        'D' => pad(out, i64::from(t.ordinal()), n),
        'H' => pad(out, i64::from(t.hour()), n),
        'k' => pad(out, i64::from(if t.hour() == 0 { 24 } else { t.hour() }), n),
        'K' => pad(out, i64::from(t.hour() % 12), n),
        'h' => {
            let h = t.hour() % 12;
            pad(out, i64::from(if h == 0 { 12 } else { h }), n)
        }
        'm' => pad(out, i64::from(t.minute()), n),
        's' => pad(out, i64::from(t.second()), n),
        'S' => {
            let nanos = format!("{:09}", t.nanosecond() % 1_000_000_000);
            out.push_str(&nanos[..n]);
        }
        'a' => out.push_str(if t.hour() < 12 { "AM" } else { "PM" }),
        'E' => {
            let d = DAYS[t.weekday().num_days_from_monday() as usize];
            out.push_str(if n == 4 { d } else { &d[..3] });
        }
        'G' => out.push_str(if n == 4 { "Anno Domini" } else { "AD" }),
        'Z' | 'X' | 'x' => {
            let secs = t.offset().fix().local_minus_utc();
            write_offset(out, c, n, secs);
        }
        _ => {}
    }
}

fn write_offset(out: &mut String, c: char, n: usize, secs: i32) {
    if secs == 0 && c == 'X' {
        out.push('Z');
        return;
    }
    if secs == 0 && c == 'Z' && n == 5 {
        out.push('Z');
        return;
    }
    let sign = if secs < 0 { '-' } else { '+' };
    let abs = secs.unsigned_abs();
    let (h, m) = (abs / 3600, (abs % 3600) / 60);
    let colon = matches!((c, n), ('X' | 'x', 3) | ('X' | 'x', 5) | ('Z', 5));
    match (c, n) {
        ('X' | 'x', 1) if m == 0 => {
            let _ = write!(out, "{sign}{h:02}");
        }
        _ if colon => {
            let _ = write!(out, "{sign}{h:02}:{m:02}");
        }
        _ => {
            let _ = write!(out, "{sign}{h:02}{m:02}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("valid test time")
            .with_timezone(&Utc)
    }

    fn fmt(pattern: &str, s: &str) -> String {
        TimeFormat::parse(pattern)
            .expect("pattern parses")
            .format(&at(s))
    }

    #[test]
    fn known_strings() {
        let t = "2024-05-01T13:07:42.123456789Z";
        assert_eq!(fmt("yyyy/MM/dd/HH", t), "2024/05/01/13");
        assert_eq!(fmt("yyyy-MM-dd-HH-mm-ss", t), "2024-05-01-13-07-42");
        assert_eq!(fmt("yy", t), "24");
        assert_eq!(fmt("y", t), "2024");
        assert_eq!(fmt("M/d/H", t), "5/1/13");
        assert_eq!(fmt("MMM MMMM", t), "May May");
        assert_eq!(fmt("EEE EEEE", t), "Wed Wednesday");
        assert_eq!(fmt("D DDD", t), "122 122");
        assert_eq!(fmt("hh a", t), "01 PM");
        assert_eq!(fmt("SSS", t), "123");
        assert_eq!(fmt("SSSSSSSSS", t), "123456789");
        assert_eq!(fmt("X Z xxx", t), "Z +0000 +00:00");
    }

    #[test]
    fn quoted_literals() {
        let t = "2024-05-01T13:07:42Z";
        assert_eq!(fmt("'dt='yyyy'-'MM'-'dd", t), "dt=2024-05-01");
        assert_eq!(fmt("'year='yyyy/'month='MM", t), "year=2024/month=05");
        assert_eq!(fmt("yyyy''MM", t), "2024'05");
        assert_eq!(fmt("'it''s'", t), "it's");
    }

    #[test]
    fn time_zones() {
        let t = at("2024-05-01T23:30:00Z").with_timezone(&chrono_tz::Asia::Tokyo);
        let f = TimeFormat::parse("yyyy/MM/dd/HH XXX").expect("parses");
        assert_eq!(f.format(&t), "2024/05/02/08 +09:00");
    }

    #[test]
    fn refused_patterns() {
        assert!(TimeFormat::parse("ww").is_err(), "week is locale-dependent");
        assert!(TimeFormat::parse("'open").is_err());
        assert!(TimeFormat::parse("yyyy[MM]").is_err());
        assert!(TimeFormat::parse("ddd").is_err());
    }
}
