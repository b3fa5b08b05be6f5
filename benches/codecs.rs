//! Compression speed of every codec on realistic records (1 KiB JSON events), as staging runs
//! it: one stream per object, written in record-sized pieces. `cargo bench --bench codecs`.

use std::io::Cursor;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use firehosed::encode::{Compression, Encoder};

#[path = "common/records.rs"]
mod records;

fn codecs(c: &mut Criterion) {
    let recs = records::json_records(8192, 1024, 0);
    let total: usize = recs.iter().map(Vec::len).sum();
    let mut group = c.benchmark_group("encode_8MiB_of_1KiB_json_records");
    group.throughput(Throughput::Bytes(total as u64));
    group.sample_size(10);
    for compression in [
        Compression::Uncompressed,
        Compression::Gzip,
        Compression::Zip,
        Compression::Snappy,
        Compression::HadoopSnappy,
    ] {
        group.bench_function(compression.api_name(), |b| {
            b.iter(|| {
                let out = Cursor::new(Vec::with_capacity(total + 1024));
                let mut enc = Encoder::new(compression, out, 8).expect("in memory");
                for r in &recs {
                    enc.write_all(r).expect("in memory");
                }
                enc.finish("entry123")
                    .expect("in memory")
                    .into_inner()
                    .len()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, codecs);
criterion_main!(benches);
