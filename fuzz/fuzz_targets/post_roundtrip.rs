#![no_main]

libfuzzer_sys::fuzz_target!(|input: fuzz_harness::PostInput| fuzz_harness::post_roundtrip(&input));
