//! See `macemu_fuzz::stream::datachannel` (src/stream.rs) for what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| macemu_fuzz::stream::datachannel(data));
