#![no_main]
// See firehosed::fuzzing::deflate_join for what the input means.
libfuzzer_sys::fuzz_target!(|data: &[u8]| firehosed::fuzzing::deflate_join(data));
