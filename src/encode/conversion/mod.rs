//! Record format conversion (docs/aws-behaviour.md section 8): a destination's `Conversion`
//! (schema, SerDe rules, output options) and the `RowWriter` of one file. Records become rows
//! in `encode::columnar`; the rows go to one of two outputs, Parquet (parquet's `ArrowWriter`
//! with `encode::parquet`'s properties) or ORC (`encode::orc`), in batches and row groups (or
//! stripes) as they arrive, encoded beside the staging thread (`segments`), so memory is bounded
//! by the row-group buffer (about two of them, and a few batches, with two segments alive), not
//! by the object size.

use std::io::{self, Write};
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, ListArray, MapArray, RecordBatch, StructArray};
use arrow_schema::{ArrowError, DataType, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;

use super::columnar::columns::Builder;
use super::columnar::{self, Column, HiveType, Misfit, Rules};
use super::orc::{OrcFile, OrcOptions, StripeEncoder};
use super::parquet::ParquetOptions;
use row_groups::RowGroups;
pub use segments::Mode;
use segments::Segments;

mod row_groups;
mod segments;
mod stripes;

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

    /// A writer of one Parquet (or ORC) file into `out`, encoding on the calling thread.
    pub fn writer<W: Write + Send>(self: &Arc<Self>, out: W) -> io::Result<RowWriter<W>> {
        self.writer_in(out, Mode::Inline)
    }

    /// A writer of one Parquet (or ORC) file into `out`, its segments encoded as `mode` says.
    pub fn writer_in<W: Write + Send>(
        self: &Arc<Self>,
        out: W,
        mode: Mode,
    ) -> io::Result<RowWriter<W>> {
        let writer = match &self.orc {
            Some(orc) => self.orc_output(out, orc, mode)?,
            None => self.parquet_output(out, mode)?,
        };
        Ok(RowWriter {
            root: self.row_builder(),
            conversion: self.clone(),
            batch_bytes: 0,
            writer,
        })
    }
}

/// Record bytes in a segment (`segments`) when a row group or stripe holds at most `bound`
/// encoded bytes: twice that. Records that encode to more than half their JSON size fill row
/// groups inside a segment; most JSON encodes smaller (the bench's events to a third), and then
/// each segment ends a row group of about twice the bound in JSON, which keeps two segments in
/// memory at about what one full row group used to hold.
fn segment_bytes(bound: u64) -> usize {
    (bound as usize).saturating_mul(2)
}

impl Conversion {
    fn parquet_output<W: Write + Send>(&self, out: W, mode: Mode) -> io::Result<Output<W>> {
        let schema = match &self.table_file {
            Some(t) => t.schema.clone(),
            None => self.schema.clone(),
        };
        // Through `ArrowWriter` so that the file carries the Arrow schema as it always did.
        let (file, factory) =
            ArrowWriter::try_new(out, schema.clone(), Some(self.properties.clone()))
                .and_then(ArrowWriter::into_serialized_writer)
                .map_err(io::Error::other)?;
        let factory = Arc::new(factory);
        let retype = self.table_file.is_some();
        let bound = self
            .options
            .block_size_bytes
            .min(self.options.row_group_buffer_bytes);
        let make = move || RowGroups::new(factory.clone(), schema.clone(), retype, bound as usize);
        Ok(Output::Parquet {
            file: Box::new(file),
            segments: Box::new(Segments::new(Box::new(make), mode, segment_bytes(bound))),
        })
    }

    fn orc_output<W: Write + Send>(
        &self,
        out: W,
        orc: &OrcOptions,
        mode: Mode,
    ) -> io::Result<Output<W>> {
        let columns: Vec<(String, HiveType)> = self
            .columns
            .iter()
            .map(|c| (c.name.clone(), c.ty.clone()))
            .collect();
        let buffer = self.options.row_group_buffer_bytes;
        let file = OrcFile::new(out, &columns, orc)?;
        let bound = orc.stripe_size_bytes.min(buffer);
        let orc = orc.clone();
        let make = move || StripeEncoder::new(&columns, &orc, buffer);
        Ok(Output::Orc {
            file: Box::new(file),
            segments: Box::new(Segments::new(Box::new(make), mode, segment_bytes(bound))),
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

/// What encodes the rows: Parquet row groups in segments, or ORC's writer.
enum Output<W: Write + Send> {
    Parquet {
        file: Box<SerializedFileWriter<W>>,
        segments: Box<Segments<RowGroups>>,
    },
    Orc {
        file: Box<OrcFile<W>>,
        segments: Box<Segments<StripeEncoder>>,
    },
}

impl<W: Write + Send> Output<W> {
    /// Encodes rows read from `bytes` of records.
    fn write(&mut self, rows: &StructArray, bytes: usize) -> io::Result<()> {
        match self {
            Output::Parquet { file, segments } => segments.push(rows.clone(), bytes, &mut **file),
            Output::Orc { file, segments } => segments.push(rows.clone(), bytes, &mut **file),
        }
    }

    /// Writes the row groups (stripes) already encoded, without waiting for any.
    fn write_ready(&mut self) -> io::Result<()> {
        match self {
            Output::Parquet { file, segments } => segments.write_ready(&mut **file),
            Output::Orc { file, segments } => segments.write_ready(&mut **file),
        }
    }

    fn into_inner(self) -> io::Result<W> {
        match self {
            Output::Parquet {
                mut file,
                mut segments,
            } => {
                segments.drain(&mut *file)?;
                file.into_inner().map_err(io::Error::other)
            }
            Output::Orc {
                mut file,
                mut segments,
            } => {
                segments.drain(&mut *file)?;
                file.finish()
            }
        }
    }

    fn inner(&self) -> &W {
        match self {
            Output::Parquet { file, .. } => file.inner(),
            Output::Orc { file, .. } => file.inner(),
        }
    }

    fn inner_mut(&mut self) -> &mut W {
        match self {
            Output::Parquet { file, .. } => file.inner_mut(),
            Output::Orc { file, .. } => file.inner_mut(),
        }
    }

    fn in_progress_rows(&self) -> usize {
        match self {
            Output::Parquet { segments, .. } => segments.unwritten_rows(),
            Output::Orc { segments, .. } => segments.unwritten_rows(),
        }
    }

    /// Ends the row group or stripe being built and flushes it to the file.
    fn flush_to_file(&mut self) -> io::Result<()> {
        match self {
            Output::Parquet { file, segments } => {
                segments.drain(&mut **file)?;
                file.flush()
            }
            Output::Orc { file, segments } => {
                segments.drain(&mut **file)?;
                file.inner_mut().flush()
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
        let bytes = std::mem::take(&mut self.batch_bytes);
        if self.root.is_empty() {
            return Ok(());
        }
        let array = self.root.finish().map_err(io::Error::other)?;
        let Some(rows) = array.as_any().downcast_ref::<StructArray>() else {
            return Err(io::Error::other("the row builder is not a struct"));
        };
        self.writer.write(rows, bytes)
    }

    /// Writes to the file the row groups (stripes) encoded beside since the last call, so that
    /// they wait on disk, not in memory, while the object stays open.
    pub fn write_ready(&mut self) -> io::Result<()> {
        self.writer.write_ready()
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
