//! A SCSI hard disk backed by an image file: 512-byte blocks, logical unit 0.
//!
//! Writes go block by block through [`Backing::write_at`], which returns only once the block is
//! durable; the STATUS that tells the Mac its write is done comes after the last one. A write
//! that fails ends the command with CHECK CONDITION (MEDIUM ERROR, or DATA PROTECT for a
//! read-only image), never GOOD. The disk never reports UNIT ATTENTION: Plus ROMs retry a drive
//! that raises it until they give up booting from it.

use std::io;

use super::commands::{self, asc, key, Command, Sense};
use super::{status, Action, ScsiTarget, BLOCK_SIZE};
use crate::storage::{Backing, DiskError, MediaInfo};

const BLOCK: u64 = BLOCK_SIZE as u64;

/// The command in progress between data chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Idle,
    Read { lba: u64, left: u32 },
    Write { lba: u64, left: u32 },
    Verify { lba: u64, left: u32 },
    ModeSelect { long: bool },
    FormatHeader,
    FormatList,
}

/// A hard disk on the SCSI bus.
pub struct ScsiDisk {
    backing: Box<dyn Backing>,
    blocks: u64,
    sense: Sense,
    op: Op,
    format: String,
    vendor: String,
    product: String,
    revision: String,
    /// The last write that failed, until the host's user has been told.
    write_failure: Option<String>,
}

impl std::fmt::Debug for ScsiDisk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScsiDisk")
            .field("name", &self.backing.name())
            .field("blocks", &self.blocks)
            .field("read_only", &self.backing.read_only())
            .finish()
    }
}

impl ScsiDisk {
    /// A disk over `backing`, whose size must be a positive multiple of 512 bytes.
    pub fn new(mut backing: Box<dyn Backing>) -> Result<ScsiDisk, DiskError> {
        let len = backing.len();
        if len == 0 || !len.is_multiple_of(BLOCK) {
            return Err(DiskError::Format(format!(
                "{}: {len} bytes is not a SCSI disk image (expected a raw device image whose \
                 size is a positive multiple of 512 bytes)",
                backing.name()
            )));
        }
        let format = describe(backing.as_mut());
        Ok(ScsiDisk {
            blocks: len / BLOCK,
            backing,
            sense: Sense::default(),
            op: Op::Idle,
            format,
            vendor: String::from("MACEMU"),
            product: String::from("SCSI DISK"),
            write_failure: None,
            revision: String::from("1.0"),
        })
    }

    /// Changes what INQUIRY reports (vendor 8, product 16, revision 4 printable ASCII
    /// characters, space padded). Some old setup utilities only accept drives they know by name.
    pub fn set_inquiry(&mut self, vendor: &str, product: &str, revision: &str) {
        self.vendor = vendor.to_string();
        self.product = product.to_string();
        self.revision = revision.to_string();
    }

    /// Logical blocks of 512 bytes.
    pub fn blocks(&self) -> u64 {
        self.blocks
    }

    pub fn info(&self) -> MediaInfo {
        MediaInfo {
            name: self.backing.name(),
            bytes: self.blocks * BLOCK,
            read_only: self.backing.read_only(),
            format: self.format.clone(),
        }
    }

    fn check(&mut self, sense: Sense) -> Action {
        self.sense = sense;
        self.op = Op::Idle;
        Action::Status(status::CHECK_CONDITION)
    }

    fn good(&mut self) -> Action {
        self.op = Op::Idle;
        Action::Status(status::GOOD)
    }

    fn in_range(&self, lba: u64, blocks: u32) -> bool {
        lba.checked_add(u64::from(blocks))
            .is_some_and(|end| end <= self.blocks)
    }

    fn out_of_range(&mut self, lba: u64) -> Action {
        self.check(Sense::illegal(asc::LBA_OUT_OF_RANGE).with_info(lba))
    }

    fn read_block(&mut self, lba: u64) -> Action {
        let mut buf = vec![0u8; BLOCK_SIZE];
        match self.backing.read_at(lba * BLOCK, &mut buf) {
            Ok(()) => Action::DataIn(buf),
            Err(_) => self
                .check(Sense::new(key::MEDIUM_ERROR, asc::UNRECOVERED_READ_ERROR).with_info(lba)),
        }
    }

    fn write_error(&mut self, lba: u64, e: &io::Error) -> Action {
        self.write_failure = Some(format!("block {lba}: {e}"));
        let sense = if e.kind() == io::ErrorKind::PermissionDenied {
            Sense::new(key::DATA_PROTECT, asc::WRITE_PROTECTED)
        } else {
            Sense::new(key::MEDIUM_ERROR, asc::WRITE_ERROR)
        };
        self.check(sense.with_info(lba))
    }

    fn write_protected(&mut self) -> Action {
        self.check(Sense::new(key::DATA_PROTECT, asc::WRITE_PROTECTED))
    }

    fn reply(&mut self, mut data: Vec<u8>, alloc: usize) -> Action {
        data.truncate(alloc);
        if data.is_empty() {
            return self.good();
        }
        self.op = Op::Idle;
        Action::DataIn(data)
    }

    fn execute(&mut self, cmd: Command) -> Action {
        match cmd {
            Command::TestUnitReady | Command::StartStop | Command::Accept => self.good(),
            Command::RequestSense { alloc } => {
                let data = commands::sense_data(&self.sense).to_vec();
                self.sense = Sense::default();
                self.reply(data, alloc)
            }
            Command::Inquiry { alloc, lun } => {
                let (v, p, r) = (&self.vendor, &self.product, &self.revision);
                let d = commands::inquiry_data(v, p, r, lun == 0);
                self.reply(d.to_vec(), alloc)
            }
            Command::ReadCapacity => self.reply(commands::capacity_data(self.blocks).to_vec(), 8),
            Command::ModeSense {
                dbd,
                pc,
                page,
                alloc,
                long,
            } => {
                let ro = self.backing.read_only();
                match commands::mode_sense_data(page, pc, dbd, long, self.blocks, ro) {
                    Some(d) => self.reply(d, alloc),
                    None => self.check(Sense::illegal(asc::INVALID_FIELD_IN_CDB)),
                }
            }
            Command::ModeSelect { len, long } => {
                if len == 0 {
                    return self.good();
                }
                self.op = Op::ModeSelect { long };
                Action::DataOut(len)
            }
            Command::Read { lba, blocks } => {
                if !self.in_range(lba, blocks) {
                    return self.out_of_range(lba);
                }
                if blocks == 0 {
                    return self.good();
                }
                self.op = Op::Read { lba, left: blocks };
                self.read_block(lba)
            }
            Command::Write { lba, blocks } => {
                if self.backing.read_only() {
                    return self.write_protected();
                }
                if !self.in_range(lba, blocks) {
                    return self.out_of_range(lba);
                }
                if blocks == 0 {
                    return self.good();
                }
                self.op = Op::Write { lba, left: blocks };
                Action::DataOut(BLOCK_SIZE)
            }
            Command::Verify {
                lba,
                blocks,
                byte_check,
            } => {
                if !self.in_range(lba, blocks) {
                    return self.out_of_range(lba);
                }
                if !byte_check || blocks == 0 {
                    // The medium is always readable: a medium verify has nothing to find.
                    return self.good();
                }
                self.op = Op::Verify { lba, left: blocks };
                Action::DataOut(BLOCK_SIZE)
            }
            Command::Seek { lba } => {
                if lba >= self.blocks {
                    return self.out_of_range(lba);
                }
                self.good()
            }
            Command::FormatUnit { fmt_data } => {
                if self.backing.read_only() {
                    return self.write_protected();
                }
                // The image is already a flat array of good blocks; formatting keeps its bytes.
                if fmt_data {
                    self.op = Op::FormatHeader;
                    return Action::DataOut(4);
                }
                self.good()
            }
        }
    }
}

impl ScsiTarget for ScsiDisk {
    fn command(&mut self, cdb: &[u8]) -> Action {
        self.op = Op::Idle;
        // Sense describes the last command; any command but REQUEST SENSE starts afresh.
        if cdb.first() != Some(&commands::op::REQUEST_SENSE) {
            self.sense = Sense::default();
        }
        match commands::parse(cdb) {
            Ok(cmd) => self.execute(cmd),
            Err(sense) => self.check(sense),
        }
    }

    fn data_in_done(&mut self) -> Action {
        match self.op {
            Op::Read { lba, left } if left > 1 => {
                self.op = Op::Read {
                    lba: lba + 1,
                    left: left - 1,
                };
                self.read_block(lba + 1)
            }
            _ => self.good(),
        }
    }

    fn data_out(&mut self, data: &[u8]) -> Action {
        match self.op {
            Op::Write { lba, left } => {
                if let Err(e) = self.backing.write_at(lba * BLOCK, data) {
                    return self.write_error(lba, &e);
                }
                if left <= 1 {
                    return self.good();
                }
                self.op = Op::Write {
                    lba: lba + 1,
                    left: left - 1,
                };
                Action::DataOut(BLOCK_SIZE)
            }
            Op::Verify { lba, left } => {
                let mut buf = vec![0u8; BLOCK_SIZE];
                if self.backing.read_at(lba * BLOCK, &mut buf).is_err() {
                    return self.check(
                        Sense::new(key::MEDIUM_ERROR, asc::UNRECOVERED_READ_ERROR).with_info(lba),
                    );
                }
                if buf != data {
                    return self.check(
                        Sense::new(key::MISCOMPARE, asc::MISCOMPARE_DURING_VERIFY).with_info(lba),
                    );
                }
                if left <= 1 {
                    return self.good();
                }
                self.op = Op::Verify {
                    lba: lba + 1,
                    left: left - 1,
                };
                Action::DataOut(BLOCK_SIZE)
            }
            Op::ModeSelect { long } => {
                // Header, then block descriptors: only 512-byte blocks are possible.
                let (hdr, bd_len) = if long {
                    (
                        8,
                        data.get(6..8)
                            .map_or(0, |b| usize::from(b[0]) << 8 | usize::from(b[1])),
                    )
                } else {
                    (4, data.get(3).map_or(0, |&b| usize::from(b)))
                };
                if let Some(bd) = data.get(hdr..hdr + bd_len.min(8)) {
                    if bd.len() == 8 {
                        let len = u32::from(bd[5]) << 16 | u32::from(bd[6]) << 8 | u32::from(bd[7]);
                        if len != 0 && len != BLOCK_SIZE as u32 {
                            return self.check(Sense::illegal(asc::INVALID_FIELD_IN_PARAMETERS));
                        }
                    }
                }
                self.good()
            }
            Op::FormatHeader => {
                let list = data
                    .get(2..4)
                    .map_or(0, |b| usize::from(b[0]) << 8 | usize::from(b[1]));
                if list == 0 {
                    return self.good();
                }
                self.op = Op::FormatList;
                Action::DataOut(list)
            }
            Op::FormatList | Op::Idle | Op::Read { .. } => self.good(),
        }
    }

    fn abort(&mut self) {
        self.op = Op::Idle;
    }

    fn info(&self) -> MediaInfo {
        ScsiDisk::info(self)
    }

    fn take_write_error(&mut self) -> Option<String> {
        self.write_failure.take()
    }
}

/// How `disk info` and the status display name an image: by its partition map or volume.
fn describe(b: &mut dyn Backing) -> String {
    match super::partition::read_map(b) {
        Some(map) => format!(
            "SCSI disk, Apple partition map ({} partitions)",
            map.partitions.len()
        ),
        None => match super::partition::volume_at(b, 0) {
            Some(v) => format!("SCSI disk, bare {} volume", v.kind),
            None => String::from("SCSI disk, not initialized"),
        },
    }
}

#[cfg(test)]
mod tests;
