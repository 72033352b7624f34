//! Apple partition maps and volume headers, read from a device image.
//!
//! Layout (Inside Macintosh: Devices, "SCSI Manager"; checked against HD SC Setup images):
//! block 0 is the Driver Descriptor Map ('ER'), blocks 1… the partition map entries ('PM'), one
//! per block. A volume's Master Directory Block is its block 2 ($4244 HFS, $D2D7 MFS) with the
//! volume name as a Pascal string at +$24. Everything here is bounds-checked: a hostile image
//! yields `None`, never a panic.

use std::fmt;

use crate::storage::Backing;

const DDM_SIG: u16 = 0x4552; // 'ER'
const PM_SIG: u16 = 0x504D; // 'PM'
const HFS_SIG: u16 = 0x4244; // 'BD'
const MFS_SIG: u16 = 0xD2D7;
/// Partition maps longer than this are not believed (HD SC Setup writes 63 entries).
const MAX_ENTRIES: u32 = 256;

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// A driver entry of the DDM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriverEntry {
    /// First block of the driver.
    pub block: u32,
    /// Length in blocks.
    pub blocks: u16,
    /// 1 = Macintosh.
    pub kind: u16,
}

/// Driver Descriptor Map (block 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ddm {
    pub block_size: u16,
    pub block_count: u32,
    pub drivers: Vec<DriverEntry>,
}

impl Ddm {
    /// Parses block 0; `None` without the 'ER' signature.
    pub fn parse(block: &[u8]) -> Option<Ddm> {
        if block.len() < 512 || be16(block, 0) != DDM_SIG {
            return None;
        }
        // At most 61 entries of 8 bytes fit after the 18-byte header.
        let count = usize::from(be16(block, 0x10)).min((512 - 0x12) / 8);
        let drivers = (0..count)
            .map(|i| {
                let at = 0x12 + 8 * i;
                DriverEntry {
                    block: be32(block, at),
                    blocks: be16(block, at + 4),
                    kind: be16(block, at + 6),
                }
            })
            .collect();
        Some(Ddm {
            block_size: be16(block, 2),
            block_count: be32(block, 4),
            drivers,
        })
    }
}

/// One partition map entry ('PM').
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// Entries in the whole map (pmMapBlkCnt).
    pub map_entries: u32,
    /// First physical block (pmPyPartStart).
    pub start: u32,
    /// Blocks (pmPartBlkCnt).
    pub blocks: u32,
    pub name: String,
    pub kind: String,
    pub status: u32,
    /// Boot code size in bytes and its checksum (drivers).
    pub boot_size: u32,
    pub boot_checksum: u32,
    pub processor: String,
}

fn c_string(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    b[..end].iter().map(|&c| mac_roman(c)).collect()
}

impl Partition {
    /// Parses one map block; `None` without the 'PM' signature.
    pub fn parse(block: &[u8]) -> Option<Partition> {
        if block.len() < 512 || be16(block, 0) != PM_SIG {
            return None;
        }
        Some(Partition {
            map_entries: be32(block, 0x04),
            start: be32(block, 0x08),
            blocks: be32(block, 0x0C),
            name: c_string(&block[0x10..0x30]),
            kind: c_string(&block[0x30..0x50]),
            status: be32(block, 0x58),
            boot_size: be32(block, 0x60),
            boot_checksum: be32(block, 0x74),
            processor: c_string(&block[0x78..0x88]),
        })
    }
}

/// A device's DDM and partition map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionMap {
    pub ddm: Ddm,
    pub partitions: Vec<Partition>,
}

fn read_block(b: &mut dyn Backing, block: u64) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 512];
    b.read_at(block.checked_mul(512)?, &mut buf).ok()?;
    Some(buf)
}

/// Reads the DDM and every partition map entry. `None` when block 0 is not a DDM.
pub fn read_map(b: &mut dyn Backing) -> Option<PartitionMap> {
    let ddm = Ddm::parse(&read_block(b, 0)?)?;
    let mut partitions = Vec::new();
    let mut count = 1;
    let mut i = 1u32;
    while i <= count {
        let Some(p) = read_block(b, u64::from(i)).and_then(|blk| Partition::parse(&blk)) else {
            break;
        };
        if i == 1 {
            count = p.map_entries.clamp(1, MAX_ENTRIES);
        }
        partitions.push(p);
        i += 1;
    }
    Some(PartitionMap { ddm, partitions })
}

/// The file system of a volume.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VolumeKind {
    Hfs,
    Mfs,
}

impl fmt::Display for VolumeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VolumeKind::Hfs => "HFS",
            VolumeKind::Mfs => "MFS",
        })
    }
}

/// A volume found on a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Volume {
    pub kind: VolumeKind,
    pub name: String,
}

/// The volume whose first byte is at `offset`: its MDB is 1024 bytes in.
pub fn volume_at(b: &mut dyn Backing, offset: u64) -> Option<Volume> {
    let mut mdb = [0u8; 0x40];
    b.read_at(offset.checked_add(1024)?, &mut mdb).ok()?;
    let kind = match be16(&mdb, 0) {
        HFS_SIG => VolumeKind::Hfs,
        MFS_SIG => VolumeKind::Mfs,
        _ => return None,
    };
    let len = usize::from(mdb[0x24]).min(27);
    let name = mdb[0x25..0x25 + len]
        .iter()
        .map(|&c| mac_roman(c))
        .collect();
    Some(Volume { kind, name })
}

/// The name of the device's volume: the first Apple_HFS partition holding an HFS or MFS volume,
/// else a volume starting at block 0 (an image without a partition map).
pub fn volume_name(b: &mut dyn Backing) -> Option<String> {
    if let Some(map) = read_map(b) {
        let bs = match map.ddm.block_size {
            s @ (512 | 1024 | 2048 | 4096) => u64::from(s),
            _ => 512,
        };
        for p in &map.partitions {
            if p.kind.eq_ignore_ascii_case("Apple_HFS") {
                if let Some(v) = volume_at(b, u64::from(p.start) * bs) {
                    return Some(v.name);
                }
            }
        }
    }
    volume_at(b, 0).map(|v| v.name)
}

/// The checksum Apple's partitioning tools store in pmBootCksum for a driver: per byte,
/// s = rol16((s + b) mod 2^16, 1).
pub fn driver_checksum(code: &[u8]) -> u16 {
    code.iter()
        .fold(0u16, |s, &b| s.wrapping_add(u16::from(b)).rotate_left(1))
}

/// Mac OS Roman to Unicode; control characters become '?', so names are safe to print.
pub fn mac_roman(c: u8) -> char {
    const HIGH: [char; 128] = [
        'Ä', 'Å', 'Ç', 'É', 'Ñ', 'Ö', 'Ü', 'á', 'à', 'â', 'ä', 'ã', 'å', 'ç', 'é', 'è', //
        'ê', 'ë', 'í', 'ì', 'î', 'ï', 'ñ', 'ó', 'ò', 'ô', 'ö', 'õ', 'ú', 'ù', 'û', 'ü', //
        '†', '°', '¢', '£', '§', '•', '¶', 'ß', '®', '©', '™', '´', '¨', '≠', 'Æ', 'Ø', //
        '∞', '±', '≤', '≥', '¥', 'µ', '∂', '∑', '∏', 'π', '∫', 'ª', 'º', 'Ω', 'æ', 'ø', //
        '¿', '¡', '¬', '√', 'ƒ', '≈', '∆', '«', '»', '…', '\u{A0}', 'À', 'Ã', 'Õ', 'Œ',
        'œ', //
        '–', '—', '“', '”', '‘', '’', '÷', '◊', 'ÿ', 'Ÿ', '⁄', '€', '‹', '›', 'ﬁ', 'ﬂ', //
        '‡', '·', '‚', '„', '‰', 'Â', 'Ê', 'Á', 'Ë', 'È', 'Í', 'Î', 'Ï', 'Ì', 'Ó', 'Ô', //
        '\u{F8FF}', 'Ò', 'Ú', 'Û', 'Ù', 'ı', 'ˆ', '˜', '¯', '˘', '˙', '˚', '¸', '˝', '˛', 'ˇ',
    ];
    match c {
        0x20..=0x7E => char::from(c),
        0x80..=0xFF => HIGH[usize::from(c - 0x80)],
        _ => '?',
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemBacking;

    fn put16(img: &mut [u8], at: usize, v: u16) {
        img[at..at + 2].copy_from_slice(&v.to_be_bytes());
    }
    fn put32(img: &mut [u8], at: usize, v: u32) {
        img[at..at + 4].copy_from_slice(&v.to_be_bytes());
    }
    fn put_str(img: &mut [u8], at: usize, s: &str) {
        img[at..at + s.len()].copy_from_slice(s.as_bytes());
    }

    /// Writes a 'PM' entry by the field offsets of Inside Macintosh: Devices.
    fn pm_entry(
        img: &mut [u8],
        index: usize,
        map: u32,
        start: u32,
        len: u32,
        name: &str,
        kind: &str,
    ) {
        let b = index * 512;
        put16(img, b, 0x504D);
        put32(img, b + 0x04, map);
        put32(img, b + 0x08, start);
        put32(img, b + 0x0C, len);
        put_str(img, b + 0x10, name);
        put_str(img, b + 0x30, kind);
        put32(img, b + 0x54, len);
    }

    /// A 200-block device as HD SC Setup lays one out: DDM, a 3-entry map at block 1, a driver
    /// at block 64 and an HFS volume "Macintosh HD" at block 96.
    fn device_image() -> Vec<u8> {
        let mut img = vec![0u8; 200 * 512];
        put16(&mut img, 0, 0x4552);
        put16(&mut img, 2, 512);
        put32(&mut img, 4, 200);
        put16(&mut img, 0x10, 1);
        put32(&mut img, 0x12, 64);
        put16(&mut img, 0x16, 19);
        put16(&mut img, 0x18, 1);
        pm_entry(&mut img, 1, 3, 1, 63, "Apple", "Apple_partition_map");
        pm_entry(&mut img, 2, 3, 64, 32, "Macintosh", "Apple_Driver43");
        pm_entry(&mut img, 3, 3, 96, 104, "MacOS", "Apple_HFS");
        // HFS MDB at partition block 2: signature, then the name as a Pascal string at +$24.
        let mdb = 96 * 512 + 1024;
        put16(&mut img, mdb, 0x4244);
        img[mdb + 0x24] = 12;
        put_str(&mut img, mdb + 0x25, "Macintosh HD");
        img
    }

    #[test]
    fn reads_the_ddm_and_every_map_entry() {
        let mut b = MemBacking::new(device_image());
        let map = read_map(&mut b).expect("a partition map");
        assert_eq!(map.ddm.block_size, 512);
        assert_eq!(map.ddm.block_count, 200);
        assert_eq!(
            map.ddm.drivers,
            vec![DriverEntry {
                block: 64,
                blocks: 19,
                kind: 1
            }]
        );
        let kinds: Vec<_> = map.partitions.iter().map(|p| p.kind.as_str()).collect();
        assert_eq!(
            kinds,
            ["Apple_partition_map", "Apple_Driver43", "Apple_HFS"]
        );
        assert_eq!(
            (map.partitions[2].start, map.partitions[2].blocks),
            (96, 104)
        );
    }

    #[test]
    fn volume_name_finds_the_hfs_partition() {
        let mut b = MemBacking::new(device_image());
        assert_eq!(volume_name(&mut b).as_deref(), Some("Macintosh HD"));
    }

    #[test]
    fn volume_name_of_bare_volumes_and_blank_disks() {
        // An MFS volume starting at block 0 (no partition map): name "Disk ü" in Mac Roman.
        let mut img = vec![0u8; 20 * 512];
        put16(&mut img, 1024, 0xD2D7);
        img[1024 + 0x24] = 6;
        img[1024 + 0x25..1024 + 0x2B].copy_from_slice(b"Disk \x9F");
        assert_eq!(
            volume_name(&mut MemBacking::new(img)).as_deref(),
            Some("Disk ü")
        );
        // A blank disk has neither.
        let mut blank = MemBacking::new(vec![0; 64 * 512]);
        assert_eq!(volume_name(&mut blank), None);
        assert!(read_map(&mut blank).is_none());
    }

    #[test]
    fn hostile_maps_never_panic() {
        // A map that claims 2^32-1 entries on a tiny image, an oversized driver count and a
        // partition pointing far past the end.
        let mut img = vec![0u8; 4 * 512];
        put16(&mut img, 0, 0x4552);
        put16(&mut img, 0x10, 0xFFFF);
        pm_entry(&mut img, 1, u32::MAX, u32::MAX, u32::MAX, "x", "Apple_HFS");
        img[2 * 512 + 0x30..2 * 512 + 0x50].fill(0xFF); // no terminator: 32 bytes, still fine
        put16(&mut img, 2 * 512, 0x504D);
        let mut b = MemBacking::new(img);
        let map = read_map(&mut b).unwrap();
        assert_eq!(map.ddm.drivers.len(), 61);
        // The map ends at the first block without 'PM' (block 3), whatever it claims.
        assert_eq!(map.partitions.len(), 2);
        assert_eq!(volume_name(&mut b), None);
        // Images shorter than a block.
        assert_eq!(volume_name(&mut MemBacking::new(vec![0x45, 0x52])), None);
    }

    #[test]
    fn driver_checksum_by_hand() {
        // s = rol16(s + b, 1) over 01 02 80:
        //   s = rol(0x0001) = 0x0002; s = rol(0x0004) = 0x0008; s = rol(0x0088) = 0x0110.
        assert_eq!(driver_checksum(&[0x01, 0x02, 0x80]), 0x0110);
        // 80 then eight zeros: 0x0100 doubles to 0x8000, and the ninth rotate carries bit 15
        // into bit 0.
        assert_eq!(driver_checksum(&[0x80, 0, 0, 0, 0, 0, 0, 0]), 0x8000);
        assert_eq!(driver_checksum(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0]), 0x0001);
        // FF then seven zeros gives 0xFF00; + FF = 0xFFFF (rotates to itself); + 02 wraps to
        // 0x0001 before the rotate: 0x0002.
        assert_eq!(
            driver_checksum(&[0xFF, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0x02]),
            0x0002
        );
        assert_eq!(driver_checksum(&[]), 0);
    }
}
