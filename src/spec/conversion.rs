//! `data_format_conversion` as data: the schema's columns (inline, read from a Glue-style file
//! or from the Data Catalog: the columns, whatever their source), how JSON is read (AWS's
//! OpenX or Hive JSON SerDe), and the output's options (Parquet or ORC). `streams::build`
//! makes the `Conversion` (Arrow schema, writer properties) from it.

use serde::Serialize;

use crate::encode::columnar::Column;
use crate::encode::conversion::CatalogTable;
use crate::encode::orc::OrcOptions;
use crate::encode::parquet::ParquetOptions;

/// A destination's format conversion.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ConversionSpec {
    /// Names lowercased and unique, types parsed (their canonical text is what is compared).
    #[serde(serialize_with = "columns")]
    pub(crate) columns: Vec<Column>,
    /// The Glue table the schema stands for (error records and Describe name it).
    #[serde(skip_serializing_if = "is_empty")]
    pub(crate) table: CatalogTable,
    #[serde(skip_serializing_if = "InputSpec::is_default")]
    pub(crate) input: InputSpec,
    #[serde(skip_serializing_if = "OutputSpec::is_default")]
    pub(crate) output: OutputSpec,
}

/// Columns as `{name, type}` with the type's canonical text.
fn columns<S: serde::Serializer>(columns: &[Column], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    #[derive(Serialize)]
    struct Named<'a> {
        name: &'a str,
        #[serde(rename = "type")]
        ty: String,
    }
    let mut seq = s.serialize_seq(Some(columns.len()))?;
    for c in columns {
        seq.serialize_element(&Named {
            name: &c.name,
            ty: c.ty.to_string(),
        })?;
    }
    seq.end()
}

fn is_empty(t: &CatalogTable) -> bool {
    *t == CatalogTable::default()
}

/// How records are read: AWS's two JSON SerDes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) enum InputSpec {
    OpenX {
        case_insensitive: bool,
        dots_to_underscores: bool,
        /// `column_to_json_key_mappings`: column -> the JSON key that fills it, as written.
        mappings: Vec<(String, String)>,
    },
    Hive {
        /// Joda patterns or `millis`, tried in order before AWS's defaults.
        timestamp_formats: Vec<String>,
    },
}

impl InputSpec {
    /// The OpenX JSON SerDe's defaults.
    pub(crate) const DEFAULT: InputSpec = InputSpec::OpenX {
        case_insensitive: true,
        dots_to_underscores: false,
        mappings: Vec::new(),
    };

    fn is_default(&self) -> bool {
        *self == InputSpec::DEFAULT
    }
}

/// The file format written.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) enum OutputSpec {
    Parquet(ParquetOptions),
    Orc {
        options: OrcOptions,
        /// Encoded bytes a stripe may hold in memory (firehosed's `stripe_buffer_mib`).
        stripe_buffer_bytes: u64,
    },
}

impl OutputSpec {
    /// ORC's stripe memory bound by default.
    pub(crate) const DEFAULT_STRIPE_BUFFER: u64 = 16 * 1024 * 1024;

    fn is_default(&self) -> bool {
        *self == OutputSpec::Parquet(ParquetOptions::DEFAULT)
    }

    /// The object name extension of the format.
    pub(crate) fn extension(&self) -> &'static str {
        match self {
            OutputSpec::Parquet(_) => ".parquet",
            OutputSpec::Orc { .. } => ".orc",
        }
    }
}
