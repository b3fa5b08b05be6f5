//! Parquet row groups encoded apart from their file (`segments`): a segment's encoder owns
//! the column writers of its open row group (parquet's `ArrowColumnWriter`, made by the
//! file's `ArrowRowGroupWriterFactory`, so every property and the Arrow schema's metadata are
//! the file's), ends the row group when its estimated encoded size reaches the row-group bound
//! (a batch split by the average row so far, as parquet's `ArrowWriter` splits one), and hands
//! over its column chunks; the staging thread appends them to the file in order.

use std::io::{self, Write};
use std::sync::Arc;

use arrow_array::{RecordBatch, StructArray};
use arrow_schema::SchemaRef;
use parquet::arrow::arrow_writer::{
    ArrowColumnChunk, ArrowColumnWriter, ArrowRowGroupWriterFactory, compute_leaves,
};
use parquet::file::writer::SerializedFileWriter;

use super::segments::{Encoder, Part, PartSink};

/// A finished row group: one chunk per leaf column.
pub(super) struct RowGroup {
    chunks: Vec<ArrowColumnChunk>,
    rows: usize,
}

impl Part for RowGroup {
    fn rows(&self) -> usize {
        self.rows
    }
}

/// Encodes one segment's rows into row groups.
pub(super) struct RowGroups {
    factory: Arc<ArrowRowGroupWriterFactory>,
    /// The file's schema (an Iceberg table's, with field ids, when `retype`).
    schema: SchemaRef,
    retype: bool,
    max_bytes: usize,
    open: Option<(Vec<ArrowColumnWriter>, usize)>,
}

impl RowGroups {
    pub(super) fn new(
        factory: Arc<ArrowRowGroupWriterFactory>,
        schema: SchemaRef,
        retype: bool,
        max_bytes: usize,
    ) -> Self {
        RowGroups {
            factory,
            schema,
            retype,
            max_bytes,
            open: None,
        }
    }
}

impl RowGroups {
    /// Rows of `n` that fit the open row group: all when it is empty (nothing to estimate by),
    /// none when it is full.
    fn rows_that_fit(&self, n: usize) -> usize {
        let Some((_, rows)) = &self.open else {
            return n;
        };
        if *rows == 0 {
            return n;
        }
        let size = self.size();
        if size >= self.max_bytes {
            return 0;
        }
        let average = (size / rows).max(1);
        n.min((self.max_bytes - size) / average)
    }

    /// The open row group's estimated encoded size.
    fn size(&self) -> usize {
        self.open.as_ref().map_or(0, |(writers, _)| {
            writers.iter().map(|w| w.get_estimated_total_bytes()).sum()
        })
    }

    /// Encodes rows into the open row group (opening one if none is).
    fn write(&mut self, batch: &RecordBatch) -> io::Result<()> {
        let (writers, count) = match &mut self.open {
            Some(open) => open,
            None => self.open.insert((
                self.factory
                    .create_column_writers(0)
                    .map_err(io::Error::other)?,
                0,
            )),
        };
        let mut leaves_to = writers.iter_mut();
        for (field, column) in self.schema.fields().iter().zip(batch.columns()) {
            for leaf in compute_leaves(field, column).map_err(io::Error::other)? {
                let writer = leaves_to
                    .next()
                    .ok_or_else(|| io::Error::other("more leaves than column writers"))?;
                writer.write(&leaf).map_err(io::Error::other)?;
            }
        }
        *count += batch.num_rows();
        Ok(())
    }
}

impl Encoder for RowGroups {
    type Part = RowGroup;

    fn push(&mut self, rows: StructArray, done: &mut Vec<RowGroup>) -> io::Result<()> {
        let mut batch = match self.retype {
            true => super::retyped_batch(&rows, &self.schema)?,
            false => RecordBatch::from(rows),
        };
        // As parquet's ArrowWriter does: the rows that fit the open row group by its average
        // row so far go into it, the rest into the next, so a row group keeps to its bound.
        while batch.num_rows() > 0 {
            let fit = self.rows_that_fit(batch.num_rows());
            if fit == 0 {
                self.end(done)?;
                continue;
            }
            let rest = batch.slice(fit, batch.num_rows() - fit);
            self.write(&batch.slice(0, fit))?;
            if rest.num_rows() > 0 || self.size() >= self.max_bytes {
                self.end(done)?;
            }
            batch = rest;
        }
        Ok(())
    }

    fn end(&mut self, done: &mut Vec<RowGroup>) -> io::Result<()> {
        let Some((writers, rows)) = self.open.take() else {
            return Ok(());
        };
        if rows == 0 {
            return Ok(());
        }
        let chunks = writers
            .into_iter()
            .map(|w| w.close())
            .collect::<Result<Vec<_>, _>>()
            .map_err(io::Error::other)?;
        done.push(RowGroup { chunks, rows });
        Ok(())
    }
}

impl<W: Write + Send> PartSink<RowGroup> for SerializedFileWriter<W> {
    fn write_part(&mut self, part: RowGroup) -> io::Result<()> {
        let mut group = self.next_row_group().map_err(io::Error::other)?;
        for chunk in part.chunks {
            chunk
                .append_to_row_group(&mut group)
                .map_err(io::Error::other)?;
        }
        group.close().map_err(io::Error::other)?;
        Ok(())
    }
}
