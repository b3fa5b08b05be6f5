//! One GZIP stream of stdin at firehosed's level on one core, with each of firehosed's two
//! deflate libraries: zlib-rs through flate2 (what streams written a piece at a time use) and
//! libdeflate on the whole input at once (what a main object's blocks use, without the block
//! boundaries). Prints the input and output bytes and the rate of each, for the benchmarks that
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
    let rate = |secs: f64| input.len() as f64 / 1e6 / secs;
    println!(
        "in={} out={} MB_per_s={:.1}",
        input.len(),
        out.len(),
        rate(secs)
    );
    let level = libdeflater::CompressionLvl::new(firehosed::encode::GZIP_LEVEL as i32)
        .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
    let mut c = libdeflater::Compressor::new(level);
    let mut out = vec![0; c.gzip_compress_bound(input.len())];
    let start = Instant::now();
    let n = c
        .gzip_compress(&input, &mut out)
        .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
    let secs = start.elapsed().as_secs_f64();
    println!("libdeflate_out={n} libdeflate_MB_per_s={:.1}", rate(secs));
    Ok(())
}
