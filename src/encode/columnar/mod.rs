//! JSON records into Arrow columns typed by a Hive schema, shared by both outputs of format
//! conversion (Parquet and ORC: `encode::conversion`). `schema` reads the column types,
//! `json` parses a record, `rows` and `values` turn its objects into column values (`columns`
//! holds them, and can take a failed record back out), `timestamp` reads times.

pub(crate) mod columns;
pub(crate) mod json;
pub(crate) mod rows;
pub mod schema;
pub(crate) mod timestamp;
pub(crate) mod values;

use arrow_schema::TimeUnit;

pub(crate) use rows::KeyRules;
pub use rows::{Misfit, Rules};
pub use schema::{Column, HiveType};

/// How timestamps are stored (`output.parquet.timestamp_unit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum TimestampUnit {
    Millis,
    Micros,
    Nanos,
}

impl TimestampUnit {
    /// Arrow's unit.
    pub(crate) fn arrow(self) -> TimeUnit {
        match self {
            TimestampUnit::Millis => TimeUnit::Millisecond,
            TimestampUnit::Micros => TimeUnit::Microsecond,
            TimestampUnit::Nanos => TimeUnit::Nanosecond,
        }
    }
}

/// Two columns (or two fields of a struct) that one JSON key would fill, once keys are
/// normalized (`keys`) and mapped (`mappings`: column -> JSON key): `"columns a.b and a_b are
/// both filled from the JSON key a_b"`.
pub(crate) fn key_collision(
    columns: &[Column],
    keys: KeyRules,
    mappings: &[(String, String)],
) -> Option<String> {
    let top: Vec<(String, String)> = columns
        .iter()
        .map(|c| {
            let key = mappings
                .iter()
                .find(|(col, _)| *col == c.name)
                .map_or(c.name.as_str(), |(_, k)| k.as_str());
            (c.name.clone(), keys.normalize(key).into_owned())
        })
        .collect();
    if let Some(m) = collision("columns", &top) {
        return Some(m);
    }
    let mut stack: Vec<&HiveType> = columns.iter().map(|c| &c.ty).collect();
    while let Some(t) = stack.pop() {
        match t {
            HiveType::Struct(fields) => {
                let named: Vec<(String, String)> = fields
                    .iter()
                    .map(|(n, _)| (n.clone(), keys.normalize(n).into_owned()))
                    .collect();
                if let Some(m) = collision("struct fields", &named) {
                    return Some(m);
                }
                stack.extend(fields.iter().map(|(_, t)| t));
            }
            HiveType::Array(t) => stack.push(t),
            HiveType::Map(k, v) => stack.extend([k.as_ref(), v.as_ref()]),
            _ => {}
        }
    }
    None
}

/// The first two (name, key) pairs that share a key.
fn collision(what: &str, named: &[(String, String)]) -> Option<String> {
    for (i, (a, key)) in named.iter().enumerate() {
        if let Some((b, _)) = named[..i].iter().find(|(_, k)| k == key) {
            return Some(format!(
                "{what} {b:?} and {a:?} are both filled from the JSON key {key:?}"
            ));
        }
    }
    None
}
