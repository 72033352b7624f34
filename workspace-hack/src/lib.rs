//! Empty on purpose: this crate exists for its `Cargo.toml`, which turns on for every build
//! selection the dependency features that `cargo test --workspace` turns on.
