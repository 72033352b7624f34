//! The Macintosh Plus: one module per chip, wired together by [`machine::MacPlus`].
//!
//! Devices never hold references to each other; the board in `machine.rs` moves signal levels
//! between them (VIA port bits to the RTC, SCC DCD and VIA X2/Y2 for the mouse, the VIA shift
//! register to the keyboard) and owns the one clock: CPU cycles since power-on.

pub mod iwm;
pub mod keyboard;
pub mod machine;
pub mod macos;
mod plus;
pub mod rtc;
pub mod scc;
pub mod scsi;
pub mod sound;
pub mod via;
pub mod video;

pub use machine::{FrameReport, MacPlus, MachineError, MouseButton};

/// CPU clock of the Plus: the 15.6672 MHz dot clock divided by two.
pub const CPU_HZ: u64 = 7_833_600;
/// VIA E clock: CPU clock / 10.
pub const E_CLOCK_DIVIDER: u64 = 10;
