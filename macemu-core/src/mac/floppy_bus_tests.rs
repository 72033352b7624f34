//! The floppy through the board's bus, driven the way the Plus ROM's .Sony driver drives it:
//! IWM switches at $DFE1FF + n×$200, SEL on VIA PA5, the mode set to $1F, sense lines read
//! through the status register, commands strobed with LSTRB, bytes polled at Q6 off until bit 7
//! is set, and writes through Q7 with the handshake register. Each access costs the CPU clocks
//! a `MOVE.B`/`TST.B` with an address register takes, so the disk turns underneath as it would.

use super::*;
use crate::floppy::gcr::{self, RAW_SECTOR};
use crate::machine::Machine;
use crate::storage::{Backing, DriveEventKind, DriveSlot, FileBacking, MemBacking};

const IWM: u32 = 0xDFE1FF;
const VIA_DDRA: u32 = 0xEFE7FE;
const VIA_ORA: u32 = 0xEFFFFE;
/// Clocks for one IWM access instruction and for the branch of a polling loop.
const ACCESS: u64 = 12;
const LOOP: u64 = 10;

/// A miniature .Sony driver over the board's bus.
struct Driver<'a> {
    b: &'a mut Board,
}

impl Driver<'_> {
    fn new(b: &mut Board) -> Driver<'_> {
        b.write8(VIA_DDRA, 0x20);
        Driver { b }
    }
    fn r(&mut self, n: u32) -> u8 {
        self.b.now += ACCESS;
        self.b.read8(IWM + n * 0x200)
    }
    fn w(&mut self, n: u32, v: u8) {
        self.b.now += ACCESS;
        self.b.write8(IWM + n * 0x200, v);
    }
    fn sel(&mut self, on: bool) {
        self.b.now += ACCESS;
        self.b.write8(VIA_ORA, if on { 0x20 } else { 0 });
    }
    fn set_mode(&mut self) -> u8 {
        self.r(8); // ENABLE off
        self.r(13); // Q6 on
        for _ in 0..100 {
            self.w(15, 0x1F); // Q7 on: mode
            let st = self.r(14); // Q7 off: status
            if st & 0x1F == 0x1F {
                return st;
            }
        }
        panic!("mode not accepted");
    }
    /// Addresses drive register `r` (CA2 CA1 CA0 SEL) in the ROM's order: CA0 = CA1 = 1,
    /// then CA2, SEL, CA0, CA1.
    fn address(&mut self, r: u8) {
        self.r(1);
        self.r(3);
        self.r(if r & 8 != 0 { 5 } else { 4 });
        self.sel(r & 1 != 0);
        self.r(if r & 2 != 0 { 1 } else { 0 });
        self.r(if r & 4 != 0 { 3 } else { 2 });
    }
    fn sense(&mut self, r: u8) -> bool {
        self.address(r);
        self.r(13);
        self.r(14) & 0x80 != 0
    }
    fn command(&mut self, r: u8) {
        self.address(r);
        self.r(7);
        self.r(6);
    }
    fn start(&mut self, drive: u8) {
        let st = self.set_mode();
        assert_eq!(st & 0x20, 0, "ENABLE off while the mode is set");
        self.r(if drive == 0 { 10 } else { 11 });
        self.r(9); // ENABLE on
        self.command(0b0100); // motor on
        let mut polls = 0;
        while self.sense(0b1101) {
            polls += 1;
            assert!(polls < 1000, "READY");
        }
    }
    fn seek(&mut self, from: u8, to: u8) {
        self.command(if to > from { 0b0000 } else { 0b1000 });
        for _ in 0..from.abs_diff(to) {
            self.command(0b0010);
            let mut polls = 0;
            while !self.sense(0b0010) {
                polls += 1;
                assert!(polls <= 81, "step");
            }
        }
    }
    /// Head `side` to the data register: CA2 = 1, CA1 = CA0 = 0, SEL = side; Q7 and Q6 off.
    fn read_mode(&mut self, side: u8) {
        self.address(0b1000 | side);
        self.r(14);
        self.r(12);
    }
    fn byte(&mut self) -> u8 {
        for _ in 0..1000 {
            let v = self.r(12);
            if v & 0x80 != 0 {
                return v;
            }
            self.b.now += LOOP;
        }
        panic!("no byte from the disk");
    }
    /// Finds the address field of `sector` (within two revolutions), as the ROM does, and
    /// returns with its `DE AA` just read.
    fn find_address(&mut self, sector: u8) -> gcr::Address {
        let mut window = [0u8; 3];
        for _ in 0..20_000 {
            window = [window[1], window[2], self.byte()];
            if window != gcr::ADDRESS_MARK {
                continue;
            }
            let n = [(); 5].map(|_| self.byte());
            let a = gcr::decode_address(&n).expect("address field checks");
            assert_eq!([self.byte(), self.byte()], gcr::FIELD_END);
            if a.sector == sector {
                return a;
            }
        }
        panic!("sector {sector} not found");
    }
    /// Reads the data field that follows an address field (its mark within 48 bytes).
    fn read_data(&mut self) -> (u8, [u8; RAW_SECTOR]) {
        let mut window = [0u8; 3];
        for _ in 0..48 {
            window = [window[1], window[2], self.byte()];
            if window == gcr::DATA_MARK {
                let mut n = [0u8; gcr::DATA_NIBBLES];
                for x in n.iter_mut() {
                    *x = self.byte();
                }
                assert_eq!([self.byte(), self.byte()], gcr::FIELD_END);
                return gcr::decode_data(&n).expect("data field checks");
            }
        }
        panic!("no data mark within 48 bytes");
    }
    /// Rewrites the data field after the address field just read: from the sense state the
    /// first byte goes to Q7 on, each next one to Q6 on after the handshake shows the buffer
    /// empty; then wait for the last byte to go out and drop Q7.
    fn write_data(&mut self, sector: u8, bytes: &[u8; RAW_SECTOR]) {
        let mut out = vec![0xFF, 0x3F, 0xCF, 0xF3, 0xFC, 0xFF];
        out.extend(gcr::data_field(sector, bytes));
        self.r(13); // Q6 on: sense state
        self.w(15, out[0]);
        for &b in &out[1..] {
            let mut polls = 0;
            loop {
                let h = self.r(12);
                assert_ne!(h & 0x40, 0, "underrun");
                if h & 0x80 != 0 {
                    break;
                }
                self.b.now += LOOP;
                polls += 1;
                assert!(polls < 100);
            }
            self.w(13, b);
        }
        while self.r(12) & 0x80 == 0 {
            self.b.now += LOOP;
        }
        self.r(14); // Q7 off: write mode ends
    }
}

fn board() -> Board {
    Board::new(&vec![0u8; 128 * 1024], 1 << 20).unwrap()
}

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 8) as u8
        })
        .collect()
}

/// Block numbers by the doc's formula: tracks before, then side, then sector.
fn block(track: u8, side: u8, sector: u8, sides: u32) -> usize {
    let per_zone = [12u32, 11, 10, 9, 8];
    let before: u32 = (0..u32::from(track))
        .map(|t| per_zone[t as usize / 16] * sides)
        .sum();
    (before + u32::from(side) * per_zone[usize::from(track / 16)] + u32::from(sector)) as usize
}

#[test]
fn the_rom_way_reads_sectors_of_every_zone_on_both_sides() {
    let data = pattern(819_200, 1);
    let mut b = board();
    let img = FloppyImage::open(Box::new(MemBacking::new(data.clone()))).unwrap();
    b.iwm.insert(0, img, 0).unwrap();
    let mut d = Driver::new(&mut b);
    d.start(0);
    assert!(!d.sense(0b0001), "disk in place");
    assert!(d.sense(0b0011), "not write-protected");
    let mut at = 0;
    for (track, side, sector) in [
        (0u8, 0u8, 0u8),
        (0, 1, 11),
        (21, 1, 3),
        (40, 0, 9),
        (79, 1, 7),
    ] {
        d.seek(at, track);
        at = track;
        assert_eq!(d.sense(0b0101), track != 0, "TKO");
        d.read_mode(side);
        let a = d.find_address(sector);
        assert_eq!((a.track, a.side, a.format), (track, side, 0x22));
        let (s, got) = d.read_data();
        assert_eq!(s, sector);
        let k = block(track, side, sector, 2);
        assert_eq!(
            &got[12..],
            &data[k * 512..(k + 1) * 512],
            "T{track} H{side} S{sector}"
        );
        assert_eq!(got[..12], [0; 12], "no tags in a raw image");
    }
}

#[test]
fn the_rom_way_writes_a_sector_into_a_file_image() {
    let data = pattern(409_600, 2);
    let path = std::env::temp_dir().join(format!("macemu-bus-{}.img", std::process::id()));
    std::fs::write(&path, &data).unwrap();
    let img = FloppyImage::open(Box::new(FileBacking::open(&path, false).unwrap())).unwrap();
    let mut b = board();
    b.iwm.insert(1, img, 0).unwrap();
    let mut d = Driver::new(&mut b);
    d.start(1);
    let (track, sector) = (33u8, 6u8);
    d.seek(0, track);
    d.read_mode(0);
    let a = d.find_address(sector);
    assert_eq!((a.track, a.format), (track, 0x02), "a 400K disk");
    let mut new = [0u8; RAW_SECTOR];
    new[..12].copy_from_slice(b"tag bytes 12");
    new[12..].copy_from_slice(&pattern(512, 3));
    d.write_data(sector, &new);

    // The file holds the block as soon as the write is over.
    let k = block(track, 0, sector, 1);
    let file = std::fs::read(&path).unwrap();
    assert_eq!(&file[k * 512..(k + 1) * 512], &new[12..]);
    assert_eq!(&file[..k * 512], &data[..k * 512], "nothing else changed");
    assert_eq!(&file[(k + 1) * 512..], &data[(k + 1) * 512..]);

    // Reading the sector back through the IWM gives the new bytes (tags are kept in memory
    // for a raw image without a tag area).
    d.read_mode(0);
    d.find_address(sector);
    let (_, back) = d.read_data();
    assert_eq!(back, new);
    // The neighbouring sector is untouched.
    d.find_address(sector + 1);
    let (_, next) = d.read_data();
    let k1 = block(track, 0, sector + 1, 1);
    assert_eq!(&next[12..], &data[k1 * 512..(k1 + 1) * 512]);
    drop(b);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn read_only_images_are_write_protected_and_the_macs_eject_is_reported() {
    let mut m = MemBacking::new(vec![0; 819_200]);
    m.read_only = true;
    let mut mac = MacPlus::new(&vec![0u8; 128 * 1024], 1 << 20).unwrap();
    assert!(mac.floppy_info(0).is_none());
    mac.insert_floppy(0, FloppyImage::open(Box::new(m)).unwrap())
        .unwrap();
    let info = mac.floppy_info(0).unwrap();
    assert!(info.read_only);
    assert_eq!(info.format, "raw 800K");
    let again = FloppyImage::open(Box::new(MemBacking::new(vec![0; 409_600]))).unwrap();
    assert!(matches!(
        mac.insert_floppy(0, again),
        Err(DiskError::Occupied(_))
    ));
    let other = FloppyImage::open(Box::new(MemBacking::new(vec![0; 409_600]))).unwrap();
    assert!(matches!(
        mac.insert_floppy(2, other),
        Err(DiskError::NoSuchDrive(_))
    ));

    let mut d = Driver::new(&mut mac.board);
    d.start(0);
    assert!(!d.sense(0b0011), "WRTPRT: locked");
    assert!(d.sense(0b0110), "SWITCHED after insertion");
    d.command(0b1001);
    assert!(!d.sense(0b0110));
    d.command(0b1110); // eject
    assert!(d.sense(0b0001), "no disk in place");
    assert!(d.sense(0b0100), "motor stopped");
    assert_eq!(mac.take_floppy_ejects(), [0]);
    assert!(mac.take_floppy_ejects().is_empty());
    assert!(mac.floppy_info(0).is_none());

    // The host's eject is not a Mac eject.
    let e = FloppyImage::open(Box::new(MemBacking::new(vec![0; 409_600]))).unwrap();
    mac.insert_floppy(1, e).unwrap();
    mac.eject_floppy(1).unwrap();
    assert!(mac.floppy_info(1).is_none());
    assert!(mac.take_floppy_ejects().is_empty());
    assert!(
        mac.eject_floppy(1).is_ok(),
        "ejecting an empty drive is harmless"
    );
    assert!(matches!(
        mac.eject_floppy(5),
        Err(DiskError::NoSuchDrive(_))
    ));
}

#[test]
fn a_write_to_a_read_only_image_changes_nothing() {
    let mut m = MemBacking::new(pattern(409_600, 5));
    m.read_only = true;
    let img = FloppyImage::open(Box::new(m.clone())).unwrap();
    let mut mac = MacPlus::new(&vec![0u8; 128 * 1024], 1 << 20).unwrap();
    mac.insert_floppy(0, img).unwrap();
    let mut d = Driver::new(&mut mac.board);
    d.start(0);
    d.read_mode(0);
    d.find_address(2);
    d.write_data(2, &[0x77; RAW_SECTOR]);
    let drive = mac.board.iwm.drive(0).unwrap();
    assert_eq!(drive.sectors_written, 0);
    let disk = drive.disk().unwrap();
    let mut orig = [0u8; 512];
    m.read_at(2 * 512, &mut orig).unwrap();
    assert_eq!(disk.block_data(2), &orig[..]);

    // The floppy cannot tell the Mac, so the host's user is told, once, with the drive's state.
    let events = Machine::take_drive_events(&mut mac);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].info.slot, DriveSlot::Floppy(0));
    assert!(events[0].info.media.as_ref().is_some_and(|m| m.read_only));
    match &events[0].kind {
        DriveEventKind::WriteFailed(why) => assert!(why.starts_with("block 2:"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(Machine::take_drive_events(&mut mac).is_empty());
}

/// Timing as the Mac sees it: a sector's address field comes round once a revolution at the
/// zone's speed (60 / rpm seconds of 7.8336 MHz clocks), and from the end of an address field
/// to the end of its data field is 6 self-sync bytes (10 cells) and 709 disk bytes (8 cells)
/// at 16 clocks a cell: a byte every 128 clocks, about 16 µs.
#[test]
fn revolution_and_byte_timing() {
    for (track, rpm) in [(0u8, 394u64), (20, 429), (70, 590)] {
        let img = FloppyImage::open(Box::new(MemBacking::new(pattern(819_200, 9)))).unwrap();
        let mut b = board();
        b.iwm.insert(0, img, 0).unwrap();
        let mut d = Driver::new(&mut b);
        d.start(0);
        d.seek(0, track);
        d.read_mode(1);
        d.find_address(3);
        let t1 = d.b.now;
        d.find_address(3);
        let t2 = d.b.now;
        let rev = 7_833_600 * 60 / rpm;
        assert!(
            (t2 - t1).abs_diff(rev) < 100,
            "track {track}: {} clocks a revolution, want {rev}",
            t2 - t1
        );
        d.read_data();
        let field = (6 * 10 + 709 * 8) * 16;
        assert!(
            (d.b.now - t2).abs_diff(field) < 100,
            "track {track}: data field took {} clocks, want {field}",
            d.b.now - t2
        );
    }
}
