//! The direct-access command set: CDB decoding and the layout of the replies.
//!
//! Field positions follow the SCSI-2 standard (X3.131-1994) for the commands the Plus ROM, Apple
//! HD SC Setup and Apple's disk driver issue. Nothing here touches a medium: [`parse`] turns bytes
//! into a [`Command`] or the sense to report, and the `*_data` functions build reply bytes.

/// Sense keys (SCSI-2 §8.2.14.3).
pub mod key {
    pub const NO_SENSE: u8 = 0x0;
    pub const NOT_READY: u8 = 0x2;
    pub const MEDIUM_ERROR: u8 = 0x3;
    pub const ILLEGAL_REQUEST: u8 = 0x5;
    pub const DATA_PROTECT: u8 = 0x7;
    pub const MISCOMPARE: u8 = 0xE;
}

/// Additional sense codes (SCSI-2 Table 71).
pub mod asc {
    pub const WRITE_ERROR: u8 = 0x0C;
    pub const UNRECOVERED_READ_ERROR: u8 = 0x11;
    pub const INVALID_OPCODE: u8 = 0x20;
    pub const LBA_OUT_OF_RANGE: u8 = 0x21;
    pub const INVALID_FIELD_IN_CDB: u8 = 0x24;
    pub const LUN_NOT_SUPPORTED: u8 = 0x25;
    pub const INVALID_FIELD_IN_PARAMETERS: u8 = 0x26;
    pub const WRITE_PROTECTED: u8 = 0x27;
    pub const MISCOMPARE_DURING_VERIFY: u8 = 0x1D;
}

/// The sense a target reports after CHECK CONDITION.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sense {
    pub key: u8,
    pub asc: u8,
    pub ascq: u8,
    /// The information field (the failing LBA), when it is valid.
    pub info: Option<u32>,
}

impl Sense {
    pub const fn new(key: u8, asc: u8) -> Sense {
        Sense {
            key,
            asc,
            ascq: 0,
            info: None,
        }
    }

    pub fn with_info(self, info: u64) -> Sense {
        Sense {
            info: Some(info.min(u64::from(u32::MAX)) as u32),
            ..self
        }
    }

    pub const fn illegal(asc: u8) -> Sense {
        Sense::new(key::ILLEGAL_REQUEST, asc)
    }
}

/// Page control of MODE SENSE (SCSI-2 §8.3.3.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageControl {
    Current,
    Changeable,
    Default,
    Saved,
}

/// A decoded command (logical unit 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    TestUnitReady,
    RequestSense {
        alloc: usize,
    },
    Inquiry {
        alloc: usize,
        /// Only LUN 0 exists; INQUIRY of another reports "no device here".
        lun: u8,
    },
    Read {
        lba: u64,
        blocks: u32,
    },
    Write {
        lba: u64,
        blocks: u32,
    },
    ReadCapacity,
    ModeSense {
        dbd: bool,
        pc: PageControl,
        page: u8,
        alloc: usize,
        /// MODE SENSE(10): 8-byte header.
        long: bool,
    },
    ModeSelect {
        len: usize,
        long: bool,
    },
    FormatUnit {
        /// A defect list header (and list) follows in DATA OUT.
        fmt_data: bool,
    },
    Verify {
        lba: u64,
        blocks: u32,
        /// Compare against data sent by the initiator.
        byte_check: bool,
    },
    Seek {
        lba: u64,
    },
    StartStop,
    /// Commands a fixed disk accepts without doing anything: REZERO UNIT, RESERVE, RELEASE,
    /// SEND DIAGNOSTIC (self test), PREVENT/ALLOW MEDIUM REMOVAL.
    Accept,
}

pub mod op {
    pub const TEST_UNIT_READY: u8 = 0x00;
    pub const REZERO_UNIT: u8 = 0x01;
    pub const REQUEST_SENSE: u8 = 0x03;
    pub const FORMAT_UNIT: u8 = 0x04;
    pub const READ6: u8 = 0x08;
    pub const WRITE6: u8 = 0x0A;
    pub const SEEK6: u8 = 0x0B;
    pub const INQUIRY: u8 = 0x12;
    pub const MODE_SELECT6: u8 = 0x15;
    pub const RESERVE: u8 = 0x16;
    pub const RELEASE: u8 = 0x17;
    pub const MODE_SENSE6: u8 = 0x1A;
    pub const START_STOP: u8 = 0x1B;
    pub const SEND_DIAGNOSTIC: u8 = 0x1D;
    pub const PREVENT_ALLOW: u8 = 0x1E;
    pub const READ_CAPACITY: u8 = 0x25;
    pub const READ10: u8 = 0x28;
    pub const WRITE10: u8 = 0x2A;
    pub const SEEK10: u8 = 0x2B;
    pub const VERIFY10: u8 = 0x2F;
    pub const MODE_SELECT10: u8 = 0x55;
    pub const MODE_SENSE10: u8 = 0x5A;
}

fn be16(b: &[u8]) -> u32 {
    u32::from(b[0]) << 8 | u32::from(b[1])
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Decodes `cdb`. A short CDB, a LUN other than 0, or an opcode we do not implement is answered
/// with the sense to report (ILLEGAL REQUEST), never a panic.
pub fn parse(cdb: &[u8]) -> Result<Command, Sense> {
    let Some(&opcode) = cdb.first() else {
        return Err(Sense::illegal(asc::INVALID_OPCODE));
    };
    if cdb.len() < super::cdb_len(opcode) {
        return Err(Sense::illegal(asc::INVALID_FIELD_IN_CDB));
    }
    // SCSI-1 style LUN in byte 1, bits 7-5 (REQUEST SENSE and INQUIRY answer for any LUN).
    let lun = cdb.get(1).map_or(0, |b| b >> 5);
    if lun != 0 && opcode != op::REQUEST_SENSE && opcode != op::INQUIRY {
        return Err(Sense::illegal(asc::LUN_NOT_SUPPORTED));
    }
    let c = cdb;
    Ok(match opcode {
        op::TEST_UNIT_READY => Command::TestUnitReady,
        op::REQUEST_SENSE => Command::RequestSense {
            // SCSI-1: an allocation length of 0 asks for the 4-byte non-extended sense.
            alloc: if c[4] == 0 { 4 } else { usize::from(c[4]) },
        },
        op::INQUIRY => Command::Inquiry {
            alloc: usize::from(c[4]),
            lun,
        },
        op::READ6 | op::WRITE6 => {
            let lba = u64::from(c[1] & 0x1F) << 16 | u64::from(c[2]) << 8 | u64::from(c[3]);
            // A transfer length of 0 means 256 blocks in the 6-byte commands.
            let blocks = if c[4] == 0 { 256 } else { u32::from(c[4]) };
            if opcode == op::READ6 {
                Command::Read { lba, blocks }
            } else {
                Command::Write { lba, blocks }
            }
        }
        op::READ10 | op::WRITE10 => {
            let lba = u64::from(be32(&c[2..6]));
            let blocks = be16(&c[7..9]);
            if opcode == op::READ10 {
                Command::Read { lba, blocks }
            } else {
                Command::Write { lba, blocks }
            }
        }
        op::READ_CAPACITY => {
            // PMI = 0 requires a zero LBA field.
            if c[8] & 1 == 0 && be32(&c[2..6]) != 0 {
                return Err(Sense::illegal(asc::INVALID_FIELD_IN_CDB));
            }
            Command::ReadCapacity
        }
        op::MODE_SENSE6 | op::MODE_SENSE10 => {
            let long = opcode == op::MODE_SENSE10;
            Command::ModeSense {
                dbd: c[1] & 0x08 != 0,
                pc: match c[2] >> 6 {
                    0 => PageControl::Current,
                    1 => PageControl::Changeable,
                    2 => PageControl::Default,
                    _ => PageControl::Saved,
                },
                page: c[2] & 0x3F,
                alloc: if long {
                    be16(&c[7..9]) as usize
                } else {
                    usize::from(c[4])
                },
                long,
            }
        }
        op::MODE_SELECT6 => Command::ModeSelect {
            len: usize::from(c[4]),
            long: false,
        },
        op::MODE_SELECT10 => Command::ModeSelect {
            len: be16(&c[7..9]) as usize,
            long: true,
        },
        op::FORMAT_UNIT => Command::FormatUnit {
            fmt_data: c[1] & 0x10 != 0,
        },
        op::VERIFY10 => Command::Verify {
            lba: u64::from(be32(&c[2..6])),
            blocks: be16(&c[7..9]),
            byte_check: c[1] & 0x02 != 0,
        },
        op::SEEK6 => Command::Seek {
            lba: u64::from(c[1] & 0x1F) << 16 | u64::from(c[2]) << 8 | u64::from(c[3]),
        },
        op::SEEK10 => Command::Seek {
            lba: u64::from(be32(&c[2..6])),
        },
        op::START_STOP => Command::StartStop,
        op::REZERO_UNIT | op::RESERVE | op::RELEASE | op::SEND_DIAGNOSTIC | op::PREVENT_ALLOW => {
            Command::Accept
        }
        _ => return Err(Sense::illegal(asc::INVALID_OPCODE)),
    })
}

/// Extended sense data (SCSI-2 §8.2.14): 18 bytes, response code $70.
pub fn sense_data(s: &Sense) -> [u8; 18] {
    let mut d = [0u8; 18];
    d[0] = 0x70;
    d[2] = s.key & 0x0F;
    if let Some(info) = s.info {
        d[0] |= 0x80; // the information field is valid
        d[3..7].copy_from_slice(&info.to_be_bytes());
    }
    d[7] = 10; // additional sense length: bytes 8..17
    d[12] = s.asc;
    d[13] = s.ascq;
    d
}

/// Standard INQUIRY data (SCSI-2 §8.2.5.1): a direct-access device, not removable, SCSI-2 format,
/// 31 additional bytes, then the space-padded vendor (8), product (16) and revision (4).
pub fn inquiry_data(vendor: &str, product: &str, revision: &str, lun_present: bool) -> [u8; 36] {
    let mut d = [0u8; 36];
    // Peripheral qualifier 3, type $1F: no device on this LUN.
    d[0] = if lun_present { 0x00 } else { 0x7F };
    d[2] = 2; // ANSI version: SCSI-2
    d[3] = 2; // response data format
    d[4] = 31;
    let put = |d: &mut [u8], s: &str| {
        d.fill(b' ');
        for (o, c) in d
            .iter_mut()
            .zip(s.bytes().filter(|c| (0x20..0x7F).contains(c)))
        {
            *o = c;
        }
    };
    put(&mut d[8..16], vendor);
    put(&mut d[16..32], product);
    put(&mut d[32..36], revision);
    d
}

/// READ CAPACITY data: the last LBA and the block length, both big-endian 32-bit.
pub fn capacity_data(blocks: u64) -> [u8; 8] {
    let last = blocks.saturating_sub(1).min(u64::from(u32::MAX)) as u32;
    let mut d = [0u8; 8];
    d[0..4].copy_from_slice(&last.to_be_bytes());
    d[4..8].copy_from_slice(&(super::BLOCK_SIZE as u32).to_be_bytes());
    d
}

/// Apple's vendor mode page $30: 30 bytes with "APPLE COMPUTER, INC." at offset 10; Apple's
/// setup utilities look for it before they will initialize a drive.
pub const APPLE_PAGE_STRING: &[u8; 20] = b"APPLE COMPUTER, INC.";

/// A drive's shape as mode pages 3 and 4 report it. The medium is a flat array of blocks; this
/// geometry only has to multiply out to at least the capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub cylinders: u32,
    pub heads: u8,
    pub sectors: u16,
}

impl Geometry {
    pub const HEADS: u8 = 8;
    pub const SECTORS: u16 = 32;

    pub fn for_blocks(blocks: u64) -> Geometry {
        let per_cyl = u64::from(Self::HEADS) * u64::from(Self::SECTORS);
        Geometry {
            cylinders: blocks.div_ceil(per_cyl).min(0xFF_FFFF) as u32,
            heads: Self::HEADS,
            sectors: Self::SECTORS,
        }
    }
}

/// Mode pages this disk knows, in the order "all pages" ($3F) returns them.
pub const MODE_PAGES: [u8; 5] = [0x01, 0x02, 0x03, 0x04, 0x30];

/// One mode page (code, length, body) for page control `pc`. Changeable values are all zero:
/// nothing can be changed. `None` for a page we do not have.
pub fn mode_page(page: u8, pc: PageControl, geometry: Geometry) -> Option<Vec<u8>> {
    let mut p = match page {
        // Read-write error recovery (SCSI-2 §8.3.3.6): all defaults.
        0x01 => vec![0u8; 12],
        // Disconnect-reconnect: no limits.
        0x02 => vec![0u8; 16],
        // Format device (SCSI-2 §9.3.3.3).
        0x03 => {
            let mut p = vec![0u8; 24];
            p[2..4].copy_from_slice(&u16::from(geometry.heads).to_be_bytes()); // tracks per zone
            p[10..12].copy_from_slice(&geometry.sectors.to_be_bytes());
            p[12..14].copy_from_slice(&(super::BLOCK_SIZE as u16).to_be_bytes());
            p[14..16].copy_from_slice(&1u16.to_be_bytes()); // interleave 1:1
            p[20] = 0x40; // HSEC: hard sectored
            p
        }
        // Rigid disk geometry (SCSI-2 §9.3.3.7).
        0x04 => {
            let mut p = vec![0u8; 24];
            p[2..5].copy_from_slice(&geometry.cylinders.to_be_bytes()[1..4]);
            p[5] = geometry.heads;
            p[20..22].copy_from_slice(&3600u16.to_be_bytes());
            p
        }
        0x30 => {
            let mut p = vec![0u8; 30];
            p[10..30].copy_from_slice(APPLE_PAGE_STRING);
            p
        }
        _ => return None,
    };
    p[0] = page;
    p[1] = (p.len() - 2) as u8;
    if pc == PageControl::Changeable {
        p[2..].fill(0);
    }
    Some(p)
}

/// MODE SENSE reply: header (4 bytes, or 8 for the 10-byte command), an optional 8-byte block
/// descriptor (density 0, block count, block length 512), then the pages, truncated to `alloc`.
/// `None` when the page is not one we have.
pub fn mode_sense_data(
    cmd_page: u8,
    pc: PageControl,
    dbd: bool,
    long: bool,
    blocks: u64,
    write_protected: bool,
) -> Option<Vec<u8>> {
    let geometry = Geometry::for_blocks(blocks);
    let mut pages = Vec::new();
    match cmd_page {
        // Page 0: no page, just the header and block descriptor.
        0x00 => {}
        0x3F => {
            for p in MODE_PAGES {
                pages.extend(mode_page(p, pc, geometry)?);
            }
        }
        p => pages.extend(mode_page(p, pc, geometry)?),
    }
    let mut d = Vec::new();
    let header = if long { 8 } else { 4 };
    d.resize(header, 0);
    let wp = if write_protected { 0x80 } else { 0 };
    if long {
        d[3] = wp;
        d[7] = if dbd { 0 } else { 8 };
    } else {
        d[2] = wp;
        d[3] = if dbd { 0 } else { 8 };
    }
    if !dbd {
        let count = blocks.min(0xFF_FFFF) as u32;
        d.push(0); // density code
        d.extend_from_slice(&count.to_be_bytes()[1..4]);
        d.push(0);
        d.extend_from_slice(&(super::BLOCK_SIZE as u32).to_be_bytes()[1..4]);
    }
    d.extend(pages);
    // Mode data length excludes itself.
    if long {
        let n = (d.len() - 2) as u16;
        d[0..2].copy_from_slice(&n.to_be_bytes());
    } else {
        d[0] = (d.len() - 1) as u8;
    }
    Some(d)
}
