#![no_main]
// See firehosed::fuzzing::config_yaml for what the input means.
libfuzzer_sys::fuzz_target!(|data: &[u8]| firehosed::fuzzing::config_yaml(data));
