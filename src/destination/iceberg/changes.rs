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
use sha2::{Digest, Sha256};

use super::tuple::literal_of;
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

/// A record's change to a table with unique keys: its operation, its key's identity (a hash
/// of the key columns' values as the data file's writer reads them, so `7` and `"7"` in an
/// integer column are one key), and for an update or delete the key as the JSON object of the
/// key columns' values (the row an equality delete file holds for it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Change {
    pub(crate) op: Op,
    pub(crate) id: KeyId,
    pub(crate) key: Option<Arc<str>>,
}

/// A key's identity: 128 bits of the SHA-256 of its values' binary forms (Appendix D), so an
/// object tracks each of its rows in a few bytes whatever its key's size.
pub(crate) type KeyId = u128;

/// Why a record has no key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyError {
    NotAnObject,
    Missing(String),
    NotAScalar(String),
    NotOfType(String, Type),
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyError::NotAnObject => f.write_str("the record is not a JSON object"),
            KeyError::Missing(k) => write!(f, "the record has no value for unique key {k:?}"),
            KeyError::NotAScalar(k) => {
                write!(f, "unique key {k:?} must be a string, number or boolean")
            }
            KeyError::NotOfType(k, ty) => write!(f, "unique key {k:?}: the value is not a {ty}"),
        }
    }
}

impl std::error::Error for KeyError {}

/// The change `op` of `record` (JSON) on a table whose unique-key columns are `keys`. Only
/// the key columns' values are built; the rest of the record is skipped as it is read.
pub(crate) fn change_of(
    op: Op,
    record: &[u8],
    keys: &[(String, Type)],
) -> Result<Change, KeyError> {
    let mut de = serde_json::Deserializer::from_slice(record);
    let found = KeyFields(keys)
        .deserialize(&mut de)
        .map_err(|_| KeyError::NotAnObject)?;
    de.end().map_err(|_| KeyError::NotAnObject)?;
    let mut hash = Sha256::new();
    for ((name, ty), value) in keys.iter().zip(&found) {
        let literal = match value {
            None | Some(Json::Null) => return Err(KeyError::Missing(name.clone())),
            Some(Json::Array(_) | Json::Object(_)) => {
                return Err(KeyError::NotAScalar(name.clone()));
            }
            Some(v) => {
                literal_of(v, ty).ok_or_else(|| KeyError::NotOfType(name.clone(), ty.clone()))?
            }
        };
        let bytes = literal.to_bytes();
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(&bytes);
    }
    let digest = hash.finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    let key = (op != Op::Insert).then(|| {
        let object: serde_json::Map<String, Json> = keys
            .iter()
            .zip(found)
            .map(|((name, _), v)| (name.clone(), v.unwrap_or(Json::Null)))
            .collect();
        Arc::from(Json::Object(object).to_string())
    });
    Ok(Change {
        op,
        id: u128::from_le_bytes(id),
        key,
    })
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

/// What an object's records did besides adding rows, gathered as they are staged. About 50
/// bytes per row of the object while it is open (its key's identity and position), plus the
/// keys its updates and deletes touched.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    /// The positions of the rows of each key still in the object's data file.
    live: HashMap<KeyId, Rows>,
    /// Rows of the data file a later operation on their key removed.
    dropped: Vec<u64>,
    /// Keys an update or delete touched, first touch first.
    touched: Vec<Arc<str>>,
    seen: HashSet<KeyId>,
}

/// A key's rows in the object: nearly always one.
#[derive(Debug)]
enum Rows {
    One(u64),
    Many(Vec<u64>),
}

impl Tracker {
    /// Records `change`, whose row (an insert's or update's) was written at position `row`.
    pub(crate) fn record(&mut self, change: &Change, row: Option<u64>) {
        if change.op != Op::Insert {
            match self.live.remove(&change.id) {
                Some(Rows::One(r)) => self.dropped.push(r),
                Some(Rows::Many(rows)) => self.dropped.extend(rows),
                None => {}
            }
            if self.seen.insert(change.id)
                && let Some(key) = &change.key
            {
                self.touched.push(key.clone());
            }
        }
        if let Some(row) = row {
            match self.live.get_mut(&change.id) {
                None => {
                    self.live.insert(change.id, Rows::One(row));
                }
                Some(Rows::Many(rows)) => rows.push(row),
                Some(rows @ Rows::One(_)) => {
                    if let Rows::One(first) = *rows {
                        *rows = Rows::Many(vec![first, row]);
                    }
                }
            }
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
    /// Keys whose rows of earlier commits go (an equality delete file): JSON objects of the
    /// key columns' values.
    pub(crate) deleted: Vec<Arc<str>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Vec<(String, Type)> {
        vec![
            ("id".to_string(), Type::Long),
            ("r".to_string(), Type::String),
        ]
    }

    fn change(op: Op, id: i64) -> Change {
        let json = format!(r#"{{"id": {id}, "r": "eu"}}"#);
        change_of(op, json.as_bytes(), &keys()).expect("a key")
    }

    /// Applies ops one by one to a multiset of rows (the reference the tracker must match).
    #[test]
    fn an_object_s_changes_give_what_applying_its_records_in_order_gives() {
        let ops = [
            (Op::Insert, 1),
            (Op::Insert, 1),
            (Op::Update, 2),
            (Op::Delete, 1),
            (Op::Insert, 1),
            (Op::Update, 2),
            (Op::Delete, 3),
            (Op::Update, 1),
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
        // Rows 0 1 (1, deleted), 2 (2, updated again), 3 (1, updated) go; 4 (2) and 5 (1) stay.
        assert_eq!(c.dropped, vec![0, 1, 2, 3]);
        let deleted: Vec<&str> = c.deleted.iter().map(|k| &**k).collect();
        assert_eq!(
            deleted,
            vec![
                r#"{"id":2,"r":"eu"}"#,
                r#"{"id":1,"r":"eu"}"#,
                r#"{"id":3,"r":"eu"}"#
            ]
        );
    }

    #[test]
    fn keys_are_the_values_the_writer_reads_whatever_their_json_form() {
        let keys = vec![
            ("id".to_string(), Type::Long),
            ("r".to_string(), Type::String),
            ("ok".to_string(), Type::Boolean),
        ];
        let of = |json: &str| change_of(Op::Delete, json.as_bytes(), &keys);
        let a = of(r#"{"id": 7, "r": "5", "ok": true, "x": [1]}"#).unwrap();
        let b = of(r#"{"ok": "true", "r": 5, "id": "7"}"#).unwrap();
        assert_eq!(
            a.id, b.id,
            "7 and \"7\", 5 and \"5\", true and \"true\" are one key"
        );
        assert_ne!(a.id, of(r#"{"id": 8, "r": "5", "ok": true}"#).unwrap().id);
        assert_eq!(a.key.as_deref(), Some(r#"{"id":7,"ok":true,"r":"5"}"#));
        assert!(
            change_of(Op::Insert, br#"{"id": 7, "r": "5", "ok": true}"#, &keys)
                .unwrap()
                .key
                .is_none(),
            "an insert keeps no key text"
        );
        assert_eq!(
            of(r#"{"id": null, "r": "eu", "ok": true}"#),
            Err(KeyError::Missing("id".into()))
        );
        assert_eq!(
            of(r#"{"id": [1], "r": "eu", "ok": true}"#),
            Err(KeyError::NotAScalar("id".into()))
        );
        assert_eq!(
            of(r#"{"id": "x", "r": "eu", "ok": true}"#),
            Err(KeyError::NotOfType("id".into(), Type::Long))
        );
        assert_eq!(of("[1]"), Err(KeyError::NotAnObject));
    }
}
