//! One JSON scalar (a string, a number's text, a boolean) into a primitive column, with the
//! coercions the OpenX and Hive SerDes make: numbers from numeric strings, strings from any
//! scalar, booleans from "true"/"false", exact decimals, epoch or text timestamps.

use std::borrow::Cow;

use arrow_schema::TimeUnit;
use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use super::columns::Builder;
use super::json::Number;
use super::rows::Rules;
use super::timestamp::{TimestampRules, date_days};

/// A JSON scalar value.
#[derive(Debug, Clone)]
pub(crate) enum Scalar<'a> {
    Str(Cow<'a, str>),
    Num(Number<'a>),
    Bool(bool),
}

impl Scalar<'_> {
    fn describe(&self) -> String {
        match self {
            Scalar::Str(s) => format!("the string {:?}", clip(s)),
            Scalar::Num(n) => format!("the number {}", clip(n.text)),
            Scalar::Bool(b) => format!("{b}"),
        }
    }

    fn text(&self) -> &str {
        match self {
            Scalar::Str(s) => s,
            Scalar::Num(n) => n.text,
            Scalar::Bool(true) => "true",
            Scalar::Bool(false) => "false",
        }
    }
}

/// A JSON value that does not fit its column's type (the text of its error record).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ValueError {
    #[error("{value} is not {expected}")]
    NotA {
        value: String,
        expected: Cow<'static, str>,
    },
    #[error("{value} is out of range for {target}")]
    OutOfRange {
        value: String,
        target: Cow<'static, str>,
    },
    #[error("expected {expected}, got {value}")]
    Expected {
        value: String,
        expected: &'static str,
    },
    /// One batch of a column's values would pass what Arrow's 32-bit offsets hold.
    #[error("a batch of values passed 2 GiB")]
    BatchFull,
}

fn not_a(v: &Scalar<'_>, expected: impl Into<Cow<'static, str>>) -> ValueError {
    ValueError::NotA {
        value: v.describe(),
        expected: expected.into(),
    }
}

fn out_of(v: &Scalar<'_>, target: impl Into<Cow<'static, str>>) -> ValueError {
    ValueError::OutOfRange {
        value: v.describe(),
        target: target.into(),
    }
}

/// At most 64 characters of a value, for an error message.
fn clip(s: &str) -> Cow<'_, str> {
    match s.char_indices().nth(64) {
        Some((i, _)) => Cow::Owned(format!("{}...", &s[..i])),
        None => Cow::Borrowed(s),
    }
}

const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Appends `v` to the primitive builder `b`, or says why it does not fit.
pub(crate) fn push(b: &mut Builder, v: Scalar<'_>, rules: &Rules) -> Result<(), ValueError> {
    let ts = &rules.timestamps;
    match b {
        Builder::Bool { values, valid } => {
            values.append(bool_of(&v, rules)?);
            valid.push(true);
        }
        Builder::I8(p) => p.push(int(&v, "tinyint")?),
        Builder::I16(p) => p.push(int(&v, "smallint")?),
        Builder::I32(p) => p.push(int(&v, "int")?),
        Builder::I64(p) => p.push(int(&v, "bigint")?),
        Builder::F32(p) => {
            let x: f32 = float(&v, "float")?;
            p.push(x);
        }
        Builder::F64(p) => {
            let x: f64 = float(&v, "double")?;
            p.push(x);
        }
        Builder::Decimal {
            values,
            precision,
            scale,
        } => values.push(decimal_of(&v, *precision, *scale)?),
        Builder::Date(p) => p.push(date_of(&v, rules)?),
        Builder::Timestamp(p, unit) | Builder::TimestampTz(p, unit) => {
            p.push(timestamp_of(&v, *unit, ts)?);
        }
        Builder::Time(p) => p.push(time_of(&v)?),
        Builder::Fixed { values, size, uuid } => values.push(&fixed_of(&v, *size, *uuid)?)?,
        Builder::Utf8 { values, max_chars } => {
            let text = v.text();
            let text = match max_chars.and_then(|n| text.char_indices().nth(n as usize)) {
                Some((cut, _)) => &text[..cut],
                None => text,
            };
            values.push(text.as_bytes())?;
        }
        Builder::Binary(values) => {
            let Scalar::Str(s) = &v else {
                return Err(not_a(&v, "base64 binary data"));
            };
            let bytes = BASE64
                .decode(s.as_bytes())
                .map_err(|_| not_a(&v, "base64 binary data"))?;
            values.push(&bytes)?;
        }
        Builder::List { .. } => {
            return Err(ValueError::Expected {
                value: v.describe(),
                expected: "an array",
            });
        }
        Builder::Map { .. } | Builder::Struct { .. } => {
            return Err(ValueError::Expected {
                value: v.describe(),
                expected: "an object",
            });
        }
    }
    Ok(())
}

fn bool_of(v: &Scalar<'_>, rules: &Rules) -> Result<bool, ValueError> {
    Ok(match v {
        Scalar::Bool(x) => *x,
        Scalar::Str(s) if s.trim().eq_ignore_ascii_case("true") => true,
        Scalar::Str(s) if s.trim().eq_ignore_ascii_case("false") => false,
        Scalar::Num(n) if rules.iceberg && n.text == "1" => true,
        Scalar::Num(n) if rules.iceberg && n.text == "0" => false,
        _ => return Err(not_a(v, "a boolean")),
    })
}

/// Days since the epoch: `yyyy-MM-dd`, or (Iceberg) the number of days.
fn date_of(v: &Scalar<'_>, rules: &Rules) -> Result<i32, ValueError> {
    let days = match v {
        Scalar::Str(s) => date_days(s),
        Scalar::Num(n) if rules.iceberg && n.integer => n.text.parse().ok(),
        _ => None,
    };
    days.ok_or_else(|| not_a(v, "a date (yyyy-MM-dd)"))
}

/// Exactly `size` bytes: a UUID's text, or base64 or hex.
fn fixed_of(v: &Scalar<'_>, size: u32, uuid: bool) -> Result<Vec<u8>, ValueError> {
    let bytes = match (v, uuid) {
        (Scalar::Str(s), true) => uuid::Uuid::parse_str(s.trim())
            .map(|u| u.as_bytes().to_vec())
            .ok(),
        (Scalar::Str(s), false) => binary_readings(s).find(|b| b.len() == size as usize),
        _ => None,
    }
    .filter(|b| b.len() == size as usize);
    let what = if uuid {
        "a UUID"
    } else {
        "base64 or hex data of the column's size"
    };
    bytes.ok_or_else(|| not_a(v, what))
}

/// Microseconds since midnight: a number, or `HH:mm:ss[.ffffff]`.
fn time_of(v: &Scalar<'_>) -> Result<i64, ValueError> {
    const DAY_US: i64 = 86_400_000_000;
    let us = match v {
        Scalar::Num(n) if n.integer => n.text.parse::<i64>().ok(),
        Scalar::Str(s) => chrono::NaiveTime::parse_from_str(s.trim(), "%H:%M:%S%.f")
            .ok()
            .map(|t| {
                let secs = i64::from(chrono::Timelike::num_seconds_from_midnight(&t));
                secs * 1_000_000 + i64::from(chrono::Timelike::nanosecond(&t) / 1000)
            }),
        _ => None,
    };
    us.filter(|us| (0..DAY_US).contains(us))
        .ok_or_else(|| not_a(v, "a time of day (HH:mm:ss or microseconds since midnight)"))
}

/// Binary data written as base64 (standard or URL-safe) or hex, as AWS reads it for Iceberg:
/// each reading that decodes, in that order (text like `01020304` is both base64 and hex).
fn binary_readings(s: &str) -> impl Iterator<Item = Vec<u8>> + '_ {
    let s = s.trim();
    let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    [
        BASE64.decode(s.as_bytes()).ok(),
        url_safe.decode(s.trim_end_matches('=')).ok(),
        hex::decode(s).ok(),
    ]
    .into_iter()
    .flatten()
}

/// An exact decimal (a number, or a numeric string) scaled to the column's scale.
fn decimal_of(v: &Scalar<'_>, precision: u8, scale: u8) -> Result<i128, ValueError> {
    let text = match v {
        Scalar::Num(n) => n.text,
        Scalar::Str(s) => s.trim(),
        Scalar::Bool(_) => return Err(not_a(v, "a decimal")),
    };
    decimal(text, precision, scale)
        .ok_or_else(|| not_a(v, "a decimal"))?
        .ok_or_else(|| out_of(v, format!("decimal({precision},{scale})")))
}

/// A timestamp (epoch number or text, as the SerDe's rules read it) in the column's unit.
fn timestamp_of(v: &Scalar<'_>, unit: TimeUnit, ts: &TimestampRules) -> Result<i64, ValueError> {
    let nanos = match v {
        Scalar::Num(n) => ts.nanos_of_number(n.text, n.integer),
        Scalar::Str(s) => ts.nanos_of_text(s),
        Scalar::Bool(_) => None,
    }
    .ok_or_else(|| not_a(v, "a timestamp"))?;
    let per = match unit {
        TimeUnit::Millisecond => 1_000_000,
        TimeUnit::Nanosecond => 1,
        _ => 1_000,
    };
    i64::try_from(nanos.div_euclid(per)).map_err(|_| out_of(v, "a timestamp"))
}

fn int<T: TryFrom<i64>>(v: &Scalar<'_>, name: &str) -> Result<T, ValueError> {
    let text = match v {
        Scalar::Num(n) if n.integer => n.text,
        Scalar::Str(s) => s.trim(),
        _ => return Err(not_a(v, format!("a whole number ({name})"))),
    };
    let wide: i64 = match text.parse::<i128>() {
        Ok(x) => i64::try_from(x).map_err(|_| out_of_range(v, name))?,
        Err(_) => return Err(not_a(v, format!("a whole number ({name})"))),
    };
    T::try_from(wide).map_err(|_| out_of_range(v, name))
}

fn out_of_range(v: &Scalar<'_>, name: &str) -> ValueError {
    let range = match name {
        "tinyint" => "-128..=127",
        "smallint" => "-32768..=32767",
        "int" => "-2147483648..=2147483647",
        _ => "-9223372036854775808..=9223372036854775807",
    };
    out_of(v, format!("{name} ({range})"))
}

fn float<T: std::str::FromStr + Into<f64> + Copy>(
    v: &Scalar<'_>,
    name: &str,
) -> Result<T, ValueError> {
    let text = match v {
        Scalar::Num(n) => n.text,
        Scalar::Str(s) => s.trim(),
        Scalar::Bool(_) => return Err(not_a(v, format!("a number ({name})"))),
    };
    let x: T = text
        .parse()
        .map_err(|_| not_a(v, format!("a number ({name})")))?;
    // "Infinity" and "NaN" are words; digits that overflow are out of range.
    if x.into().is_infinite() && text.bytes().any(|b| b.is_ascii_digit()) {
        return Err(out_of(v, name.to_string()));
    }
    Ok(x)
}

/// The decimal `text` scaled by 10^scale, rounded half up as Hive does: None when it is not a
/// number, Some(None) when it needs more than `precision` digits.
pub(crate) fn decimal(text: &str, precision: u8, scale: u8) -> Option<Option<i128>> {
    let (negative, body) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], body[i + 1..].parse::<i64>().ok()?),
        None => (body, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let digits: String = int.chars().chain(frac.chars()).collect();
    let digits = digits.trim_start_matches('0');
    // value = digits * 10^shift, scaled.
    let shift = exp
        .checked_sub(frac.len() as i64)?
        .checked_add(i64::from(scale))?;
    let max = usize::from(precision);
    let (kept, round_up) = if shift >= 0 {
        if digits.is_empty() {
            return Some(Some(0));
        }
        if shift > max as i64 || digits.len() + shift as usize > max {
            return Some(None);
        }
        (format!("{digits}{}", "0".repeat(shift as usize)), false)
    } else {
        let drop = shift.unsigned_abs() as usize;
        if drop > digits.len() {
            (String::new(), false)
        } else {
            let keep = digits.len() - drop;
            (digits[..keep].to_string(), digits.as_bytes()[keep] >= b'5')
        }
    };
    if kept.len() > max {
        return Some(None);
    }
    let mut v: i128 = if kept.is_empty() {
        0
    } else {
        kept.parse().ok()?
    };
    if round_up {
        v += 1;
    }
    if v >= 10i128.pow(u32::from(precision)) {
        return Some(None);
    }
    Some(Some(if negative { -v } else { v }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_exact_and_rounded_half_up() {
        assert_eq!(decimal("12.345", 10, 2), Some(Some(1235)));
        assert_eq!(decimal("-12.344", 10, 2), Some(Some(-1234)));
        assert_eq!(decimal("-12.345", 10, 2), Some(Some(-1235)));
        assert_eq!(decimal("1e3", 10, 2), Some(Some(100_000)));
        assert_eq!(decimal("1.5E-1", 4, 2), Some(Some(15)));
        assert_eq!(decimal("0.004", 4, 2), Some(Some(0)));
        assert_eq!(decimal("0.005", 4, 2), Some(Some(1)));
        assert_eq!(
            decimal("99.995", 4, 2),
            Some(None),
            "rounds past the precision"
        );
        assert_eq!(decimal("99.994", 4, 2), Some(Some(9999)));
        assert_eq!(decimal("123", 4, 2), Some(None));
        assert_eq!(
            decimal("12345678901234567890123456.789012345678", 38, 12),
            Some(Some(12345678901234567890123456789012345678))
        );
        assert_eq!(decimal("1e999999", 38, 0), Some(None));
        assert_eq!(decimal("12e9223372036854775805", 10, 2), Some(None));
        assert_eq!(decimal("12e-9223372036854775805", 10, 2), Some(Some(0)));
        assert_eq!(
            decimal("1e-99999999999999999999", 10, 2),
            None,
            "the exponent is not an i64"
        );
        assert_eq!(decimal("0e999999", 38, 0), Some(Some(0)));
        assert_eq!(decimal("abc", 10, 2), None);
        assert_eq!(decimal(".", 10, 2), None);
        assert_eq!(decimal("", 10, 2), None);
    }

    #[test]
    fn integers_check_their_range() {
        let n = |t| {
            Scalar::Num(Number {
                text: t,
                integer: true,
            })
        };
        assert_eq!(int::<i8>(&n("127"), "tinyint"), Ok(127));
        assert!(
            int::<i8>(&n("128"), "tinyint")
                .unwrap_err()
                .to_string()
                .contains("out of range for tinyint")
        );
        assert!(
            int::<i64>(&n("9223372036854775808"), "bigint")
                .unwrap_err()
                .to_string()
                .contains("out of range")
        );
        assert_eq!(int::<i32>(&Scalar::Str(" 42 ".into()), "int"), Ok(42));
        let frac = Scalar::Num(Number {
            text: "1.5",
            integer: false,
        });
        assert!(
            int::<i32>(&frac, "int")
                .unwrap_err()
                .to_string()
                .contains("not a whole number")
        );
        assert!(float::<f32>(&n("1e39"), "float").is_err());
        assert_eq!(
            float::<f64>(&Scalar::Str("NaN".into()), "double").map(f64::is_nan),
            Ok(true)
        );
    }
}
