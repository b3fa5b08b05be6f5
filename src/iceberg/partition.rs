//! Partition transforms (Iceberg table specification, "Partition Transforms"): the value a
//! row's partition field takes from its source column, and the type of that value. A data
//! file holds rows of one partition tuple.

use super::literal::Literal;
use super::manifest::PartitionType;
use super::metadata::TableMetadata;
use super::types::Type;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transform {
    Identity,
    Bucket(u32),
    Truncate(u32),
    Year,
    Month,
    Day,
    Hour,
    Void,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum PartitionError {
    #[error("partition transform {0:?} is not supported")]
    Transform(String),
    #[error("partition field {0:?} has no source column in the current schema")]
    Source(String),
    #[error("partition transform {transform} does not apply to a column of type {ty}")]
    Type { transform: String, ty: Type },
}

impl Transform {
    pub(crate) fn parse(s: &str) -> Result<Transform, PartitionError> {
        let arg = |prefix: &str| {
            s.strip_prefix(prefix)
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|n| n.trim().parse::<u32>().ok())
                .filter(|n| *n > 0)
        };
        Ok(match s {
            "identity" => Transform::Identity,
            "year" => Transform::Year,
            "month" => Transform::Month,
            "day" => Transform::Day,
            "hour" => Transform::Hour,
            "void" => Transform::Void,
            _ => {
                if let Some(n) = arg("bucket[") {
                    Transform::Bucket(n)
                } else if let Some(w) = arg("truncate[") {
                    Transform::Truncate(w)
                } else {
                    return Err(PartitionError::Transform(s.to_string()));
                }
            }
        })
    }

    /// The type of the values this transform makes from a column of type `source`.
    pub(crate) fn result_type(self, source: &Type) -> Option<Type> {
        let temporal = matches!(source, Type::Date | Type::Timestamp | Type::TimestampTz);
        Some(match self {
            Transform::Identity if source.is_primitive() => source.clone(),
            Transform::Void => source.clone(),
            Transform::Bucket(_)
                if source.is_primitive()
                    && !matches!(source, Type::Boolean | Type::Float | Type::Double) =>
            {
                Type::Int
            }
            Transform::Truncate(_)
                if matches!(
                    source,
                    Type::Int | Type::Long | Type::Decimal { .. } | Type::String | Type::Binary
                ) =>
            {
                source.clone()
            }
            Transform::Year | Transform::Month if temporal => Type::Int,
            Transform::Day if temporal => Type::Date,
            Transform::Hour if matches!(source, Type::Timestamp | Type::TimestampTz) => Type::Int,
            _ => return None,
        })
    }

    /// The partition value of a source value (None in, None out).
    pub(crate) fn apply(self, v: Option<&Literal>, source: &Type) -> Option<Literal> {
        let v = v?;
        const DAY_US: i64 = 86_400_000_000;
        let days = |v: &Literal| match (v, source) {
            (Literal::Int(d), Type::Date) => Some(i64::from(*d)),
            (Literal::Long(us), _) => Some(us.div_euclid(DAY_US)),
            _ => None,
        };
        Some(match self {
            Transform::Identity => v.clone(),
            Transform::Void => return None,
            Transform::Bucket(n) => {
                let hash = murmur3_32(&bucket_bytes(v)?);
                Literal::Int(((hash & i32::MAX as u32) % n) as i32)
            }
            Transform::Truncate(w) => match v {
                Literal::Int(x) => Literal::Int(x - x.rem_euclid(w as i32)),
                Literal::Long(x) => Literal::Long(x - x.rem_euclid(i64::from(w))),
                Literal::Decimal(x) => Literal::Decimal(x - x.rem_euclid(i128::from(w))),
                Literal::String(s) => Literal::String(s.chars().take(w as usize).collect()),
                Literal::Binary(b) => Literal::Binary(b[..b.len().min(w as usize)].to_vec()),
                _ => return None,
            },
            Transform::Day => Literal::Int(i32::try_from(days(v)?).ok()?),
            Transform::Year | Transform::Month => {
                let date = chrono::DateTime::from_timestamp(days(v)? * 86_400, 0)?.date_naive();
                let (y, m) = (
                    i64::from(chrono::Datelike::year(&date)) - 1970,
                    i64::from(chrono::Datelike::month0(&date)),
                );
                let n = if self == Transform::Year {
                    y
                } else {
                    y * 12 + m
                };
                Literal::Int(i32::try_from(n).ok()?)
            }
            Transform::Hour => match v {
                Literal::Long(us) => {
                    Literal::Int(i32::try_from(us.div_euclid(3_600_000_000)).ok()?)
                }
                _ => return None,
            },
        })
    }
}

/// What the bucket transform hashes (the specification's "Bucket Transform Details").
fn bucket_bytes(v: &Literal) -> Option<Vec<u8>> {
    Some(match v {
        Literal::Int(x) => i64::from(*x).to_le_bytes().to_vec(),
        Literal::Long(x) => x.to_le_bytes().to_vec(),
        Literal::Decimal(_) | Literal::String(_) | Literal::Fixed(_) | Literal::Binary(_) => {
            v.to_bytes()
        }
        Literal::Boolean(_) | Literal::Float(_) | Literal::Double(_) => return None,
    })
}

/// Murmur3 x86 32-bit, seed 0.
fn murmur3_32(data: &[u8]) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h: u32 = 0;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let mut k: u32 = 0;
        for (i, b) in tail.iter().enumerate() {
            k |= u32::from(*b) << (8 * i);
        }
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
    }
    h ^= data.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// A table's default spec: each field with its transform, its source column's id and type,
/// and the type of its values.
#[derive(Debug, Clone)]
pub(crate) struct Partitioning {
    pub(crate) fields: Vec<(Transform, i32, Type)>,
    pub(crate) ty: PartitionType,
}

impl Partitioning {
    pub(crate) fn of(m: &TableMetadata) -> Result<Partitioning, PartitionError> {
        let (Some(spec), Some(schema)) = (m.default_spec(), m.current_schema()) else {
            return Err(PartitionError::Source("(no default spec)".into()));
        };
        let mut fields = Vec::new();
        let mut types = Vec::new();
        for f in &spec.fields {
            let t = Transform::parse(&f.transform)?;
            let source = schema
                .field_by_id(f.source_id)
                .ok_or_else(|| PartitionError::Source(f.name.clone()))?;
            let result = t
                .result_type(&source.ty)
                .ok_or_else(|| PartitionError::Type {
                    transform: f.transform.clone(),
                    ty: source.ty.clone(),
                })?;
            fields.push((t, f.source_id, source.ty.clone()));
            types.push((f.clone(), result));
        }
        Ok(Partitioning {
            fields,
            ty: PartitionType {
                spec_id: spec.spec_id,
                fields: types,
            },
        })
    }

    pub(crate) fn is_unpartitioned(&self) -> bool {
        self.fields.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_hashes_match_the_specification_s_examples() {
        // "Bucket Transform Details": hash values of the specification's table.
        assert_eq!(murmur3_32(&34i64.to_le_bytes()) as i32, 2_017_239_379);
        assert_eq!(murmur3_32(b"iceberg") as i32, 1_210_000_089);
        let uuid = uuid::Uuid::parse_str("f79c3e09-677c-4bbd-a479-3f349cb785e7").unwrap();
        assert_eq!(murmur3_32(uuid.as_bytes()) as i32, 1_488_055_340);
        assert_eq!(
            murmur3_32(&Literal::Decimal(1420).to_bytes()) as i32,
            -500_754_589
        );
        assert_eq!(murmur3_32(&17486i64.to_le_bytes()) as i32, -653_330_422);
    }

    #[test]
    fn time_transforms_count_from_the_epoch() {
        let ts = Literal::Long(1_725_476_175_114_000); // 2024-09-04T18:56:15.114Z
        let t = Type::Timestamp;
        assert_eq!(Transform::Year.apply(Some(&ts), &t), Some(Literal::Int(54)));
        assert_eq!(
            Transform::Month.apply(Some(&ts), &t),
            Some(Literal::Int(54 * 12 + 8))
        );
        assert_eq!(
            Transform::Day.apply(Some(&ts), &t),
            Some(Literal::Int(19970))
        );
        assert_eq!(
            Transform::Hour.apply(Some(&ts), &t),
            Some(Literal::Int(19970 * 24 + 18))
        );
        let before = Literal::Long(-1);
        assert_eq!(
            Transform::Day.apply(Some(&before), &t),
            Some(Literal::Int(-1))
        );
        assert_eq!(
            Transform::Year.apply(Some(&Literal::Int(-1)), &Type::Date),
            Some(Literal::Int(-1))
        );
    }

    #[test]
    fn truncate_and_parse_follow_the_specification() {
        assert_eq!(
            Transform::Truncate(10).apply(Some(&Literal::Int(-1)), &Type::Int),
            Some(Literal::Int(-10))
        );
        assert_eq!(
            Transform::Truncate(3).apply(Some(&Literal::String("iceberg".into())), &Type::String),
            Some(Literal::String("ice".into()))
        );
        assert_eq!(
            Transform::parse("bucket[16]").unwrap(),
            Transform::Bucket(16)
        );
        assert!(Transform::parse("bucket[0]").is_err());
        assert!(Transform::parse("zorder").is_err());
        assert_eq!(
            Transform::Day.result_type(&Type::TimestampTz),
            Some(Type::Date)
        );
        assert_eq!(Transform::Hour.result_type(&Type::Date), None);
    }
}
