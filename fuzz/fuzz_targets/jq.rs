#![no_main]
// See firehosed::fuzzing::jq for what the input means.
libfuzzer_sys::fuzz_target!(|data: &[u8]| firehosed::fuzzing::jq(data));
