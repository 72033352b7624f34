//! See `macemu_fuzz::stream::h264_repeat` (src/stream.rs) for what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| macemu_fuzz::stream::h264_repeat(data));
