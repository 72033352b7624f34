//! The server's frame and audio snapshots over arbitrary shared-memory bytes; the checks live in
//! `src/ipc.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| macemu_fuzz::ipc::shm_snapshot(data));
