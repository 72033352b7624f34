//! `macemu`: a classic-Macintosh emulator whose screen, sound and input are streamed to a web browser.
//!
//! This facade re-exports the workspace crates so one dependency gives the whole system:
//! [`core`] (68000 CPU and Mac hardware), [`ipc`] (the v4 shared-memory protocol, both sides),
//! [`emulator`] (the emulator process, built on core and ipc only) and [`stream`] (the streaming
//! server).
#![forbid(unsafe_code)]

pub use macemu_core as core;
pub use macemu_emulator as emulator;
pub use macemu_ipc as ipc;
pub use macemu_stream as stream;
