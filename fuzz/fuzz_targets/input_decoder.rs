//! Arbitrary bytes through the v4 input-socket decoder; the checks live in `src/ipc.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| macemu_fuzz::ipc::input_decoder(data));
