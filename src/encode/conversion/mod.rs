//! Record format conversion (docs/aws-behaviour.md section 8): a destination's `Conversion`
//! (schema, SerDe rules, output options) and the `RowWriter` of one file. Records become rows
//! in `encode::columnar`; the rows go to one of two outputs, Parquet (parquet's `ArrowWriter`
//! with `encode::parquet`'s properties) or ORC (`encode::orc`), in batches and row groups (or
//! stripes) as they arrive, so memory is bounded by the row-group buffer, not by the object
//! size.

use std::io::{self, Write};
use std::sync::Arc;

use arrow_array::{Array, RecordBatch, StructArray};
use arrow_schema::SchemaRef;
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
            schema,
        }
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
            None => Output::Parquet(Box::new(
                ArrowWriter::try_new(out, self.schema.clone(), Some(self.properties.clone()))
                    .map_err(io::Error::other)?,
            )),
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
    fn write(&mut self, rows: &StructArray) -> io::Result<()> {
        match self {
            Output::Parquet(w) => w
                .write(&RecordBatch::from(rows.clone()))
                .map_err(io::Error::other),
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
        match columnar::rows::read_record(&mut self.root, data, &self.conversion.rules) {
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

#[cfg(test)]
mod tests;
