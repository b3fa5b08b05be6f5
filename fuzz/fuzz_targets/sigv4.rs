#![no_main]
// See firehosed::fuzzing::sigv4 for what the input means.
libfuzzer_sys::fuzz_target!(|data: &[u8]| firehosed::fuzzing::sigv4(data));
