#![no_main]
//! libFuzzer target: arbitrary text into the Containerfile parser.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rbox_fuzz::check_containerfile(data);
});
