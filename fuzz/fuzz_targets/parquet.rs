#![no_main]
// See firehosed::fuzzing::parquet for what the input means.
libfuzzer_sys::fuzz_target!(|data: &[u8]| firehosed::fuzzing::parquet(data));
