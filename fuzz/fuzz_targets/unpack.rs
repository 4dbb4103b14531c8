#![no_main]
//! libFuzzer target: arbitrary bytes into the layer unpacker.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rbox_fuzz::check_unpack(data);
});
