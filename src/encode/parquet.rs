//! The Parquet output of format conversion: AWS's `ParquetSerDe` options and the writer
//! properties they make. The rows come from `encode::columnar`; `encode::conversion` writes
//! them with parquet's `ArrowWriter`.

use parquet::basic::{GzipLevel, ZstdLevel};
use parquet::file::properties::{WriterProperties, WriterVersion};

use super::columnar::TimestampUnit;

/// The compression inside the Parquet file (ZSTD is firehosed's addition to AWS's three).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ParquetCompression {
    Uncompressed,
    Gzip,
    Snappy,
    Zstd,
}

impl ParquetCompression {
    pub(crate) const ALL: [ParquetCompression; 4] = [
        ParquetCompression::Uncompressed,
        ParquetCompression::Gzip,
        ParquetCompression::Snappy,
        ParquetCompression::Zstd,
    ];

    /// AWS's spelling (ParquetSerDe's Compression), and firehosed's for ZSTD.
    pub(crate) fn api_name(self) -> &'static str {
        match self {
            ParquetCompression::Uncompressed => "UNCOMPRESSED",
            ParquetCompression::Gzip => "GZIP",
            ParquetCompression::Snappy => "SNAPPY",
            ParquetCompression::Zstd => "ZSTD",
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
    /// (firehosed's memory bound; a row group ends at this or at the block size, or at the end
    /// of a segment of twice this in JSON: `encode::conversion`).
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

    pub(crate) fn properties(&self) -> WriterProperties {
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
