//! Realistic ~1 KiB JSON events for the benchmarks (benches/codecs.rs, examples/loadgen.rs).

/// `count` JSON records of exactly `size` bytes (newline-terminated), varied like real events;
/// `salt` shifts the numbering so different sets differ.
pub(crate) fn json_records(count: usize, size: usize, salt: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            let n = salt * count + i;
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
            while r.len() + 3 < size {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                r.push(b"abcdefghijklmnopqrstuvwxyz0123456789"[(x % 36) as usize]);
            }
            r.extend_from_slice(b"\"}\n");
            r.truncate(size);
            r
        })
        .collect()
}
