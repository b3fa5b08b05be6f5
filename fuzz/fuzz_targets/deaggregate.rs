#![no_main]
// See firehosed::fuzzing::deaggregate for what the input means.
libfuzzer_sys::fuzz_target!(|data: &[u8]| firehosed::fuzzing::deaggregate(data));
