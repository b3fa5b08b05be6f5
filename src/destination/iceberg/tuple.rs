//! A record's partition tuple in its Iceberg table: each partition field's transform applied
//! to the value of its source column, read from the record by the rules the data file's
//! writer reads it with (the same helpers: epoch-microsecond timestamps, exact decimals,
//! dates as text or epoch days), so a row and the partition its file is in always agree.
//! The tuple travels with the staged object as text (hex of Appendix D's bytes, or null) and
//! is read back with the partition's types by the sink.

use serde_json::Value as Json;

use crate::encode::columnar::timestamp::{Format, TimestampRules, date_days};
use crate::encode::columnar::values::decimal;
use crate::iceberg::literal::Literal;
use crate::iceberg::partition::Partitioning;
use crate::iceberg::types::{Schema, Type};

/// Why a record has no partition tuple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TupleError {
    NotAnObject,
    /// A source column's value that is not of the column's type.
    Value {
        column: String,
        ty: Type,
    },
    /// A partition field whose source is not a top-level column.
    NestedSource(i32),
}

impl std::fmt::Display for TupleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TupleError::NotAnObject => f.write_str("the record is not a JSON object"),
            TupleError::Value { column, ty } => {
                write!(f, "column {column}: the value is not a {ty}")
            }
            TupleError::NestedSource(id) => write!(
                f,
                "the table is partitioned by field {id}, which is not a top-level column; firehosed partitions by top-level columns only"
            ),
        }
    }
}

/// The tuple of `record` (JSON) in a table with `schema` and `partitioning`.
pub(crate) fn tuple(
    record: &[u8],
    schema: &Schema,
    partitioning: &Partitioning,
) -> Result<Vec<Option<Literal>>, TupleError> {
    let json: Json = serde_json::from_slice(record).map_err(|_| TupleError::NotAnObject)?;
    let Json::Object(fields) = json else {
        return Err(TupleError::NotAnObject);
    };
    partitioning
        .fields
        .iter()
        .map(|(transform, source_id, ty)| {
            let column = schema
                .fields
                .iter()
                .find(|f| f.id == *source_id)
                .ok_or(TupleError::NestedSource(*source_id))?;
            let value = match fields.get(&column.name) {
                None | Some(Json::Null) => None,
                Some(v) => Some(literal_of(v, ty).ok_or_else(|| TupleError::Value {
                    column: column.name.clone(),
                    ty: ty.clone(),
                })?),
            };
            Ok(transform.apply(value.as_ref(), ty))
        })
        .collect()
}

/// The first partition source column `record` (JSON) has no member for (a null is a value:
/// the null partition), if any.
pub(crate) fn missing_source(
    record: &[u8],
    schema: &Schema,
    partitioning: &Partitioning,
) -> Option<String> {
    if partitioning.fields.is_empty() {
        return None;
    }
    let Ok(Json::Object(fields)) = serde_json::from_slice::<Json>(record) else {
        return None;
    };
    partitioning
        .fields
        .iter()
        .filter_map(|(_, source_id, _)| schema.fields.iter().find(|f| f.id == *source_id))
        .find(|c| !fields.contains_key(&c.name))
        .map(|c| c.name.clone())
}

/// A JSON value as a value of `ty`, by AWS's rules for Iceberg columns.
pub(crate) fn literal_of(v: &Json, ty: &Type) -> Option<Literal> {
    let text = || match v {
        Json::String(s) => Some(s.trim().to_string()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    let whole = || match v {
        Json::Number(n) => n.as_i64(),
        Json::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    Some(match ty {
        Type::Boolean => Literal::Boolean(match v {
            Json::Bool(b) => *b,
            Json::Number(n) => match n.as_i64()? {
                1 => true,
                0 => false,
                _ => return None,
            },
            Json::String(s) if s.trim().eq_ignore_ascii_case("true") => true,
            Json::String(s) if s.trim().eq_ignore_ascii_case("false") => false,
            _ => return None,
        }),
        Type::Int => Literal::Int(i32::try_from(whole()?).ok()?),
        Type::Long => Literal::Long(whole()?),
        Type::Float => Literal::Float(text()?.parse().ok()?),
        Type::Double => Literal::Double(text()?.parse().ok()?),
        Type::Decimal { precision, scale } => {
            Literal::Decimal(decimal(&text()?, *precision, *scale)??)
        }
        Type::Date => Literal::Int(match v {
            Json::String(s) => date_days(s)?,
            Json::Number(n) => i32::try_from(n.as_i64()?).ok()?,
            _ => return None,
        }),
        Type::Timestamp | Type::TimestampTz => {
            let rules = TimestampRules {
                formats: vec![Format::Micros],
            };
            let nanos = match v {
                Json::Number(n) => {
                    rules.nanos_of_number(&n.to_string(), n.is_i64() || n.is_u64())?
                }
                Json::String(s) => rules.nanos_of_text(s)?,
                _ => return None,
            };
            Literal::Long(i64::try_from(nanos.div_euclid(1000)).ok()?)
        }
        Type::String => Literal::String(match v {
            Json::String(s) => s.clone(),
            Json::Number(_) | Json::Bool(_) => text()?,
            _ => return None,
        }),
        // Partitions by time of day, UUIDs or bytes are rare; their values are read as the
        // writer reads them.
        Type::Time | Type::Uuid | Type::Fixed(_) | Type::Binary => match (ty, v) {
            (Type::Time, Json::Number(n)) => Literal::Long(n.as_i64()?),
            (Type::Uuid, Json::String(s)) => {
                Literal::Fixed(uuid::Uuid::parse_str(s.trim()).ok()?.as_bytes().to_vec())
            }
            _ => return None,
        },
        Type::Struct(_) | Type::List(_) | Type::Map(_) => return None,
    })
}

/// The tuple as text: a JSON array of hex strings (Appendix D's bytes) and nulls.
pub(crate) fn encode(tuple: &[Option<Literal>]) -> String {
    let items: Vec<Json> = tuple
        .iter()
        .map(|v| {
            v.as_ref()
                .map_or(Json::Null, |v| Json::String(hex::encode(v.to_bytes())))
        })
        .collect();
    Json::Array(items).to_string()
}

/// The tuple `encode` wrote, read with the partition's value types.
pub(crate) fn decode(text: &str, types: &[Type]) -> Option<Vec<Option<Literal>>> {
    let items: Vec<Option<String>> = serde_json::from_str(text).ok()?;
    if items.len() != types.len() {
        return None;
    }
    items
        .iter()
        .zip(types)
        .map(|(item, ty)| match item {
            None => Some(None),
            Some(h) => Literal::from_bytes(ty, &hex::decode(h).ok()?).map(Some),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iceberg::metadata::{PartitionField, TableMetadata};
    use crate::iceberg::types::NestedField;

    fn table() -> (Schema, Partitioning) {
        let schema = Schema::new(
            0,
            vec![
                NestedField::new(1, "region", false, Type::String),
                NestedField::new(2, "ts", false, Type::TimestampTz),
                NestedField::new(3, "n", false, Type::Long),
            ],
        );
        let spec = vec![
            PartitionField {
                name: "region".into(),
                transform: "identity".into(),
                source_id: 1,
                field_id: 1000,
            },
            PartitionField {
                name: "ts_day".into(),
                transform: "day".into(),
                source_id: 2,
                field_id: 1001,
            },
            PartitionField {
                name: "n_bucket".into(),
                transform: "bucket[4]".into(),
                source_id: 3,
                field_id: 1002,
            },
        ];
        let m = TableMetadata::new("file:///w/t", schema.clone(), spec, Default::default(), 0);
        (schema, Partitioning::of(&m).unwrap())
    }

    #[test]
    fn a_record_s_tuple_is_its_columns_transformed() {
        let (schema, p) = table();
        let t = tuple(
            br#"{"region":"eu","ts":1725476175114000,"n":34}"#,
            &schema,
            &p,
        )
        .unwrap();
        assert_eq!(t[0], Some(Literal::String("eu".into())));
        assert_eq!(t[1], Some(Literal::Int(19970)));
        assert!(matches!(t[2], Some(Literal::Int(b)) if (0..4).contains(&b)));
        // Text timestamps are read as the writer reads them; a missing column is null.
        let t2 = tuple(br#"{"ts":"2024-09-04T18:56:15.114Z"}"#, &schema, &p).unwrap();
        assert_eq!(t2, vec![None, Some(Literal::Int(19970)), None]);
        let types: Vec<Type> = p.ty.fields.iter().map(|(_, t)| t.clone()).collect();
        assert_eq!(decode(&encode(&t), &types), Some(t));
        assert!(matches!(
            tuple(br#"{"n":"x"}"#, &schema, &p),
            Err(TupleError::Value { .. })
        ));
        assert_eq!(tuple(b"[1]", &schema, &p), Err(TupleError::NotAnObject));
    }
}
