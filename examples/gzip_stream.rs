//! One GZIP stream of stdin at firehosed's level on one core, with firehosed's zlib (zlib-rs
//! through flate2): prints the input and output bytes and the rate, for the benchmarks that
//! compare a destination's output to one stream of the same bytes (bench/backlog.sh).
//! usage: gzip_stream < FILE

use std::io::{Read, Write};
use std::time::Instant;

fn main() -> std::io::Result<()> {
    let mut input = Vec::new();
    std::io::stdin().read_to_end(&mut input)?;
    let start = Instant::now();
    let mut e = flate2::write::GzEncoder::new(
        Vec::with_capacity(input.len() / 3),
        flate2::Compression::new(firehosed::encode::GZIP_LEVEL),
    );
    e.write_all(&input)?;
    let out = e.finish()?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "in={} out={} MB_per_s={:.1}",
        input.len(),
        out.len(),
        input.len() as f64 / 1e6 / secs
    );
    Ok(())
}
