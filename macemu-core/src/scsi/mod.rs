//! SCSI targets: what sits on the far side of the NCR 5380.
//!
//! The bus and phase state machine lives with the chip (`mac::scsi`); it moves bytes and asks a
//! [`ScsiTarget`] what to do next. A target only sees whole commands and whole chunks of data:
//!
//! - [`ScsiTarget::command`] gets the CDB once all its bytes are in;
//! - an [`Action::DataIn`] chunk is offered byte by byte, then [`ScsiTarget::data_in_done`] is asked
//!   for the next step;
//! - an [`Action::DataOut`] length is collected from the initiator, then handed to
//!   [`ScsiTarget::data_out`];
//! - [`Action::Status`] ends the command: STATUS phase, then COMMAND COMPLETE, then bus free.
//!
//! Because the bus asks for the next step only after a chunk is complete, a disk can make a block
//! durable in `data_out` before it returns the status that tells the Mac the write is done.

pub mod commands;
pub mod disk;
pub mod partition;

pub use commands::Sense;
pub use disk::ScsiDisk;

use crate::storage::MediaInfo;

/// Bytes per logical block on every disk we emulate.
pub const BLOCK_SIZE: usize = 512;

/// Status bytes (SCSI-2 §7.3).
pub mod status {
    pub const GOOD: u8 = 0x00;
    pub const CHECK_CONDITION: u8 = 0x02;
}

/// What the target does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// DATA IN phase: these bytes go to the initiator.
    DataIn(Vec<u8>),
    /// DATA OUT phase: collect this many bytes from the initiator.
    DataOut(usize),
    /// STATUS phase with this status byte, then MESSAGE IN (command complete).
    Status(u8),
}

/// A device on the SCSI bus (logical unit 0 only).
pub trait ScsiTarget: Send {
    /// A complete CDB arrived in COMMAND phase.
    fn command(&mut self, cdb: &[u8]) -> Action;
    /// The last [`Action::DataIn`] chunk has been taken by the initiator.
    fn data_in_done(&mut self) -> Action;
    /// The bytes asked for by the last [`Action::DataOut`].
    fn data_out(&mut self, data: &[u8]) -> Action;
    /// The bus was reset (or the target deselected) in the middle of a command: drop it.
    fn abort(&mut self);
    /// What the target holds, for status displays.
    fn info(&self) -> MediaInfo;
    /// The last write that failed to reach the medium, once, for the host's user (the
    /// initiator already got CHECK CONDITION).
    fn take_write_error(&mut self) -> Option<String> {
        None
    }
}

/// CDB length by the opcode's group code (SCSI-2 §7.2.1): group 0 six bytes, 1 and 2 ten, 4
/// sixteen, 5 twelve; the reserved and vendor groups are read as six so that the command can be
/// rejected with CHECK CONDITION instead of hanging the bus.
pub fn cdb_len(opcode: u8) -> usize {
    match opcode >> 5 {
        1 | 2 => 10,
        4 => 16,
        5 => 12,
        _ => 6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdb_lengths_follow_the_group_code() {
        // TEST UNIT READY, READ(6), INQUIRY, MODE SENSE(6): group 0.
        for op in [0x00, 0x08, 0x12, 0x1A] {
            assert_eq!(cdb_len(op), 6, "{op:#x}");
        }
        // READ CAPACITY, READ(10), WRITE(10), VERIFY, MODE SENSE(10): groups 1 and 2.
        for op in [0x25, 0x28, 0x2A, 0x2F, 0x5A] {
            assert_eq!(cdb_len(op), 10, "{op:#x}");
        }
        assert_eq!(cdb_len(0xA8), 12); // READ(12)
        assert_eq!(cdb_len(0x88), 16); // READ(16)
        assert_eq!(cdb_len(0xE0), 6); // vendor specific
    }
}
