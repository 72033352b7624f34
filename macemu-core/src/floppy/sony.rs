//! The Sony 3.5" drive as the IWM sees it: sense lines read through SENSE, commands latched by
//! LSTRB, a spinning disk under the heads, and the decoding of what the Mac writes.
//!
//! Registers are numbered here as CA2 CA1 CA0 SEL read as a 4-bit number (the doc's first
//! column); the ROM and MAME number them differently.
//!
//! Timing choices: a step completes at once (STEP reads "done" on the next poll; MAME and Clock
//! Signal do the same), and the drive is READY as soon as its motor runs with a disk in (as PCE
//! and Clock Signal). The disk turns only with the motor on and a disk in: the head position is
//! the number of bit cells (16 CPU clocks each) since the motor started, modulo the track's
//! cells a revolution at its zone's speed; TACH gives 60 pulses a revolution, a square wave.

use super::gcr;
use super::image::FloppyImage;
use super::track::{self, Track, CELL_CLOCKS};
use crate::storage::DiskError;

/// Sense registers (CA2 CA1 CA0 SEL).
pub mod reg {
    pub const DIRTN: u8 = 0b0000;
    pub const CSTIN: u8 = 0b0001;
    pub const STEP: u8 = 0b0010;
    pub const WRTPRT: u8 = 0b0011;
    pub const MOTORON: u8 = 0b0100;
    pub const TKO: u8 = 0b0101;
    pub const SWITCHED: u8 = 0b0110;
    pub const TACH: u8 = 0b0111;
    pub const RDDATA0: u8 = 0b1000;
    pub const RDDATA1: u8 = 0b1001;
    pub const SUPERDRIVE: u8 = 0b1010;
    pub const MFM: u8 = 0b1011;
    pub const SIDES: u8 = 0b1100;
    pub const READY: u8 = 0b1101;
    pub const INSTALLED: u8 = 0b1110;
    pub const DRIVE_800K: u8 = 0b1111;
}

/// Commands (CA2 CA1 CA0 SEL at the LSTRB pulse; CA2 is the value written).
pub mod cmd {
    pub const DIR_INWARD: u8 = 0b0000;
    pub const DIR_OUTWARD: u8 = 0b1000;
    pub const STEP: u8 = 0b0010;
    pub const MOTOR_ON: u8 = 0b0100;
    pub const MOTOR_OFF: u8 = 0b1100;
    pub const EJECT: u8 = 0b1110;
    pub const CLEAR_SWITCHED: u8 = 0b1001;
}

/// What a command did that the machine must report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriveEvent {
    Ejected,
}

/// Collects the nibbles the IWM writes and picks out data fields.
#[derive(Clone, Debug, Default)]
struct WriteDecoder {
    window: [u8; 3],
    field: Option<Vec<u8>>,
}

impl WriteDecoder {
    /// Feeds one written byte; returns the decoded sector once a data field with its checksum
    /// and `DE AA` is complete.
    fn push(&mut self, b: u8) -> Option<Result<(u8, [u8; gcr::RAW_SECTOR]), gcr::DataError>> {
        if let Some(f) = &mut self.field {
            f.push(b);
            if f.len() < gcr::DATA_NIBBLES + 2 {
                return None;
            }
            let f = self.field.take().unwrap_or_default();
            self.window = [0; 3];
            if f[gcr::DATA_NIBBLES..] != gcr::FIELD_END {
                return Some(Err(gcr::DataError::BadNibble(gcr::DATA_NIBBLES)));
            }
            let mut n = [0u8; gcr::DATA_NIBBLES];
            n.copy_from_slice(&f[..gcr::DATA_NIBBLES]);
            return Some(gcr::decode_data(&n));
        }
        self.window = [self.window[1], self.window[2], b];
        if self.window == gcr::DATA_MARK {
            self.field = Some(Vec::with_capacity(gcr::DATA_NIBBLES + 2));
        }
        None
    }
}

/// One drive.
#[derive(Debug)]
pub struct SonyDrive {
    disk: Option<FloppyImage>,
    track: u8,
    toward_zero: bool,
    motor: bool,
    switched: bool,
    /// Rotation: cells passed under the head at `rot_time` (counted from an index).
    rot_cell: u64,
    rot_time: u64,
    /// Built tracks for the current head position, one per side.
    cache: [Option<Track>; 2],
    writer: WriteDecoder,
    /// Sectors the Mac wrote that reached the image, and the last write that did not (until
    /// [`SonyDrive::take_write_error`] reports it).
    pub sectors_written: u64,
    pub last_write_error: Option<String>,
}

impl Default for SonyDrive {
    fn default() -> Self {
        Self::new()
    }
}

impl SonyDrive {
    pub fn new() -> SonyDrive {
        SonyDrive {
            disk: None,
            track: 0,
            toward_zero: false,
            motor: false,
            switched: false,
            rot_cell: 0,
            rot_time: 0,
            cache: [None, None],
            writer: WriteDecoder::default(),
            sectors_written: 0,
            last_write_error: None,
        }
    }

    /// The last write that did not reach the image, once: the drive cannot tell the Mac, so
    /// the host's user is told instead.
    pub fn take_write_error(&mut self) -> Option<String> {
        self.last_write_error.take()
    }

    pub fn disk(&self) -> Option<&FloppyImage> {
        self.disk.as_ref()
    }

    pub fn track(&self) -> u8 {
        self.track
    }

    fn spinning(&self) -> bool {
        self.motor && self.disk.is_some()
    }

    /// Cells passed under the head since the reference index, at `now`.
    fn cell_at(&self, now: u64) -> u64 {
        if self.spinning() {
            self.rot_cell + now.saturating_sub(self.rot_time) / CELL_CLOCKS
        } else {
            self.rot_cell
        }
    }

    /// Makes `now` the rotation's reference time (before the spin state changes).
    fn reanchor(&mut self, now: u64) {
        self.rot_cell = self.cell_at(now);
        self.rot_time = now;
    }

    pub fn insert(&mut self, image: FloppyImage, now: u64) -> Result<(), DiskError> {
        if self.disk.is_some() {
            return Err(DiskError::Occupied(crate::storage::DriveSlot::Floppy(0)));
        }
        self.reanchor(now);
        self.disk = Some(image);
        self.switched = true;
        self.cache = [None, None];
        self.writer = WriteDecoder::default();
        Ok(())
    }

    /// Takes the disk out (the motor stops with it).
    pub fn eject(&mut self, now: u64) -> Option<FloppyImage> {
        self.reanchor(now);
        let d = self.disk.take();
        if d.is_some() {
            self.switched = true;
        }
        self.motor = false;
        self.cache = [None, None];
        d
    }

    /// The level of sense register `r` (CA2 CA1 CA0 SEL) at `now`.
    pub fn sense(&self, r: u8, now: u64) -> bool {
        let disk_in = self.disk.is_some();
        match r & 0xF {
            reg::DIRTN => self.toward_zero,
            reg::CSTIN => !disk_in,
            reg::STEP => true,
            reg::WRTPRT => self.disk.as_ref().is_some_and(|d| !d.read_only()),
            reg::MOTORON => !self.spinning(),
            reg::TKO => self.track != 0,
            reg::SWITCHED => self.switched,
            reg::TACH => self.tach(now),
            reg::RDDATA0 | reg::RDDATA1 => true,
            reg::SUPERDRIVE | reg::MFM => false,
            reg::SIDES => true,
            reg::READY => !self.spinning(),
            reg::INSTALLED => false,
            _ => true, // DRIVE_800K
        }
    }

    fn tach(&self, now: u64) -> bool {
        if !self.spinning() {
            return false;
        }
        let cells = u64::from(track::cells_per_rev(self.track));
        let pos = self.cell_at(now) % cells;
        (pos * 120 / cells) & 1 == 1
    }

    /// LSTRB rising edge with the lines at `r` (CA2 CA1 CA0 SEL).
    pub fn command(&mut self, r: u8, now: u64) -> Option<DriveEvent> {
        match r & 0xF {
            cmd::DIR_INWARD => self.toward_zero = false,
            cmd::DIR_OUTWARD => self.toward_zero = true,
            cmd::STEP => self.step(now),
            cmd::MOTOR_ON => {
                self.reanchor(now);
                self.motor = true;
            }
            cmd::MOTOR_OFF => {
                self.reanchor(now);
                self.motor = false;
            }
            cmd::EJECT if self.disk.is_some() => {
                self.eject(now);
                return Some(DriveEvent::Ejected);
            }
            cmd::CLEAR_SWITCHED => self.switched = false,
            _ => {}
        }
        None
    }

    fn step(&mut self, now: u64) {
        let old = self.track;
        let new = if self.toward_zero {
            old.saturating_sub(1)
        } else {
            (old + 1).min(track::TRACKS - 1)
        };
        if new == old {
            return;
        }
        // The spindle changes speed at a zone boundary: keep the angle, rescale the cells.
        let (oc, nc) = (
            u64::from(track::cells_per_rev(old)),
            u64::from(track::cells_per_rev(new)),
        );
        if oc != nc {
            let c = self.cell_at(now);
            self.rot_cell = (c % oc) * nc / oc;
            self.rot_time = now;
        }
        self.track = new;
        self.cache = [None, None];
    }

    fn track_for(&mut self, side: u8) -> Option<&Track> {
        let side = usize::from(side & 1);
        if self.cache[side].is_none() {
            let disk = self.disk.as_ref()?;
            let t = self.track;
            let built = if u8::from(side == 1) < disk.sides() {
                Track::build(t, side as u8, disk.format_byte(), |s| {
                    disk.block_of(t, side as u8, s)
                        .map(|b| disk.sector(b))
                        .unwrap_or([0; gcr::RAW_SECTOR])
                })
            } else {
                Track::blank(t)
            };
            self.cache[side] = Some(built);
        }
        self.cache[side].as_ref()
    }

    /// The disk byte the read head of `side` last completed at `now`: its number counted
    /// since the rotation reference (to tell a new byte from one already seen), the byte, and
    /// the cells since it completed. `None` while the disk is not turning.
    pub fn read_byte(&mut self, side: u8, now: u64) -> Option<(u64, u8, u32)> {
        if !self.spinning() {
            return None;
        }
        let cell = self.cell_at(now);
        let t = self.track_for(side)?;
        let cells = u64::from(t.cells);
        let (rev, pos) = (cell / cells, (cell % cells) as u32);
        let n = t.bytes.len() as u64;
        let (i, rev) = match t.last_ready(pos) {
            Some(i) => (i, rev),
            None if rev > 0 => (t.bytes.len() - 1, rev - 1),
            None => return None,
        };
        let since = (pos + t.cells - t.ready_at[i]) % t.cells;
        Some((rev * n + i as u64, t.bytes[i], since))
    }

    /// The bytes of the current track's `side` as recorded (built from the image).
    pub fn track_bytes(&mut self, side: u8) -> Vec<u8> {
        self.track_for(side)
            .map(|t| t.bytes.clone())
            .unwrap_or_default()
    }

    /// Write mode starts: the decoder forgets earlier bytes.
    pub fn begin_write(&mut self) {
        self.writer = WriteDecoder::default();
    }

    /// A byte the IWM shifted out to the head of `side`. A complete data field is stored in
    /// the image at once (durably, through the backing) under the head's track and side and
    /// the field's sector number.
    pub fn write_byte(&mut self, b: u8, side: u8) {
        let Some(done) = self.writer.push(b) else {
            return;
        };
        let (sector, bytes) = match done {
            Ok(v) => v,
            Err(e) => {
                self.last_write_error = Some(format!("data field not stored: {e:?}"));
                return;
            }
        };
        let track = self.track;
        let Some(disk) = self.disk.as_mut() else {
            return;
        };
        let Some(block) = disk.block_of(track, side, sector) else {
            self.last_write_error = Some(format!(
                "data field for track {track} side {side} sector {sector}, not on this disk"
            ));
            return;
        };
        match disk.write_sector(block, &bytes) {
            Ok(()) => {
                self.sectors_written += 1;
                self.cache[usize::from(side & 1)] = None;
            }
            Err(e) => self.last_write_error = Some(format!("block {block}: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemBacking;

    fn disk(len: usize, read_only: bool) -> FloppyImage {
        let mut m = MemBacking::new((0..len).map(|i| (i / 512) as u8).collect());
        m.read_only = read_only;
        FloppyImage::open(Box::new(m)).unwrap()
    }

    #[test]
    fn sense_lines_without_and_with_a_disk() {
        let mut d = SonyDrive::new();
        let s = |d: &SonyDrive, r| d.sense(r, 0);
        assert!(s(&d, reg::CSTIN), "no disk");
        assert!(!s(&d, reg::INSTALLED), "drive present");
        assert!(s(&d, reg::DRIVE_800K) && s(&d, reg::SIDES));
        assert!(!s(&d, reg::TKO), "head at track 0");
        assert!(s(&d, reg::MOTORON) && s(&d, reg::READY), "off, not ready");
        assert!(!s(&d, reg::SUPERDRIVE) && !s(&d, reg::MFM));
        assert!(!s(&d, reg::SWITCHED));

        d.insert(disk(819_200, false), 0).unwrap();
        assert!(!s(&d, reg::CSTIN), "disk in");
        assert!(s(&d, reg::SWITCHED), "insertion is a change");
        assert!(s(&d, reg::WRTPRT), "writable");
        d.command(cmd::CLEAR_SWITCHED, 0);
        assert!(!s(&d, reg::SWITCHED));
        d.command(cmd::MOTOR_ON, 0);
        assert!(!s(&d, reg::MOTORON) && !s(&d, reg::READY));
        d.command(cmd::MOTOR_OFF, 0);
        assert!(s(&d, reg::MOTORON));

        let mut p = SonyDrive::new();
        p.insert(disk(409_600, true), 0).unwrap();
        assert!(!p.sense(reg::WRTPRT, 0), "a read-only image is locked");
        assert!(matches!(
            p.insert(disk(409_600, true), 0),
            Err(DiskError::Occupied(_))
        ));
    }

    #[test]
    fn stepping_direction_and_track_zero() {
        let mut d = SonyDrive::new();
        d.command(cmd::DIR_INWARD, 0);
        assert!(!d.sense(reg::DIRTN, 0));
        for _ in 0..100 {
            d.command(cmd::STEP, 0);
            assert!(d.sense(reg::STEP, 0), "step done");
        }
        assert_eq!(d.track(), 79, "stops at the last track");
        assert!(d.sense(reg::TKO, 0));
        d.command(cmd::DIR_OUTWARD, 0);
        assert!(d.sense(reg::DIRTN, 0));
        // Recalibrate as the ROM does: step until TKO reads 0, at most 80 steps.
        let mut steps = 0;
        while d.sense(reg::TKO, 0) && steps < 80 {
            d.command(cmd::STEP, 0);
            steps += 1;
        }
        assert_eq!((steps, d.track()), (79, 0));
        d.command(cmd::STEP, 0);
        assert_eq!(d.track(), 0, "no track below 0");
        // A step command with CA2 = 1 is not a step.
        d.command(cmd::STEP | 0b1000, 0);
        assert_eq!(d.track(), 0);
    }

    #[test]
    fn tach_gives_sixty_pulses_a_revolution_at_zone_speed() {
        for (steps, rpm) in [(0u8, 394u64), (20, 429), (40, 472), (50, 525), (70, 590)] {
            let mut d = SonyDrive::new();
            d.insert(disk(819_200, false), 0).unwrap();
            for _ in 0..steps {
                d.command(cmd::STEP, 0);
            }
            assert!(!d.sense(reg::TACH, 0) || steps > 0);
            d.command(cmd::MOTOR_ON, 1000);
            // Count rising edges over one second, sampled every 200 clocks.
            let hz = 7_833_600u64;
            let mut rises = 0;
            let mut last = d.sense(reg::TACH, 1000);
            let mut t = 1000;
            while t < 1000 + hz {
                t += 200;
                let v = d.sense(reg::TACH, t);
                rises += u64::from(v && !last);
                last = v;
            }
            // 60 pulses a revolution, rpm / 60 revolutions a second.
            assert!(
                rises.abs_diff(rpm) <= 1,
                "zone {steps}: {rises} Hz, want {rpm}"
            );
        }
    }

    #[test]
    fn eject_command_frees_the_drive() {
        let mut d = SonyDrive::new();
        assert_eq!(d.command(cmd::EJECT, 0), None, "nothing to eject");
        d.insert(disk(409_600, false), 0).unwrap();
        d.command(cmd::CLEAR_SWITCHED, 0);
        d.command(cmd::MOTOR_ON, 0);
        assert_eq!(d.command(cmd::EJECT, 10), Some(DriveEvent::Ejected));
        assert!(d.disk().is_none());
        assert!(d.sense(reg::CSTIN, 10) && d.sense(reg::MOTORON, 10));
        assert!(d.sense(reg::SWITCHED, 10));
        // The eject-end strobe (0110) does nothing.
        assert_eq!(d.command(0b0110, 20), None);
    }

    #[test]
    fn the_disk_turns_one_byte_per_eight_cells() {
        let mut d = SonyDrive::new();
        d.insert(disk(819_200, false), 0).unwrap();
        assert_eq!(d.read_byte(0, 0), None, "motor off: nothing under the head");
        d.command(cmd::MOTOR_ON, 100);
        // Eight cells (128 clocks) after the start the first byte is complete.
        assert_eq!(d.read_byte(0, 100 + 127), None);
        let (i0, b0, since) = d.read_byte(0, 100 + 128).unwrap();
        assert_eq!((i0, b0, since), (0, 0xFF, 0));
        // A revolution later the same byte comes round again, numbered one revolution on.
        let rev = track::rev_clocks(0) / CELL_CLOCKS * CELL_CLOCKS;
        let n = d.track_for(0).unwrap().bytes.len() as u64;
        let (i1, b1, _) = d.read_byte(0, 100 + 128 + rev).unwrap();
        assert_eq!((i1, b1), (n, 0xFF));
    }

    #[test]
    fn written_data_fields_reach_the_image() {
        let mut d = SonyDrive::new();
        d.insert(disk(819_200, false), 0).unwrap();
        for _ in 0..17 {
            d.command(cmd::STEP, 0);
        }
        let mut sector = [0u8; gcr::RAW_SECTOR];
        sector[12..].fill(0xC3);
        d.begin_write();
        for &b in [0xFF, 0x3F, 0xCF, 0xF3, 0xFC, 0xFF].iter() {
            d.write_byte(b, 1);
        }
        for b in gcr::data_field(4, &sector) {
            d.write_byte(b, 1);
        }
        let disk = d.disk().unwrap();
        let block = disk.block_of(17, 1, 4).unwrap();
        assert_eq!(block, 384 + 22 + 11 + 4);
        assert_eq!(disk.block_data(block), &[0xC3; 512][..]);
        assert_eq!(d.sectors_written, 1);
        // A field with a broken checksum is not stored.
        let mut bad = gcr::data_field(5, &sector);
        bad[100] = gcr::encode6(gcr::decode6(bad[100]).unwrap() ^ 2);
        for b in bad {
            d.write_byte(b, 1);
        }
        assert_eq!(d.sectors_written, 1);
        assert!(d.last_write_error.is_some());
        let b5 = d.disk().unwrap().block_of(17, 1, 5).unwrap();
        assert_eq!(d.disk().unwrap().block_data(b5), &[b5 as u8; 512][..]);
    }
}
