//! Pure-Rust emulation of the Motorola 68000 and the Macintosh Plus hardware around it.
#![forbid(unsafe_code)]

pub mod bus;
pub mod cpu;
pub mod floppy;
pub mod mac;
pub mod machine;
pub mod rom;
pub mod scsi;
pub mod storage;
