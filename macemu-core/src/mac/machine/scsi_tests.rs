//! The SCSI disk through the board's address decoding: the ROM's SCSI Manager sequence at
//! $580000 + r×$10 (read), $580001 + r×$10 (write) and DACK at $580200/$580201, by byte and by
//! word accesses, reading block 0 of a device image laid out by hand.

use super::*;
use crate::bus::{Bus, FunctionCode};
use crate::mac::scsi::tests::{pattern, Port, Rom};
use crate::storage::MemBacking;

impl Port for Board {
    fn rd(&mut self, addr: u32) -> u8 {
        self.read8(addr)
    }
    fn wr(&mut self, addr: u32, v: u8) {
        self.write8(addr, v)
    }
}

/// Word accesses, as `MOVE.W` would make them: the 5380 answers on one byte lane.
struct Words<'a>(&'a mut Board);

impl Port for Words<'_> {
    fn rd(&mut self, addr: u32) -> u8 {
        let w = self
            .0
            .read_word(FunctionCode::SupervisorData, addr & !1)
            .unwrap();
        w as u8
    }
    fn wr(&mut self, addr: u32, v: u8) {
        self.0
            .write_word(FunctionCode::SupervisorData, addr & !1, u16::from(v))
            .unwrap()
    }
}

fn board() -> Board {
    Board::new(&[0u8; 128 * 1024], 1 << 20).unwrap()
}

/// Block 0 of a device image: 'ER', 512-byte blocks, 64 blocks, one Mac driver at 64/19.
fn device_image() -> Vec<u8> {
    let mut img = pattern(64);
    img[..512].fill(0);
    img[0..2].copy_from_slice(b"ER");
    img[2..4].copy_from_slice(&512u16.to_be_bytes());
    img[4..8].copy_from_slice(&64u32.to_be_bytes());
    img[0x10..0x12].copy_from_slice(&1u16.to_be_bytes());
    img[0x12..0x16].copy_from_slice(&64u32.to_be_bytes());
    img[0x16..0x18].copy_from_slice(&19u16.to_be_bytes());
    img[0x18..0x1A].copy_from_slice(&1u16.to_be_bytes());
    img
}

#[test]
fn the_rom_sequence_reads_block_0_through_the_board() {
    let mut b = board();
    let disk = ScsiDisk::new(Box::new(MemBacking::new(device_image()))).unwrap();
    b.scsi.attach(0, Box::new(disk)).unwrap();
    let mut rom = Rom { p: &mut b };
    // Boot scan from ID 6 down: 6..1 are empty, 0 answers.
    for id in (1..=6).rev() {
        rom.arbitrate().unwrap();
        assert!(rom.select(id).is_err(), "ID {id} is empty");
    }
    rom.arbitrate().unwrap();
    rom.select(0).unwrap();
    rom.command(&[0x08, 0, 0, 0, 1, 0]).unwrap();
    let block0 = rom.read(256, true).unwrap();
    let (status, msg, drained) = rom.complete().unwrap();
    assert_eq!((status, msg, drained), (0, 0, 256));
    assert_eq!(&block0[0..2], b"ER", "the DDM signature the ROM checks");
    assert_eq!(
        u16::from_be_bytes([block0[0x18], block0[0x19]]),
        1,
        "ddType 1"
    );
    // Then the driver: READ(6) of ddSize blocks at ddBlock.
    let (driver, st) = rom
        .read_command(0, &[0x08, 0, 0, 40, 19, 0], 19 * 512)
        .unwrap();
    assert_eq!(st, 0);
    assert_eq!(driver, pattern(64)[40 * 512..59 * 512]);
    assert!(rom.bus_free());
}

#[test]
fn word_accesses_reach_the_same_registers() {
    let mut b = board();
    let disk = ScsiDisk::new(Box::new(MemBacking::new(pattern(8)))).unwrap();
    b.scsi.attach(4, Box::new(disk)).unwrap();
    let mut w = Words(&mut b);
    let mut rom = Rom { p: &mut w };
    let (data, st) = rom.read_command(4, &[0x08, 0, 0, 3, 1, 0], 512).unwrap();
    assert_eq!((data, st), (pattern(8)[3 * 512..4 * 512].to_vec(), 0));
}

#[test]
fn the_machine_attaches_and_detaches_disks() {
    let mut mac = MacPlus::new(&[0u8; 128 * 1024], 1 << 20).unwrap();
    let disk = |n: usize| ScsiDisk::new(Box::new(MemBacking::new(vec![0; n * 512]))).unwrap();
    assert!(mac.scsi_info(0).is_none());
    mac.attach_scsi(0, disk(10)).unwrap();
    mac.attach_scsi(6, disk(20)).unwrap();
    assert!(matches!(
        mac.attach_scsi(7, disk(1)),
        Err(DiskError::NoSuchDrive(_))
    ));
    assert!(matches!(
        mac.attach_scsi(0, disk(1)),
        Err(DiskError::Occupied(_))
    ));
    assert_eq!(mac.scsi_info(6).unwrap().bytes, 20 * 512);
    assert!(mac.scsi_info(7).is_none());
    // A reset keeps the disks on the bus.
    mac.reset();
    assert_eq!(mac.scsi_info(0).unwrap().bytes, 10 * 512);
    mac.detach_scsi(0).unwrap();
    assert!(mac.scsi_info(0).is_none());
    assert!(mac.detach_scsi(9).is_err());
}

#[test]
fn the_rom_can_tell_that_the_machine_has_scsi() {
    // A ROM whose every long differs from its neighbours.
    let rom: Vec<u8> = (0..128 * 1024u32).map(|i| (i * 7 + 3) as u8).collect();
    let mut b = Board::new(&rom, 1 << 20).unwrap();
    let mut long = |a: u32| {
        let hi = b.read_word(FunctionCode::SupervisorData, a).unwrap();
        let lo = b.read_word(FunctionCode::SupervisorData, a + 2).unwrap();
        u32::from(hi) << 16 | u32::from(lo)
    };
    let rom_start = long(0x40_0000);
    assert_eq!(long(0x42_0000), rom_start, "the second copy of the ROM");
    assert_ne!(long(0x44_0000), rom_start, "past the ROM's window");
    assert_eq!(b.read8(0x43_FFFF), rom[0x1FFFF]);
}
