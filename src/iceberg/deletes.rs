//! Delete files (Iceberg table specification, "Delete Formats"), written as Parquet: a
//! position delete file names rows of a data file by path and position (`file_path`, `pos`,
//! reserved field ids, sorted); an equality delete file holds the key columns' values of the
//! rows to remove, with the table's field ids, and its manifest entry names those columns
//! (`equality_ids`). Both are made whole in memory: an object's deletes are a small part of it.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema as ArrowSchema};
use parquet::arrow::{ArrowWriter, PARQUET_FIELD_ID_META_KEY};
use parquet::file::metadata::ParquetMetaDataReader;

use super::arrow::conversion;
use super::catalog::TableIdent;
use super::literal::Literal;
use super::manifest::{DataFile, FileContent};
use super::metrics::data_file;
use super::types::{NestedField, Schema, Type};

/// The reserved field ids of a position delete file's columns.
const FILE_PATH_ID: i32 = 2_147_483_546;
const POS_ID: i32 = 2_147_483_545;

#[derive(Debug, thiserror::Error)]
pub(crate) enum DeleteError {
    #[error("cannot write a delete file: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("cannot write a delete file: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    #[error("cannot write a delete file: {0}")]
    Io(#[from] std::io::Error),
    #[error("unique key {0:?} is not a column of the table")]
    KeyColumn(String),
}

/// The schema of position delete files.
fn position_schema() -> Schema {
    Schema::new(
        0,
        vec![
            NestedField::new(FILE_PATH_ID, "file_path", true, Type::String),
            NestedField::new(POS_ID, "pos", true, Type::Long),
        ],
    )
}

fn with_id(name: &str, ty: DataType, id: i32) -> Field {
    Field::new(name, ty, false).with_metadata(HashMap::from([(
        PARQUET_FIELD_ID_META_KEY.to_string(),
        id.to_string(),
    )]))
}

/// A written delete file: its bytes and its manifest entry once at `location`.
pub(crate) struct DeleteFile {
    pub(crate) location: String,
    pub(crate) bytes: Vec<u8>,
    pub(crate) entry: DataFile,
}

/// The position delete file removing rows `positions` (ascending) of data file `data`.
pub(crate) fn position_deletes(
    location: &str,
    data: &str,
    positions: &[u64],
    partition: Vec<Option<Literal>>,
) -> Result<DeleteFile, DeleteError> {
    let schema = Arc::new(ArrowSchema::new(vec![
        with_id("file_path", DataType::Utf8, FILE_PATH_ID),
        with_id("pos", DataType::Int64, POS_ID),
    ]));
    let paths: ArrayRef = Arc::new(StringArray::from(vec![data; positions.len()]));
    let pos: ArrayRef = Arc::new(Int64Array::from(
        positions.iter().map(|p| *p as i64).collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(schema.clone(), vec![paths, pos])?;
    let mut writer = ArrowWriter::try_new(Vec::new(), schema, None)?;
    writer.write(&batch)?;
    let bytes = writer.into_inner()?;
    let entry = entry(
        location,
        &bytes,
        &position_schema(),
        partition,
        FileContent::PositionDeletes,
    )?;
    Ok(DeleteFile {
        location: location.to_string(),
        bytes,
        entry,
    })
}

/// The equality delete file removing rows whose key columns (`keys`, top-level columns of
/// `schema`) hold one of `values` (JSON objects of the key columns), or None if no value fits
/// the columns (a key no row can have removes nothing). A key that is not a column is an error:
/// matching on fewer columns would remove more rows.
pub(crate) fn equality_deletes(
    location: &str,
    schema: &Schema,
    keys: &[String],
    values: &[Arc<str>],
    table: &TableIdent,
    partition: Vec<Option<Literal>>,
) -> Result<Option<DeleteFile>, DeleteError> {
    let fields: Vec<NestedField> = keys
        .iter()
        .map(|k| {
            schema
                .field(k)
                .cloned()
                .ok_or_else(|| DeleteError::KeyColumn(k.clone()))
        })
        .collect::<Result<_, _>>()?;
    let ids: Vec<i32> = fields.iter().map(|f| f.id).collect();
    let key_schema = Schema::new(schema.schema_id, fields);
    let c = Arc::new(conversion(&key_schema, table));
    let mut writer = c.writer(Vec::new())?;
    let mut rows = 0;
    for v in values {
        // A key that does not fit its columns is one no row can have: it removes nothing.
        if let Ok(n) = writer.append(v.as_bytes())? {
            rows += n;
        }
    }
    let bytes = writer.finish()?;
    if rows == 0 {
        return Ok(None);
    }
    let mut entry = entry(
        location,
        &bytes,
        &key_schema,
        partition,
        FileContent::EqualityDeletes,
    )?;
    entry.equality_ids = Some(ids);
    Ok(Some(DeleteFile {
        location: location.to_string(),
        bytes,
        entry,
    }))
}

/// The manifest entry of delete file `bytes`, from its footer.
fn entry(
    location: &str,
    bytes: &[u8],
    schema: &Schema,
    partition: Vec<Option<Literal>>,
    content: FileContent,
) -> Result<DataFile, DeleteError> {
    let footer =
        ParquetMetaDataReader::new().parse_and_finish(&bytes::Bytes::copy_from_slice(bytes))?;
    let mut f = data_file(location, bytes.len() as u64, &footer, schema, partition);
    f.content = content;
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows_of(bytes: &[u8]) -> Vec<RecordBatch> {
        parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(
            bytes::Bytes::copy_from_slice(bytes),
            1024,
        )
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
    }

    #[test]
    fn position_deletes_name_their_file_and_rows_with_the_reserved_ids() {
        let f = position_deletes(
            "file:///t/data/p.parquet",
            "file:///t/data/d.parquet",
            &[0, 3],
            vec![],
        )
        .unwrap();
        assert_eq!(f.entry.content, FileContent::PositionDeletes);
        assert_eq!(f.entry.record_count, 2);
        let batch = &rows_of(&f.bytes)[0];
        let schema = batch.schema();
        let ids: Vec<&str> = schema
            .fields()
            .iter()
            .map(|f| f.metadata()[PARQUET_FIELD_ID_META_KEY].as_str())
            .collect();
        assert_eq!(ids, vec!["2147483546", "2147483545"]);
        let pos = batch
            .column(1)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(pos.values().to_vec(), vec![0, 3]);
    }

    #[test]
    fn equality_deletes_hold_the_key_columns_and_name_them() {
        let schema = Schema::new(
            0,
            vec![
                NestedField::new(1, "id", true, Type::Long),
                NestedField::new(2, "name", false, Type::String),
            ],
        );
        let keys = vec!["id".to_string()];
        let t = TableIdent::new("db", "t");
        let values: Vec<Arc<str>> = vec![r#"{"id":7}"#.into(), r#"{"id":"x"}"#.into()];
        let f = equality_deletes(
            "file:///t/data/e.parquet",
            &schema,
            &keys,
            &values,
            &t,
            vec![],
        )
        .unwrap()
        .unwrap();
        assert_eq!(f.entry.content, FileContent::EqualityDeletes);
        assert_eq!(f.entry.equality_ids, Some(vec![1]));
        // A key that cannot be a row's ("x" in a long column) removes nothing: left out.
        assert_eq!(f.entry.record_count, 1);
        let batch = &rows_of(&f.bytes)[0];
        assert_eq!(batch.num_columns(), 1);
        let none: Vec<Arc<str>> = vec![r#"{"id":"x"}"#.into()];
        assert!(
            equality_deletes(
                "file:///t/data/e.parquet",
                &schema,
                &keys,
                &none,
                &t,
                vec![]
            )
            .unwrap()
            .is_none()
        );
    }
}
