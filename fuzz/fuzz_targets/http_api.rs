//! See `macemu_fuzz::http::http_api` (src/http.rs) for what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| macemu_fuzz::http::http_api(data));
