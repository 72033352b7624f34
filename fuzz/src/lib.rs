//! The fuzz checks, one function per target. The same files are compiled into the normal test suite
//! (`#[path]` modules in `macemu-ipc/tests/fuzz_corpus.rs` and `macemu-stream/tests/fuzz_corpus.rs`), which
//! replay the corpora under `corpus/<target>/`, so a crash once found stays fixed.

pub mod http;
pub mod ipc;
pub mod stream;
