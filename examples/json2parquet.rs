//! Converts a file of newline-delimited JSON records into one Parquet file with firehosed's
//! format conversion (the code the daemon's staging runs for a destination's main object:
//! parsing on this thread, row groups encoded beside it), and prints its speed. The comparison
//! run of BENCHMARKS.md (bench/parquet.sh) times it next to pyarrow.
//!
//! usage: json2parquet SCHEMA.json INPUT.ndjson OUTPUT [orc] [inline]
//!   SCHEMA.json: Glue's column layout, {"Columns":[{"Name":..,"Type":..}]}
//!   orc: write ORC (SNAPPY, firehosed's `output.orc` defaults) instead of Parquet
//!   inline: encode on this thread too (as a partition's objects are), one thread in all

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use firehosed::encode::columnar::schema::{self, Column};
use firehosed::encode::columnar::{Rules, TimestampUnit};
use firehosed::encode::conversion::{CatalogTable, Conversion, Mode};
use firehosed::encode::orc::OrcOptions;
use firehosed::encode::parquet::ParquetOptions;

fn main() -> anyhow::Result<()> {
    // The daemon's allocator settings, so that the figures are the daemon's.
    firehosed::allocator::limit_heap_retention();
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: json2parquet SCHEMA.json INPUT.ndjson OUTPUT [orc] [inline]";
    let (schema_file, input, output, flags) = match &args[..] {
        [_, s, i, o, flags @ ..] => (s, i, o, flags),
        _ => bail!(usage),
    };
    let (mut orc, mut mode) = (false, Mode::Beside);
    for flag in flags {
        match flag.as_str() {
            "orc" => orc = true,
            "inline" => mode = Mode::Inline,
            _ => bail!(usage),
        }
    }
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(schema_file).context("schema file")?)?;
    let columns = doc["Columns"]
        .as_array()
        .context("Columns")?
        .iter()
        .map(|c| {
            let name = c["Name"].as_str().context("Name")?.to_lowercase();
            let ty =
                schema::parse(c["Type"].as_str().context("Type")?).map_err(anyhow::Error::msg)?;
            Ok(Column { name, ty })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let options = match orc {
        // As the configuration reads `output.orc`: nanosecond timestamps.
        true => ParquetOptions {
            timestamp_unit: TimestampUnit::Nanos,
            ..ParquetOptions::DEFAULT
        },
        false => ParquetOptions::DEFAULT,
    };
    let mut conversion = Conversion::new(
        columns,
        Rules::default(),
        Vec::new(),
        options,
        CatalogTable::default(),
    );
    if orc {
        conversion = conversion.with_orc(OrcOptions::DEFAULT);
    }
    let conversion = Arc::new(conversion);
    let start = Instant::now();
    let data = std::fs::read(input).context("input")?;
    let out = std::io::BufWriter::with_capacity(
        256 * 1024,
        std::fs::File::create(output).context("output")?,
    );
    let mut writer = conversion.writer_in(out, mode)?;
    let (mut rows, mut failed) = (0usize, 0usize);
    let mut rest = &data[..];
    while !rest.is_empty() {
        let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
        let line = &rest[..end];
        rest = &rest[(end + 1).min(rest.len())..];
        if line.is_empty() {
            continue;
        }
        match writer.append(line)? {
            Ok(n) => rows += n,
            Err(_) => failed += 1,
        }
    }
    let mut file = writer.finish()?;
    std::io::Write::flush(&mut file)?;
    let secs = start.elapsed().as_secs_f64();
    let size = std::fs::metadata(output)?.len();
    println!(
        "{{\"rows\":{rows},\"failed\":{failed},\"input_bytes\":{},\"output_bytes\":{size},\"seconds\":{secs:.3},\"mb_per_s\":{:.1}}}",
        data.len(),
        data.len() as f64 / 1e6 / secs
    );
    Ok(())
}
