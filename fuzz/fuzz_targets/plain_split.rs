#![no_main]
// See firehosed::fuzzing::plain_split for what the input means.
libfuzzer_sys::fuzz_target!(|data: &[u8]| firehosed::fuzzing::plain_split(data));
