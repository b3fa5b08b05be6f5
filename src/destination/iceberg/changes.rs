//! Row-level operations on a table with unique keys (AWS's `UniqueKeys` and each record's
//! `operation`), merge-on-read: an `update` or `delete` removes the rows of its key written
//! before, an `update` or `insert` adds its row. A staged object tracks, as its records
//! arrive in order, which of its own rows a later operation removed (they become position
//! deletes of its data file) and which keys an update or delete touched (they become an
//! equality delete file, which removes the rows of earlier commits: an equality delete applies
//! to rows of lower sequence numbers only). Applying the object's commit gives what applying
//! its records one by one gives.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value as Json;

use crate::iceberg::types::Type;

/// A record's operation (AWS: `insert`, the default, `update` or `delete`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Insert,
    Update,
    Delete,
}

impl Op {
    pub(crate) fn parse(s: &str) -> Option<Op> {
        match s {
            "insert" => Some(Op::Insert),
            "update" => Some(Op::Update),
            "delete" => Some(Op::Delete),
            _ => None,
        }
    }
}

/// A record's change to a table with unique keys: its operation, and its key as the JSON
/// object of the key columns' values (the row an equality delete file holds for it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Change {
    pub(crate) op: Op,
    pub(crate) key: Arc<str>,
}

/// Why a record has no key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyError {
    NotAnObject,
    Missing(String),
    NotAScalar(String),
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyError::NotAnObject => f.write_str("the record is not a JSON object"),
            KeyError::Missing(k) => write!(f, "the record has no value for unique key {k:?}"),
            KeyError::NotAScalar(k) => {
                write!(f, "unique key {k:?} must be a string, number or boolean")
            }
        }
    }
}

/// The key of `record` (JSON) on the unique-key columns `keys`. Values are kept as the record
/// gives them, but a whole number sent as text for an integer column is the number (the data
/// file's writer reads both as the same value, so both must be the same key). Only the key
/// columns' values are built; the rest of the record is skipped as it is read.
pub(crate) fn key_of(record: &[u8], keys: &[(String, Type)]) -> Result<Arc<str>, KeyError> {
    let mut de = serde_json::Deserializer::from_slice(record);
    let found = KeyFields(keys)
        .deserialize(&mut de)
        .map_err(|_| KeyError::NotAnObject)?;
    de.end().map_err(|_| KeyError::NotAnObject)?;
    let mut key = serde_json::Map::new();
    for ((name, ty), value) in keys.iter().zip(found) {
        let value = match value {
            None | Some(Json::Null) => return Err(KeyError::Missing(name.clone())),
            Some(Json::Array(_) | Json::Object(_)) => {
                return Err(KeyError::NotAScalar(name.clone()));
            }
            Some(Json::String(s)) if matches!(ty, Type::Int | Type::Long) => {
                match s.trim().parse::<i64>() {
                    Ok(n) => Json::from(n),
                    Err(_) => Json::String(s),
                }
            }
            Some(v) => v,
        };
        key.insert(name.clone(), value);
    }
    Ok(Json::Object(key).to_string().into())
}

/// Reads a JSON object keeping the values of the key columns only (in `keys`' order).
struct KeyFields<'k>(&'k [(String, Type)]);

impl<'de> DeserializeSeed<'de> for KeyFields<'_> {
    type Value = Vec<Option<Json>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for KeyFields<'_> {
    type Value = Vec<Option<Json>>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = vec![None; self.0.len()];
        while let Some(at) = map.next_key_seed(KeyName(self.0))? {
            match at {
                Some(i) => found[i] = Some(map.next_value::<Json>()?),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(found)
    }
}

/// A member's name: which key column it is, if any (compared as read, not copied).
struct KeyName<'k>(&'k [(String, Type)]);

impl<'de> DeserializeSeed<'de> for KeyName<'_> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyName<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Self::Value, E> {
        Ok(self.0.iter().position(|(k, _)| k == name))
    }
}

/// What an object's records did besides adding rows, gathered as they are staged.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    /// The positions of the rows of each key still in the object's data file.
    live: HashMap<Arc<str>, Vec<u64>>,
    /// Rows of the data file a later operation on their key removed.
    dropped: Vec<u64>,
    /// Keys an update or delete touched, first touch first.
    touched: Vec<Arc<str>>,
    seen: HashSet<Arc<str>>,
}

impl Tracker {
    /// Records `change`, whose row (an insert's or update's) was written at position `row`.
    pub(crate) fn record(&mut self, change: &Change, row: Option<u64>) {
        if change.op != Op::Insert {
            if let Some(rows) = self.live.remove(&change.key) {
                self.dropped.extend(rows);
            }
            if self.seen.insert(change.key.clone()) {
                self.touched.push(change.key.clone());
            }
        }
        if let Some(row) = row {
            self.live.entry(change.key.clone()).or_default().push(row);
        }
    }

    pub(crate) fn finish(self) -> RowChanges {
        let mut dropped = self.dropped;
        dropped.sort_unstable();
        RowChanges {
            dropped,
            deleted: self.touched,
        }
    }
}

/// What a staged object's commit removes besides adding its rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RowChanges {
    /// Positions in the object's own data file (a position delete file), ascending.
    pub(crate) dropped: Vec<u64>,
    /// Keys whose rows of earlier commits go (an equality delete file).
    pub(crate) deleted: Vec<Arc<str>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(op: Op, key: &str) -> Change {
        Change {
            op,
            key: key.into(),
        }
    }

    /// Applies ops one by one to a multiset of rows (the reference the tracker must match).
    #[test]
    fn an_object_s_changes_give_what_applying_its_records_in_order_gives() {
        let ops = [
            (Op::Insert, "a"),
            (Op::Insert, "a"),
            (Op::Update, "b"),
            (Op::Delete, "a"),
            (Op::Insert, "a"),
            (Op::Update, "b"),
            (Op::Delete, "c"),
            (Op::Update, "a"),
        ];
        let mut t = Tracker::default();
        let mut rows = 0;
        for (op, key) in ops {
            let row = (op != Op::Delete).then(|| {
                rows += 1;
                rows - 1
            });
            t.record(&change(op, key), row);
        }
        let c = t.finish();
        // Rows 0 1 (a, deleted), 2 (b, updated again), 3 (a, updated) go; 4 (b) and 5 (a) stay.
        assert_eq!(c.dropped, vec![0, 1, 2, 3]);
        let deleted: Vec<&str> = c.deleted.iter().map(|k| &**k).collect();
        assert_eq!(deleted, vec!["b", "a", "c"]);
    }

    #[test]
    fn keys_are_the_key_columns_values_with_integers_sent_as_text_as_numbers() {
        let keys = vec![
            ("id".to_string(), Type::Long),
            ("r".to_string(), Type::String),
        ];
        let a = key_of(br#"{"id": 7, "r": "eu", "x": 1}"#, &keys).unwrap();
        let b = key_of(br#"{"r": "eu", "id": "7"}"#, &keys).unwrap();
        assert_eq!(a, b);
        assert_eq!(&*a, r#"{"id":7,"r":"eu"}"#);
        assert_eq!(
            key_of(br#"{"id": null, "r": "eu"}"#, &keys),
            Err(KeyError::Missing("id".into()))
        );
        assert_eq!(
            key_of(br#"{"id": [1], "r": "eu"}"#, &keys),
            Err(KeyError::NotAScalar("id".into()))
        );
        assert_eq!(key_of(b"[1]", &keys), Err(KeyError::NotAnObject));
    }
}
