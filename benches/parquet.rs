//! JSON -> Parquet conversion speed on realistic records (1 KiB JSON events), as staging runs
//! it: records appended one by one to a RowWriter, SNAPPY pages, one file in memory.
//! `cargo bench --bench parquet`. bench/parquet.sh compares the same code with pyarrow.

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use firehosed::encode::columnar::Rules;
use firehosed::encode::columnar::schema::{Column, parse};
use firehosed::encode::conversion::{CatalogTable, Conversion};
use firehosed::encode::parquet::{ParquetCompression, ParquetOptions};

#[path = "common/records.rs"]
mod records;

fn conversion(compression: ParquetCompression) -> Arc<Conversion> {
    let columns = [
        ("event_id", "bigint"),
        ("user", "string"),
        ("action", "string"),
        ("ts", "timestamp"),
        ("amount", "decimal(10,2)"),
        ("pad", "string"),
    ]
    .iter()
    .map(|(n, t)| Column {
        name: n.to_string(),
        ty: parse(t).expect("type"),
    })
    .collect();
    Arc::new(Conversion::new(
        columns,
        Rules::default(),
        Vec::new(),
        ParquetOptions {
            compression,
            ..ParquetOptions::DEFAULT
        },
        CatalogTable::default(),
    ))
}

fn parquet(c: &mut Criterion) {
    let recs = records::json_records(8192, 1024, 0);
    let total: usize = recs.iter().map(Vec::len).sum();
    let mut group = c.benchmark_group("json_to_parquet_8MiB_of_1KiB_records");
    group.throughput(Throughput::Bytes(total as u64));
    group.sample_size(10);
    for (name, compression) in [
        ("UNCOMPRESSED", ParquetCompression::Uncompressed),
        ("SNAPPY", ParquetCompression::Snappy),
        ("GZIP", ParquetCompression::Gzip),
        ("ZSTD", ParquetCompression::Zstd),
    ] {
        let conv = conversion(compression);
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut w = conv.writer(Vec::with_capacity(total)).expect("in memory");
                for r in &recs {
                    w.append(r).expect("in memory").expect("fits the schema");
                }
                w.finish().expect("in memory").len()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, parquet);
criterion_main!(benches);
