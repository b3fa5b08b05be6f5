//! A table's schema from its records: the columns a new table gets (table creation), and the
//! columns records bring that a table lacks (schema evolution, additions only, as AWS
//! supports). AWS does not document how it types a JSON value; firehosed's rule, the one
//! pyarrow's JSON reader and pyiceberg's writers follow: a string is `string`, a whole number
//! `long`, another number `double`, a boolean `boolean`, an object a `struct` of its members,
//! an array a `list` of its first non-null element's type (`string` if it has none). A null
//! says nothing of a type: a top-level field that is null is added when a value comes; a null
//! member of an object is a `string`. New columns are optional (older rows read as null) and
//! take ids after the table's highest (`last-column-id`), so data files written before keep
//! reading correctly: a reader finds no column with the new id in them.

use serde_json::{Map, Value as Json};

use std::collections::BTreeMap;

use super::metadata::{
    FIRST_PARTITION_FIELD_ID, PartitionField, TableMetadata, next_metadata_location,
};
use super::types::{ListType, NestedField, Schema, StructType, Type};

/// Numbers field ids from one after the highest in use.
pub(crate) struct Ids(i32);

impl Ids {
    pub(crate) fn after(last: i32) -> Ids {
        Ids(last)
    }

    fn next(&mut self) -> i32 {
        self.0 += 1;
        self.0
    }
}

/// The Iceberg type of a JSON value (None for null).
fn type_of(v: &Json, ids: &mut Ids) -> Option<Type> {
    Some(match v {
        Json::Null => return None,
        Json::Bool(_) => Type::Boolean,
        Json::Number(n) if n.is_i64() || n.is_u64() => Type::Long,
        Json::Number(_) => Type::Double,
        Json::String(_) => Type::String,
        Json::Array(items) => {
            let element_id = ids.next();
            let element = items
                .iter()
                .find_map(|i| type_of(i, ids))
                .unwrap_or(Type::String);
            Type::List(ListType {
                element_id,
                element_required: false,
                element: Box::new(element),
            })
        }
        Json::Object(members) => Type::Struct(StructType {
            fields: members
                .iter()
                .map(|(k, v)| {
                    let id = ids.next();
                    let ty = type_of(v, ids).unwrap_or(Type::String);
                    NestedField::new(id, k, false, ty)
                })
                .collect(),
        }),
    })
}

/// The top-level fields of `records` (JSON objects; others are skipped) that `known` does not
/// have, as new optional columns (a record's in name order, records in order), typed by their
/// first non-null value.
pub(crate) fn new_columns<'r>(
    records: impl IntoIterator<Item = &'r [u8]>,
    known: impl Fn(&str) -> bool,
    ids: &mut Ids,
) -> Vec<NestedField> {
    let mut out: Vec<NestedField> = Vec::new();
    for r in records {
        let Ok(Json::Object(fields)) = serde_json::from_slice::<Json>(r) else {
            continue;
        };
        add_fields(&fields, &known, &mut out, ids);
    }
    out
}

fn add_fields(
    fields: &Map<String, Json>,
    known: &impl Fn(&str) -> bool,
    out: &mut Vec<NestedField>,
    ids: &mut Ids,
) {
    for (name, value) in fields {
        if known(name) || out.iter().any(|f| &f.name == name) {
            continue;
        }
        let id = ids.next();
        if let Some(ty) = type_of(value, ids) {
            out.push(NestedField::new(id, name, false, ty));
        }
    }
}

/// Whether any top-level field of `record` is not a column of `schema` (and not null).
pub(crate) fn brings_columns(record: &[u8], schema: &Schema) -> bool {
    match serde_json::from_slice::<Json>(record) {
        Ok(Json::Object(fields)) => fields
            .iter()
            .any(|(k, v)| !v.is_null() && schema.field(k).is_none()),
        _ => false,
    }
}

/// The metadata of `current` (read from `location`) with `columns` added to its current
/// schema as a new schema, and where to write it. Columns another writer added meanwhile are
/// left out; None if nothing is left to add.
pub(crate) fn add_columns(
    current: &TableMetadata,
    location: &str,
    columns: &[NestedField],
    now_ms: i64,
) -> Option<(TableMetadata, String)> {
    let schema = current.current_schema()?;
    let mut ids = Ids::after(current.last_column_id.max(schema.highest_field_id()));
    let wanted: Vec<&NestedField> = columns
        .iter()
        .filter(|c| schema.field(&c.name).is_none())
        .collect();
    if wanted.is_empty() {
        return None;
    }
    let mut fields = schema.fields.clone();
    for c in wanted {
        // Ids are given again from this table's last id: another writer may have used some.
        let mut renumbered = (*c).clone();
        renumber(&mut renumbered, &mut ids);
        fields.push(renumbered);
    }
    let schema_id = current
        .schemas
        .iter()
        .map(|s| s.schema_id)
        .max()
        .unwrap_or(0)
        + 1;
    let mut next = Schema::new(schema_id, fields);
    next.identifier_field_ids = schema.identifier_field_ids.clone();
    let mut m = current.clone();
    m.last_column_id = next.highest_field_id().max(current.last_column_id);
    m.current_schema_id = schema_id;
    m.schemas.push(next);
    m.record_previous(Some(location), now_ms);
    let at = next_metadata_location(&m.location, Some(location));
    Some((m, at))
}

/// Why a table cannot be created from its records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CreateError {
    #[error("the records give no column (no JSON object with a field that is not null)")]
    NoColumns,
    #[error("partition column {0:?} is not a top-level field of a primitive type in the records")]
    PartitionColumn(String),
}

/// A new table's first metadata at `location`: the columns of `records`, identity partitions
/// on the columns `partition` names (the only transform AWS's table creation applies).
pub(crate) fn new_table<'r>(
    location: &str,
    records: impl IntoIterator<Item = &'r [u8]>,
    partition: &[String],
    now_ms: i64,
) -> Result<TableMetadata, CreateError> {
    let mut ids = Ids::after(0);
    let mut columns = new_columns(records, |_| false, &mut ids);
    if columns.is_empty() {
        return Err(CreateError::NoColumns);
    }
    let mut ids = Ids::after(0);
    columns.iter_mut().for_each(|c| renumber(c, &mut ids));
    let schema = Schema::new(0, columns);
    let spec = partition
        .iter()
        .enumerate()
        .map(|(i, name)| match schema.field(name) {
            Some(f) if f.ty.is_primitive() => Ok(PartitionField {
                name: name.clone(),
                transform: "identity".into(),
                source_id: f.id,
                field_id: FIRST_PARTITION_FIELD_ID + i as i32,
            }),
            _ => Err(CreateError::PartitionColumn(name.clone())),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TableMetadata::new(
        location,
        schema,
        spec,
        // What Iceberg's writers default to, said out loud for other engines.
        BTreeMap::from([(
            "write.parquet.compression-codec".to_string(),
            "zstd".to_string(),
        )]),
        now_ms,
    ))
}

fn renumber(f: &mut NestedField, ids: &mut Ids) {
    f.id = ids.next();
    renumber_type(&mut f.ty, ids);
}

fn renumber_type(t: &mut Type, ids: &mut Ids) {
    match t {
        Type::Struct(s) => s.fields.iter_mut().for_each(|f| renumber(f, ids)),
        Type::List(l) => {
            l.element_id = ids.next();
            renumber_type(&mut l.element, ids);
        }
        Type::Map(m) => {
            m.key_id = ids.next();
            m.value_id = ids.next();
            renumber_type(&mut m.key, ids);
            renumber_type(&mut m.value, ids);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_table_has_the_records_columns_and_identity_partitions() {
        let records: Vec<&[u8]> = vec![br#"{"id": 1, "region": "eu", "o": {"a": [1]}}"#];
        let m = new_table("file:///w/t", records.clone(), &["region".into()], 1).unwrap();
        let s = m.current_schema().unwrap();
        let names: Vec<(&str, i32)> = s.fields.iter().map(|f| (f.name.as_str(), f.id)).collect();
        // Fields in name order (a record's JSON object is read sorted), nested ids depth first.
        assert_eq!(names, vec![("id", 1), ("o", 2), ("region", 5)]);
        assert_eq!(m.last_column_id, 5);
        let spec = m.default_spec().unwrap();
        assert_eq!(spec.fields[0].source_id, 5);
        assert_eq!(spec.fields[0].transform, "identity");
        assert_eq!(
            new_table("file:///w/t", records, &["o".into()], 1).unwrap_err(),
            CreateError::PartitionColumn("o".into())
        );
        assert_eq!(
            new_table("file:///w/t", vec![b"[]".as_slice()], &[], 1).unwrap_err(),
            CreateError::NoColumns
        );
    }

    #[test]
    fn values_are_typed_as_documented_and_nulls_wait_for_a_value() {
        let mut ids = Ids::after(0);
        let records: Vec<&[u8]> = vec![
            br#"{"s": "x", "n": 1, "d": 1.5, "b": true, "z": null, "o": {"a": 1, "m": null}, "l": [null, 2]}"#,
            br#"{"z": "later", "e": []}"#,
        ];
        let cols = new_columns(records, |_| false, &mut ids);
        let by_name: BTreeMap<&str, &Type> =
            cols.iter().map(|c| (c.name.as_str(), &c.ty)).collect();
        assert_eq!(by_name["s"], &Type::String);
        assert_eq!(by_name["n"], &Type::Long);
        assert_eq!(by_name["d"], &Type::Double);
        assert_eq!(by_name["b"], &Type::Boolean);
        assert_eq!(
            by_name["z"],
            &Type::String,
            "typed by the first value that is not null"
        );
        let Type::Struct(o) = by_name["o"] else {
            panic!("o is a struct")
        };
        assert_eq!(o.fields[1].ty, Type::String);
        let Type::List(l) = by_name["l"] else {
            panic!("l is a list")
        };
        assert_eq!(*l.element, Type::Long);
        let Type::List(e) = by_name["e"] else {
            panic!("e is a list")
        };
        assert_eq!(*e.element, Type::String);
        let all: Vec<i32> = cols.iter().map(|c| c.id).collect();
        let mut unique = all.clone();
        unique.dedup();
        assert_eq!(all, unique);
        assert!(cols.iter().all(|c| !c.required));
    }

    #[test]
    fn added_columns_take_ids_after_the_table_s_and_keep_the_old_schema() {
        let schema = Schema::new(0, vec![NestedField::new(1, "id", true, Type::Long)]);
        let m = TableMetadata::new("file:///w/t", schema, vec![], BTreeMap::new(), 1);
        let loc = "file:///w/t/metadata/00000-a.metadata.json";
        let mut ids = Ids::after(0);
        let cols = new_columns(
            [br#"{"id": 1, "tags": ["a"], "name": "x"}"#.as_slice()],
            |n| n == "id",
            &mut ids,
        );
        let (next, at) = add_columns(&m, loc, &cols, 5).expect("columns added");
        assert!(at.starts_with("file:///w/t/metadata/00001-"));
        assert_eq!(next.schemas.len(), 2);
        assert_eq!(next.current_schema_id, 1);
        let s = next.current_schema().expect("schema");
        let ids: Vec<(String, i32)> = s.fields.iter().map(|f| (f.name.clone(), f.id)).collect();
        assert_eq!(
            ids,
            vec![("id".into(), 1), ("name".into(), 2), ("tags".into(), 3)]
        );
        assert_eq!(next.last_column_id, 4);
        assert_eq!(next.metadata_log.len(), 1);
        // Nothing new: nothing to commit.
        assert!(add_columns(&next, &at, &cols, 6).is_none());
        assert!(brings_columns(br#"{"id": 2, "other": 1}"#, s));
        assert!(!brings_columns(br#"{"id": 2, "other": null}"#, s));
    }
}
