//! Record format conversion (docs/aws-behaviour.md section 8): JSON records into Parquet files typed by a
//! Hive schema. `schema` reads the column types, `json` parses a record, `rows` and `values`
//! turn its objects into column values (`columns` holds them, and can take a failed record
//! back out), `timestamp` reads times. `ParquetWriter` writes rows to the staging file in
//! batches and row groups as they arrive, so memory is bounded by the row-group buffer, not by
//! the object size.

pub(crate) mod columns;
pub(crate) mod json;
pub(crate) mod rows;
pub mod schema;
pub(crate) mod timestamp;
pub(crate) mod values;

use std::io::{self, Write};
use std::sync::Arc;

use arrow_array::{Array, RecordBatch, StructArray};
use arrow_schema::{SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::{GzipLevel, ZstdLevel};
use parquet::file::properties::{WriterProperties, WriterVersion};

use crate::encode::orc::OrcWriter;
use columns::Builder;
pub(crate) use rows::KeyRules;
pub use rows::{Misfit, Rules};
pub use schema::{Column, HiveType};

/// Rows gathered before they are encoded into the row group.
const BATCH_ROWS: usize = 8192;
/// Record bytes gathered before they are encoded into the row group.
const BATCH_BYTES: usize = 4 * 1024 * 1024;

/// The compression inside the Parquet file (ZSTD is firehosed's addition to AWS's three).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ParquetCompression {
    Uncompressed,
    Gzip,
    Snappy,
    Zstd,
}

impl ParquetCompression {
    pub(crate) const NAMES: [&'static str; 4] = ["UNCOMPRESSED", "GZIP", "SNAPPY", "ZSTD"];

    pub(crate) fn from_index(i: usize) -> Self {
        match i {
            0 => ParquetCompression::Uncompressed,
            1 => ParquetCompression::Gzip,
            3 => ParquetCompression::Zstd,
            _ => ParquetCompression::Snappy,
        }
    }
}

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

/// `output.parquet`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ParquetOptions {
    pub compression: ParquetCompression,
    /// AWS's BlockSizeBytes: the most a row group holds.
    pub block_size_bytes: u64,
    pub page_size_bytes: u64,
    pub dictionary: bool,
    /// Accepted as AWS does; firehosed writes no padding.
    pub max_padding_bytes: u64,
    /// V2 writes data pages v2.
    pub v2: bool,
    /// Encoded bytes a row group may hold in memory before it is written to the staging file
    /// (firehosed's memory bound; a row group ends at this or at the block size).
    pub row_group_buffer_bytes: u64,
    pub timestamp_unit: TimestampUnit,
}

impl ParquetOptions {
    pub const DEFAULT: ParquetOptions = ParquetOptions {
        compression: ParquetCompression::Snappy,
        block_size_bytes: 256 * 1024 * 1024,
        page_size_bytes: 1024 * 1024,
        dictionary: true,
        max_padding_bytes: 0,
        v2: false,
        row_group_buffer_bytes: 16 * 1024 * 1024,
        timestamp_unit: TimestampUnit::Micros,
    };

    fn properties(&self) -> WriterProperties {
        let compression = match self.compression {
            ParquetCompression::Uncompressed => parquet::basic::Compression::UNCOMPRESSED,
            ParquetCompression::Gzip => parquet::basic::Compression::GZIP(GzipLevel::default()),
            ParquetCompression::Snappy => parquet::basic::Compression::SNAPPY,
            ParquetCompression::Zstd => parquet::basic::Compression::ZSTD(ZstdLevel::default()),
        };
        let row_group = self.block_size_bytes.min(self.row_group_buffer_bytes) as usize;
        WriterProperties::builder()
            .set_compression(compression)
            .set_data_page_size_limit(self.page_size_bytes as usize)
            .set_dictionary_enabled(self.dictionary)
            .set_writer_version(if self.v2 {
                WriterVersion::PARQUET_2_0
            } else {
                WriterVersion::PARQUET_1_0
            })
            .set_max_row_group_bytes(Some(row_group))
            .set_max_row_group_row_count(None)
            .set_created_by(format!(
                "firehosed version {} (parquet-rs)",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
    }
}

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
    pub(crate) orc: Option<crate::encode::orc::OrcOptions>,
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
        let schema = Arc::new(schema::arrow_schema(
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
            schema,
        }
    }

    /// Writes ORC files with these options instead of Parquet.
    pub fn with_orc(mut self, orc: crate::encode::orc::OrcOptions) -> Conversion {
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
    pub fn writer<W: Write + Send>(self: &Arc<Self>, out: W) -> io::Result<ParquetWriter<W>> {
        let writer = match &self.orc {
            Some(orc) => {
                let columns: Vec<(String, HiveType)> = self
                    .columns
                    .iter()
                    .map(|c| (c.name.clone(), c.ty.clone()))
                    .collect();
                let buffer = self.options.row_group_buffer_bytes;
                FileWriter::Orc(Box::new(OrcWriter::new(out, &columns, orc, buffer)?))
            }
            None => FileWriter::Parquet(Box::new(
                ArrowWriter::try_new(out, self.schema.clone(), Some(self.properties.clone()))
                    .map_err(io::Error::other)?,
            )),
        };
        Ok(ParquetWriter {
            root: self.row_builder(),
            conversion: self.clone(),
            batch_bytes: 0,
            writer,
        })
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
enum FileWriter<W: Write + Send> {
    Parquet(Box<ArrowWriter<W>>),
    Orc(Box<OrcWriter<W>>),
}

impl<W: Write + Send> FileWriter<W> {
    fn write(&mut self, rows: &StructArray) -> io::Result<()> {
        match self {
            FileWriter::Parquet(w) => w
                .write(&RecordBatch::from(rows.clone()))
                .map_err(io::Error::other),
            FileWriter::Orc(w) => w.write(rows),
        }
    }

    fn into_inner(self) -> io::Result<W> {
        match self {
            FileWriter::Parquet(w) => w.into_inner().map_err(io::Error::other),
            FileWriter::Orc(w) => w.finish(),
        }
    }

    fn inner(&self) -> &W {
        match self {
            FileWriter::Parquet(w) => w.inner(),
            FileWriter::Orc(w) => w.inner(),
        }
    }

    fn inner_mut(&mut self) -> &mut W {
        match self {
            FileWriter::Parquet(w) => w.inner_mut(),
            FileWriter::Orc(w) => w.inner_mut(),
        }
    }

    fn in_progress_rows(&self) -> usize {
        match self {
            FileWriter::Parquet(w) => w.in_progress_rows(),
            FileWriter::Orc(w) => w.in_progress_rows() as usize,
        }
    }

    /// Ends the row group or stripe being built and flushes it to the file.
    fn flush_to_file(&mut self) -> io::Result<()> {
        match self {
            FileWriter::Parquet(w) => {
                w.flush().map_err(io::Error::other)?;
                w.sync()
            }
            FileWriter::Orc(w) => {
                w.flush_stripe()?;
                w.inner_mut().flush()
            }
        }
    }
}

/// One Parquet (or ORC) file being written.
pub struct ParquetWriter<W: Write + Send> {
    conversion: Arc<Conversion>,
    root: Builder,
    batch_bytes: usize,
    writer: FileWriter<W>,
}

impl<W: Write + Send> ParquetWriter<W> {
    /// Converts one record: the rows it added, or (inner error) why it does not fit the
    /// schema, in which case nothing of it is written. The outer error is an I/O failure.
    pub fn append(&mut self, data: &[u8]) -> io::Result<Result<usize, Misfit>> {
        match rows::read_record(&mut self.root, data, &self.conversion.rules) {
            Ok(rows) => {
                self.batch_bytes += data.len();
                if self.root.len() >= BATCH_ROWS || self.batch_bytes >= BATCH_BYTES {
                    self.write_batch()?;
                }
                Ok(Ok(rows))
            }
            Err(why) => Ok(Err(why)),
        }
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
        self.writer.write(rows)
    }

    /// Ends the file (footer written); returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.write_batch()?;
        self.writer.into_inner()
    }
}

impl<W: Park + Send> ParquetWriter<W> {
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

#[cfg(test)]
mod tests;
