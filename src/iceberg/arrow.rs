//! An Iceberg schema as the converter writes it: the columns records are read into (AWS's
//! value rules for Iceberg: top-level keys by exact name, timestamps in epoch microseconds),
//! and the Arrow schema of the data files, every field carrying its Iceberg id
//! (`PARQUET:field_id`, which parquet's writer puts in the Parquet schema) and required
//! columns not nullable.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, Schema as ArrowSchema, TimeUnit};
use parquet::arrow::PARQUET_FIELD_ID_META_KEY;

use super::catalog::TableIdent;
use super::types::{NestedField, Schema, Type};
use crate::encode::columnar::timestamp::{Format, TimestampRules};
use crate::encode::columnar::{Column, HiveType, KeyRules, Rules};
use crate::encode::conversion::{CatalogTable, Conversion, TableFile};
use crate::encode::parquet::{ParquetCompression, ParquetOptions};

/// The converter's type of an Iceberg type.
pub(crate) fn column_type(t: &Type) -> HiveType {
    match t {
        Type::Boolean => HiveType::Boolean,
        Type::Int => HiveType::Int,
        Type::Long => HiveType::BigInt,
        Type::Float => HiveType::Float,
        Type::Double => HiveType::Double,
        Type::Decimal { precision, scale } => HiveType::Decimal {
            precision: *precision,
            scale: *scale,
        },
        Type::Date => HiveType::Date,
        Type::Time => HiveType::Time,
        Type::Timestamp => HiveType::Timestamp,
        Type::TimestampTz => HiveType::TimestampTz,
        Type::String => HiveType::String,
        Type::Uuid => HiveType::Uuid,
        Type::Fixed(n) => HiveType::Fixed(*n),
        Type::Binary => HiveType::Binary,
        Type::Struct(s) => HiveType::Struct(
            s.fields
                .iter()
                .map(|f| (f.name.clone(), column_type(&f.ty)))
                .collect(),
        ),
        Type::List(l) => HiveType::Array(Box::new(column_type(&l.element))),
        Type::Map(m) => HiveType::Map(
            Box::new(column_type(&m.key)),
            Box::new(column_type(&m.value)),
        ),
    }
}

fn with_id(field: Field, id: i32) -> Field {
    field.with_metadata(HashMap::from([(
        PARQUET_FIELD_ID_META_KEY.to_string(),
        id.to_string(),
    )]))
}

/// The Arrow type of a data file's column: the converter's, with ids on the nested fields.
/// Nested fields stay nullable (the converter reads a missing member as null).
fn file_type(t: &Type) -> DataType {
    match t {
        Type::Struct(s) => DataType::Struct(
            s.fields
                .iter()
                .map(|f| with_id(Field::new(&f.name, file_type(&f.ty), true), f.id))
                .collect::<Fields>(),
        ),
        Type::List(l) => DataType::List(Arc::new(with_id(
            Field::new("element", file_type(&l.element), true),
            l.element_id,
        ))),
        Type::Map(m) => {
            let entries = DataType::Struct(Fields::from(vec![
                with_id(Field::new("key", file_type(&m.key), false), m.key_id),
                with_id(Field::new("value", file_type(&m.value), true), m.value_id),
            ]));
            DataType::Map(Arc::new(Field::new("key_value", entries, false)), false)
        }
        other => column_type(other).arrow(TimeUnit::Microsecond),
    }
}

fn file_field(f: &NestedField) -> Field {
    with_id(Field::new(&f.name, file_type(&f.ty), !f.required), f.id)
}

/// The conversion that writes `schema`'s data files for table `t`.
pub(crate) fn conversion(schema: &Schema, t: &TableIdent) -> Conversion {
    let columns: Vec<Column> = schema
        .fields
        .iter()
        .map(|f| Column {
            name: f.name.clone(),
            ty: column_type(&f.ty),
        })
        .collect();
    let rules = Rules {
        // AWS: "only top-level JSON keys map to columns, by exact name".
        keys: KeyRules {
            case_insensitive: false,
            dots_to_underscores: false,
        },
        timestamps: TimestampRules {
            formats: vec![Format::Micros],
        },
        iceberg: true,
    };
    let options = ParquetOptions {
        // Iceberg's default codec (`write.parquet.compression-codec`: zstd).
        compression: ParquetCompression::Zstd,
        ..ParquetOptions::DEFAULT
    };
    let table = CatalogTable {
        catalog_id: None,
        database: Some(t.namespace.clone()),
        table: Some(t.name.clone()),
        region: None,
    };
    let file = TableFile {
        schema: Arc::new(ArrowSchema::new(
            schema.fields.iter().map(file_field).collect::<Vec<_>>(),
        )),
        required: schema
            .fields
            .iter()
            .enumerate()
            .filter(|(_, f)| f.required)
            .map(|(i, _)| i)
            .collect(),
    };
    Conversion::new(columns, rules, Vec::new(), options, table).with_table_file(file)
}
