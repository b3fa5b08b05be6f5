//! One value of an Iceberg primitive type: a partition tuple's member or a column's bound.
//! Serialized as the table specification's Appendix D says (bounds, partition summaries) and
//! as Avro values of the partition struct in manifests.

use std::cmp::Ordering;

use super::avro::Value as Avro;
use super::types::Type;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Literal {
    Boolean(bool),
    /// int and date (days since 1970-01-01).
    Int(i32),
    /// long, time, timestamp, timestamptz (microseconds).
    Long(i64),
    Float(f32),
    Double(f64),
    /// The unscaled value of a decimal.
    Decimal(i128),
    String(String),
    /// uuid and fixed.
    Fixed(Vec<u8>),
    Binary(Vec<u8>),
}

impl Literal {
    /// Appendix D: little-endian numbers, strings as UTF-8, a decimal's unscaled value as the
    /// shortest big-endian two's complement.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        match self {
            Literal::Boolean(b) => vec![u8::from(*b)],
            Literal::Int(v) => v.to_le_bytes().to_vec(),
            Literal::Long(v) => v.to_le_bytes().to_vec(),
            Literal::Float(v) => v.to_le_bytes().to_vec(),
            Literal::Double(v) => v.to_le_bytes().to_vec(),
            Literal::Decimal(v) => minimal_be(*v),
            Literal::String(s) => s.as_bytes().to_vec(),
            Literal::Fixed(b) | Literal::Binary(b) => b.clone(),
        }
    }

    /// A value of type `ty` from its Appendix D bytes (`to_bytes`).
    pub(crate) fn from_bytes(ty: &Type, b: &[u8]) -> Option<Literal> {
        Some(match ty {
            Type::Boolean => Literal::Boolean(*b.first()? != 0),
            Type::Int | Type::Date => Literal::Int(i32::from_le_bytes(b.try_into().ok()?)),
            Type::Long | Type::Time | Type::Timestamp | Type::TimestampTz => {
                Literal::Long(i64::from_le_bytes(b.try_into().ok()?))
            }
            Type::Float => Literal::Float(f32::from_le_bytes(b.try_into().ok()?)),
            Type::Double => Literal::Double(f64::from_le_bytes(b.try_into().ok()?)),
            Type::Decimal { .. } => {
                if b.is_empty() || b.len() > 16 {
                    return None;
                }
                let fill = if b[0] & 0x80 != 0 { 0xff } else { 0 };
                let mut full = [fill; 16];
                full[16 - b.len()..].copy_from_slice(b);
                Literal::Decimal(i128::from_be_bytes(full))
            }
            Type::String => Literal::String(String::from_utf8(b.to_vec()).ok()?),
            Type::Uuid | Type::Fixed(_) => Literal::Fixed(b.to_vec()),
            Type::Binary => Literal::Binary(b.to_vec()),
            Type::Struct(_) | Type::List(_) | Type::Map(_) => return None,
        })
    }

    /// The value as the Avro type of `ty` in a manifest's partition struct.
    pub(crate) fn to_avro(&self, ty: &Type) -> Avro {
        match (self, ty) {
            (Literal::Decimal(v), Type::Decimal { precision, .. }) => {
                Avro::Fixed(sign_extended(*v, decimal_bytes(*precision)))
            }
            (Literal::Boolean(b), _) => Avro::Boolean(*b),
            (Literal::Int(v), _) => Avro::Int(*v),
            (Literal::Long(v), _) => Avro::Long(*v),
            (Literal::Float(v), _) => Avro::Float(*v),
            (Literal::Double(v), _) => Avro::Double(*v),
            (Literal::Decimal(v), _) => Avro::Bytes(minimal_be(*v)),
            (Literal::String(s), _) => Avro::String(s.clone()),
            (Literal::Fixed(b), _) => Avro::Fixed(b.clone()),
            (Literal::Binary(b), _) => Avro::Bytes(b.clone()),
        }
    }

    /// Order within one type (floats: -0.0 before 0.0; NaN is never compared as a bound).
    pub(crate) fn compare(&self, other: &Literal) -> Option<Ordering> {
        Some(match (self, other) {
            (Literal::Boolean(a), Literal::Boolean(b)) => a.cmp(b),
            (Literal::Int(a), Literal::Int(b)) => a.cmp(b),
            (Literal::Long(a), Literal::Long(b)) => a.cmp(b),
            (Literal::Float(a), Literal::Float(b)) => a.total_cmp(b),
            (Literal::Double(a), Literal::Double(b)) => a.total_cmp(b),
            (Literal::Decimal(a), Literal::Decimal(b)) => a.cmp(b),
            (Literal::String(a), Literal::String(b)) => a.cmp(b),
            (Literal::Fixed(a), Literal::Fixed(b)) | (Literal::Binary(a), Literal::Binary(b)) => {
                a.cmp(b)
            }
            _ => return None,
        })
    }
}

/// Bytes a decimal of `precision` digits takes as a fixed (the smallest n with
/// 2^(8n-1) >= 10^precision).
pub(crate) fn decimal_bytes(precision: u8) -> usize {
    let mut n = 1usize;
    while n < 16 && 2f64.powi(8 * n as i32 - 1) < 10f64.powi(i32::from(precision)) {
        n += 1;
    }
    n
}

fn minimal_be(v: i128) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let mut start = 0;
    // Drop a leading byte while the next one carries the same sign.
    while start < 15 {
        let (b, next) = (bytes[start], bytes[start + 1]);
        if (b == 0x00 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    bytes[start..].to_vec()
}

fn sign_extended(v: i128, n: usize) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    bytes[16 - n.min(16)..].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_serialize_as_appendix_d_says() {
        assert_eq!(Literal::Int(19723).to_bytes(), vec![0x0b, 0x4d, 0, 0]);
        assert_eq!(Literal::Float(1.0).to_bytes(), vec![0, 0, 0x80, 0x3f]);
        assert_eq!(Literal::Boolean(true).to_bytes(), vec![1]);
        assert_eq!(Literal::Decimal(12345).to_bytes(), vec![0x30, 0x39]);
        assert_eq!(Literal::Decimal(0).to_bytes(), vec![0x00]);
        assert_eq!(Literal::Decimal(-1).to_bytes(), vec![0xff]);
        assert_eq!(Literal::Decimal(128).to_bytes(), vec![0x00, 0x80]);
        assert_eq!(Literal::Decimal(-129).to_bytes(), vec![0xff, 0x7f]);
        assert_eq!(Literal::String("é".into()).to_bytes(), "é".as_bytes());
    }

    #[test]
    fn decimals_take_the_bytes_their_precision_needs() {
        let want = [
            (1, 1),
            (2, 1),
            (3, 2),
            (9, 4),
            (10, 5),
            (18, 8),
            (19, 9),
            (38, 16),
        ];
        for (p, n) in want {
            assert_eq!(decimal_bytes(p), n, "precision {p}");
        }
        let t = Type::Decimal {
            precision: 10,
            scale: 2,
        };
        assert_eq!(Literal::Decimal(-1).to_avro(&t), Avro::Fixed(vec![0xff; 5]));
    }

    #[test]
    fn values_read_back_from_their_bytes() {
        let cases = [
            (Type::Int, Literal::Int(-5)),
            (Type::Timestamp, Literal::Long(1_725_476_175_114_000)),
            (
                Type::Decimal {
                    precision: 10,
                    scale: 2,
                },
                Literal::Decimal(-12345),
            ),
            (Type::String, Literal::String("eu-west".into())),
            (Type::Double, Literal::Double(2.5)),
            (Type::Boolean, Literal::Boolean(true)),
        ];
        for (ty, v) in cases {
            assert_eq!(Literal::from_bytes(&ty, &v.to_bytes()), Some(v));
        }
        assert_eq!(Literal::from_bytes(&Type::Int, &[1, 2]), None);
    }

    #[test]
    fn floats_order_negative_zero_first() {
        assert_eq!(
            Literal::Double(-0.0).compare(&Literal::Double(0.0)),
            Some(Ordering::Less)
        );
        assert_eq!(Literal::Int(1).compare(&Literal::Long(1)), None);
    }
}
