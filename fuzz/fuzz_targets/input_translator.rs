//! Browser input events through a viewer's input translator; the checks live in `src/stream.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| macemu_fuzz::stream::input_translator(data));
