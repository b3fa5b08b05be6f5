//! Record format conversion (docs/aws-behaviour.md section 8): a destination's `Conversion`
//! (schema, SerDe rules, output options) and the `RowWriter` of one file. Records become rows
//! in `encode::columnar`; the rows go to one of two outputs, Parquet (parquet's `ArrowWriter`
//! with `encode::parquet`'s properties) or ORC (`encode::orc`), in batches and row groups (or
//! stripes) as they arrive, so memory is bounded by the row-group buffer, not by the object
//! size.

use std::io::{self, Write};
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, ListArray, MapArray, RecordBatch, StructArray};
use arrow_schema::{ArrowError, DataType, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

use super::columnar::columns::Builder;
use super::columnar::{self, Column, HiveType, Misfit, Rules};
use super::orc::{OrcOptions, OrcWriter};
use super::parquet::ParquetOptions;

/// Rows gathered before they are encoded into the row group.
const BATCH_ROWS: usize = 8192;
/// Record bytes gathered before they are encoded into the row group.
const BATCH_BYTES: usize = 4 * 1024 * 1024;

/// The Glue table a destination's schema stands for, named in error records.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CatalogTable {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) catalog_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) database: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) table: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) region: Option<String>,
}

/// Which SerDe the configuration named (reported by DescribeDeliveryStream; the rules it
/// implies are in `Rules`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum Deserializer {
    #[default]
    OpenX,
    /// With its `timestamp_formats` as written.
    Hive(Vec<String>),
}

/// Which error records the records that do not fit become.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum MisfitOutput {
    /// `format-conversion-failed`, naming the Glue table (AWS's format conversion).
    #[default]
    FormatConversion,
    /// `iceberg-failed`, with an Iceberg error code.
    Iceberg,
}

/// What an Iceberg table's files need beyond a Glue table's: the Arrow schema they are written
/// with (every field's Iceberg id in its metadata, required columns not nullable), and which
/// columns are required.
#[derive(Debug)]
pub(crate) struct TableFile {
    pub(crate) schema: SchemaRef,
    /// Indexes of the required top-level columns.
    pub(crate) required: Vec<usize>,
}

/// A destination's format conversion, ready to make writers.
#[derive(Debug)]
pub struct Conversion {
    pub(crate) columns: Vec<Column>,
    pub(crate) rules: Rules,
    /// `column_to_json_key_mappings`: column -> the JSON key that fills it.
    pub(crate) mappings: Vec<(String, String)>,
    pub(crate) options: ParquetOptions,
    pub(crate) table: CatalogTable,
    pub(crate) deserializer: Deserializer,
    /// `output.orc`: the files are ORC, not Parquet (`options` still gives the timestamp
    /// unit and the memory bound).
    pub(crate) orc: Option<OrcOptions>,
    /// An Iceberg table's data files: one JSON object per record, required columns checked,
    /// written with the table's field ids.
    pub(crate) table_file: Option<TableFile>,
    pub(crate) misfits: MisfitOutput,
    /// Where the error records of misfits go instead of the destination's error prefix (an
    /// Iceberg table's own), as written.
    pub(crate) error_prefix: Option<Arc<str>>,
    schema: SchemaRef,
    properties: WriterProperties,
}

impl Conversion {
    pub fn new(
        columns: Vec<Column>,
        rules: Rules,
        mappings: Vec<(String, String)>,
        options: ParquetOptions,
        table: CatalogTable,
    ) -> Conversion {
        let schema = Arc::new(columnar::schema::arrow_schema(
            &columns,
            options.timestamp_unit.arrow(),
        ));
        Conversion {
            columns,
            rules,
            mappings,
            properties: options.properties(),
            options,
            table,
            deserializer: Deserializer::default(),
            orc: None,
            table_file: None,
            misfits: MisfitOutput::FormatConversion,
            error_prefix: None,
            schema,
        }
    }

    /// Error records of misfits go under `prefix` (None: the destination's).
    pub(crate) fn with_error_prefix(mut self, prefix: Option<Arc<str>>) -> Conversion {
        self.error_prefix = prefix;
        self
    }

    /// Writes an Iceberg table's data files: `file` holds the schema with the field ids.
    pub(crate) fn with_table_file(mut self, file: TableFile) -> Conversion {
        self.table_file = Some(file);
        self.misfits = MisfitOutput::Iceberg;
        self
    }

    /// Writes ORC files with these options instead of Parquet.
    pub fn with_orc(mut self, orc: OrcOptions) -> Conversion {
        self.orc = Some(orc);
        self
    }

    #[cfg(test)]
    pub(crate) fn schema(&self) -> &arrow_schema::Schema {
        &self.schema
    }

    /// The builder of a batch of rows.
    fn row_builder(&self) -> Builder {
        let fields: Vec<(String, HiveType)> = self
            .columns
            .iter()
            .map(|c| (c.name.clone(), c.ty.clone()))
            .collect();
        let keys = self.rules.keys;
        let key_of = |name: &str| keys.normalize(name).into_owned();
        let mut root = Builder::structure(
            &fields,
            self.schema.fields().clone(),
            self.options.timestamp_unit.arrow(),
            &key_of,
        );
        if let Builder::Struct { lookup, names, .. } = &mut root {
            for (column, key) in &self.mappings {
                if let Some(i) = names.iter().position(|n| n == column) {
                    lookup.rename(i, key_of(key));
                }
            }
        }
        root
    }

    /// A writer of one Parquet (or ORC) file into `out`.
    pub fn writer<W: Write + Send>(self: &Arc<Self>, out: W) -> io::Result<RowWriter<W>> {
        let writer = match &self.orc {
            Some(orc) => {
                let columns: Vec<(String, HiveType)> = self
                    .columns
                    .iter()
                    .map(|c| (c.name.clone(), c.ty.clone()))
                    .collect();
                let buffer = self.options.row_group_buffer_bytes;
                Output::Orc(Box::new(OrcWriter::new(out, &columns, orc, buffer)?))
            }
            None => {
                let schema = match &self.table_file {
                    Some(t) => t.schema.clone(),
                    None => self.schema.clone(),
                };
                Output::Parquet(Box::new(
                    ArrowWriter::try_new(out, schema, Some(self.properties.clone()))
                        .map_err(io::Error::other)?,
                ))
            }
        };
        Ok(RowWriter {
            root: self.row_builder(),
            conversion: self.clone(),
            batch_bytes: 0,
            writer,
        })
    }
}

/// A writer that can let go of its file while it waits (a suspended partition) and open it
/// again on the next write.
pub trait Park: Write {
    fn park(&mut self) -> io::Result<()>;
    fn is_parked(&self) -> bool;
}

impl Park for Vec<u8> {
    fn park(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn is_parked(&self) -> bool {
        false
    }
}

/// What encodes the rows: Parquet's writer or ORC's.
enum Output<W: Write + Send> {
    Parquet(Box<ArrowWriter<W>>),
    Orc(Box<OrcWriter<W>>),
}

impl<W: Write + Send> Output<W> {
    fn write(&mut self, rows: &StructArray, file: Option<&TableFile>) -> io::Result<()> {
        match self {
            Output::Parquet(w) => {
                let batch = match file {
                    Some(f) => retyped_batch(rows, &f.schema)?,
                    None => RecordBatch::from(rows.clone()),
                };
                w.write(&batch).map_err(io::Error::other)
            }
            Output::Orc(w) => w.write(rows),
        }
    }

    fn into_inner(self) -> io::Result<W> {
        match self {
            Output::Parquet(w) => w.into_inner().map_err(io::Error::other),
            Output::Orc(w) => w.finish(),
        }
    }

    fn inner(&self) -> &W {
        match self {
            Output::Parquet(w) => w.inner(),
            Output::Orc(w) => w.inner(),
        }
    }

    fn inner_mut(&mut self) -> &mut W {
        match self {
            Output::Parquet(w) => w.inner_mut(),
            Output::Orc(w) => w.inner_mut(),
        }
    }

    fn in_progress_rows(&self) -> usize {
        match self {
            Output::Parquet(w) => w.in_progress_rows(),
            Output::Orc(w) => w.in_progress_rows() as usize,
        }
    }

    /// Ends the row group or stripe being built and flushes it to the file.
    fn flush_to_file(&mut self) -> io::Result<()> {
        match self {
            Output::Parquet(w) => {
                w.flush().map_err(io::Error::other)?;
                w.sync()
            }
            Output::Orc(w) => {
                w.flush_stripe()?;
                w.inner_mut().flush()
            }
        }
    }
}

/// One Parquet (or ORC) file being written.
pub struct RowWriter<W: Write + Send> {
    conversion: Arc<Conversion>,
    root: Builder,
    batch_bytes: usize,
    writer: Output<W>,
}

impl<W: Write + Send> RowWriter<W> {
    /// Converts one record: the rows it added, or (inner error) why it does not fit the
    /// schema, in which case nothing of it is written. The outer error is an I/O failure.
    pub fn append(&mut self, data: &[u8]) -> io::Result<Result<usize, Misfit>> {
        let before = self.root.len();
        match columnar::rows::read_record(&mut self.root, data, &self.conversion.rules) {
            Ok(rows) => {
                if let Some(why) = self.table_misfit(rows) {
                    self.root.truncate(before);
                    return Ok(Err(why));
                }
                self.batch_bytes += data.len();
                if self.root.len() >= BATCH_ROWS || self.batch_bytes >= BATCH_BYTES {
                    self.write_batch()?;
                }
                Ok(Ok(rows))
            }
            Err(why) => Ok(Err(why)),
        }
    }

    /// Why the row just read does not fit an Iceberg table: several objects in one record, or
    /// a required column without a value.
    fn table_misfit(&self, rows: usize) -> Option<Misfit> {
        let file = self.conversion.table_file.as_ref()?;
        if rows != 1 {
            return Some(Misfit::several_objects());
        }
        let children = self.root.children();
        file.required
            .iter()
            .find(|i| children.get(**i).and_then(Builder::last_is_null) == Some(true))
            .map(|i| Misfit::missing(&self.conversion.columns[*i].name))
    }

    /// Encodes the gathered rows into the row group (which goes to the file when full).
    fn write_batch(&mut self) -> io::Result<()> {
        self.batch_bytes = 0;
        if self.root.is_empty() {
            return Ok(());
        }
        let array = self.root.finish().map_err(io::Error::other)?;
        let Some(rows) = array.as_any().downcast_ref::<StructArray>() else {
            return Err(io::Error::other("the row builder is not a struct"));
        };
        self.writer.write(rows, self.conversion.table_file.as_ref())
    }

    /// Ends the file (footer written); returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.write_batch()?;
        self.writer.into_inner()
    }
}

impl<W: Park + Send> RowWriter<W> {
    /// Whether the file is let go of (`suspend`) and nothing was written since.
    pub(crate) fn is_suspended(&self) -> bool {
        self.writer.inner().is_parked()
            && self.root.is_empty()
            && self.writer.in_progress_rows() == 0
    }

    /// Writes what is gathered as a row group and lets go of the file: memory and the file
    /// handle are freed until the next record.
    pub(crate) fn suspend(&mut self) -> io::Result<()> {
        self.write_batch()?;
        // Drop the batch buffers sized for a busy partition; a fresh builder starts small.
        self.root = self.conversion.row_builder();
        self.writer.flush_to_file()?;
        self.writer.inner_mut().park()
    }
}

/// The rows as a batch of `schema`: the same columns, with the schema's field metadata (an
/// Iceberg table's field ids) and nullability, which Arrow compares as part of a type.
fn retyped_batch(rows: &StructArray, schema: &SchemaRef) -> io::Result<RecordBatch> {
    let columns = rows
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| retype(c.clone(), f.data_type()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(io::Error::other)?;
    RecordBatch::try_new(schema.clone(), columns).map_err(io::Error::other)
}

/// `array` as type `to`, which differs from its own at most in nested fields' names, metadata
/// and nullability: structs, lists and maps are rebuilt around the same buffers.
fn retype(array: ArrayRef, to: &DataType) -> Result<ArrayRef, ArrowError> {
    if array.data_type() == to {
        return Ok(array);
    }
    Ok(match to {
        DataType::Struct(fields) => {
            let Some(s) = array.as_any().downcast_ref::<StructArray>() else {
                return Ok(array);
            };
            let (_, columns, nulls) = s.clone().into_parts();
            let columns = columns
                .into_iter()
                .zip(fields)
                .map(|(c, f)| retype(c, f.data_type()))
                .collect::<Result<Vec<_>, _>>()?;
            Arc::new(StructArray::try_new(fields.clone(), columns, nulls)?)
        }
        DataType::List(field) => {
            let Some(l) = array.as_any().downcast_ref::<ListArray>() else {
                return Ok(array);
            };
            let (_, offsets, values, nulls) = l.clone().into_parts();
            let values = retype(values, field.data_type())?;
            Arc::new(ListArray::try_new(field.clone(), offsets, values, nulls)?)
        }
        DataType::Map(field, _) => {
            let Some(m) = array.as_any().downcast_ref::<MapArray>() else {
                return Ok(array);
            };
            let (_, offsets, entries, nulls, ordered) = m.clone().into_parts();
            let entries = retype(Arc::new(entries), field.data_type())?;
            let Some(entries) = entries.as_any().downcast_ref::<StructArray>() else {
                return Ok(array);
            };
            Arc::new(MapArray::try_new(
                field.clone(),
                offsets,
                entries.clone(),
                nulls,
                ordered,
            )?)
        }
        _ => array,
    })
}

#[cfg(test)]
mod tests;
