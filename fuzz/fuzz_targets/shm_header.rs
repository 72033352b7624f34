//! Arbitrary shared-memory header bytes through the v4 validation; the checks live in `src/ipc.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| macemu_fuzz::ipc::shm_header(data));
