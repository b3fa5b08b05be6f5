//! Compression speed of every codec on realistic records (1 KiB JSON events), as staging runs
//! it: one stream per object, written in record-sized pieces. `cargo bench --bench codecs`.

use std::io::Cursor;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use firehosed::encode::{Compression, Encoder};

fn records() -> Vec<Vec<u8>> {
    (0..8192)
        .map(|n: usize| {
            let mut r = format!(
                "{{\"event_id\":{n},\"user\":\"user-{}\",\"action\":\"{}\",\"ts\":\"2026-11-22T10:{:02}:{:02}Z\",\"amount\":{}.{:02},\"pad\":\"",
                n % 9973,
                ["view", "click", "purchase", "scroll"][n % 4],
                (n / 60) % 60,
                n % 60,
                n % 1000,
                n % 100
            )
            .into_bytes();
            let mut x = n as u64 | 1;
            while r.len() + 3 < 1024 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                r.push(b"abcdefghijklmnopqrstuvwxyz0123456789"[(x % 36) as usize]);
            }
            r.extend_from_slice(b"\"}\n");
            r
        })
        .collect()
}

fn codecs(c: &mut Criterion) {
    let recs = records();
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
