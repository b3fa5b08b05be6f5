#![no_main]
// See firehosed::fuzzing::api_request for what the input means.
libfuzzer_sys::fuzz_target!(|data: &[u8]| firehosed::fuzzing::api_request(data));
