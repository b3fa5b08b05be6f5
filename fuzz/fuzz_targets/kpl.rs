#![no_main]
// See firehosed::fuzzing::kpl for what the input means.
libfuzzer_sys::fuzz_target!(|data: &[u8]| firehosed::fuzzing::kpl(data));
