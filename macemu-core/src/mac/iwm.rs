//! The IWM floppy controller and the Plus's two Sony 3.5" drives (internal and external).
//!
//! Facts (IWM specification; Guide to the Macintosh Family Hardware; the Plus ROM's .Sony
//! driver): address bits 12..9 pick a state line (CA0, CA1, CA2, LSTRB, ENABLE, SELECT, Q6, Q7
//! in pairs off/on, at $DFE1FF + n×$200); every access sets its line first, and the register
//! then read or written depends on Q7/Q6: (0,0) data ($FF with ENABLE off), (0,1) status,
//! (1,0) write handshake, (1,1) mode (written with ENABLE off) or write data. Status: bit 7
//! SENSE, bit 5 ENABLE, bits 4..0 the mode. Handshake: bit 7 write buffer empty, bit 6 zero
//! after an underrun. The drive register behind SENSE is chosen by CA2, CA1, CA0 and SEL (VIA
//! PA5); LSTRB's rising edge latches a command; SEL also picks the head.
//!
//! Time is the board's CPU clock, passed in on every access; nothing ticks in between. Reads:
//! the data register holds the last byte the head completed (see [`SonyDrive::read_byte`]). In
//! latch mode (mode bit 0, the Plus ROM's $1F) a byte reads with bit 7 set once, and with bit 7
//! clear afterwards until the next byte completes, so a polling loop sees each byte once; without
//! latch mode a byte is valid for the two cells after it completes. Writes: a byte written to
//! the data register waits in a one-byte buffer until the shifter takes it, one byte every 8
//! bit cells (16 FCLK = CPU clocks a cell in the Plus's fast mode); if the buffer is empty when
//! the shifter needs a byte, the write underruns. Write mode lasts while Q7 is on.

use crate::floppy::sony::{DriveEvent, SonyDrive};
use crate::floppy::FloppyImage;
use crate::storage::{DiskError, DriveSlot, MediaInfo};

const CA0: u8 = 0x01;
const CA1: u8 = 0x02;
const CA2: u8 = 0x04;
const LSTRB: u8 = 0x08;
const ENABLE: u8 = 0x10;
const SELECT: u8 = 0x20;
const Q6: u8 = 0x40;
const Q7: u8 = 0x80;

/// Cells a byte without latch mode stays readable after it completes.
const UNLATCHED_VALID_CELLS: u32 = 2;

#[derive(Debug)]
pub struct Iwm {
    /// State lines: bit 0 CA0, 1 CA1, 2 CA2, 3 LSTRB, 4 ENABLE, 5 SELECT, 6 Q6, 7 Q7.
    lines: u8,
    mode: u8,
    drives: [SonyDrive; 2],
    /// Number of the last byte read with bit 7 set, per drive (see `SonyDrive::read_byte`).
    delivered: Option<(usize, u64)>,
    write: Option<WriteState>,
    ejects: Vec<u8>,
}

#[derive(Clone, Copy, Debug)]
struct WriteState {
    drive: usize,
    side: u8,
    /// The byte waiting for the shifter.
    buffer: Option<u8>,
    /// When the shifter finishes its byte and wants the next (None before the first byte).
    shifter_free_at: Option<u64>,
    underrun: bool,
}

impl Default for Iwm {
    fn default() -> Self {
        Self::new()
    }
}

impl Iwm {
    pub fn new() -> Iwm {
        Iwm {
            lines: 0,
            mode: 0,
            drives: [SonyDrive::new(), SonyDrive::new()],
            delivered: None,
            write: None,
            ejects: Vec::new(),
        }
    }

    /// The reset line: controller registers and drive motors; disks stay in their drives.
    pub fn reset(&mut self, now: u64) {
        self.finish_write(now);
        self.lines = 0;
        self.mode = 0;
        self.delivered = None;
        for d in &mut self.drives {
            d.command(crate::floppy::sony::cmd::MOTOR_OFF, now);
        }
    }

    /// Whether the ROM switched the internal drive's motor on (it turns only with a disk in).
    pub fn motor_requested(&self) -> bool {
        !self.drives[0].sense(crate::floppy::sony::reg::MOTORON, 0)
    }

    pub fn drive(&self, n: u8) -> Option<&SonyDrive> {
        self.drives.get(usize::from(n))
    }

    pub fn insert(&mut self, n: u8, image: FloppyImage, now: u64) -> Result<(), DiskError> {
        let slot = DriveSlot::Floppy(n);
        let d = self
            .drives
            .get_mut(usize::from(n))
            .ok_or(DiskError::NoSuchDrive(slot))?;
        if d.disk().is_some() {
            return Err(DiskError::Occupied(slot));
        }
        d.insert(image, now)
    }

    /// Takes the disk out of drive `n` (nothing happens to an empty drive).
    pub fn eject(&mut self, n: u8, now: u64) -> Result<Option<FloppyImage>, DiskError> {
        let i = usize::from(n);
        if i >= self.drives.len() {
            return Err(DiskError::NoSuchDrive(DriveSlot::Floppy(n)));
        }
        if self.write.is_some_and(|w| w.drive == i) {
            self.finish_write(now);
        }
        Ok(self.drives[i].eject(now))
    }

    pub fn info(&self, n: u8) -> Option<MediaInfo> {
        self.drive(n)?.disk().map(FloppyImage::info)
    }

    /// Drives whose disk the Mac ejected since the last call.
    pub fn take_ejects(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.ejects)
    }

    /// Writes that did not reach a drive's image since the last call, by drive.
    pub fn take_write_errors(&mut self) -> Vec<(u8, String)> {
        (0u8..)
            .zip(self.drives.iter_mut())
            .filter_map(|(n, d)| d.take_write_error().map(|e| (n, e)))
            .collect()
    }

    fn selected(&self) -> usize {
        usize::from(self.lines & SELECT != 0)
    }

    /// Drive register (CA2 CA1 CA0 SEL) the lines address.
    fn register(&self, sel: bool) -> u8 {
        ((self.lines & (CA2 | CA1 | CA0)) << 1) | u8::from(sel)
    }

    fn touch(&mut self, addr: u32, sel: bool, now: u64) {
        let bit = 1u8 << ((addr >> 10) & 7);
        let on = (addr >> 9) & 1 != 0;
        let before = self.lines;
        if on {
            self.lines |= bit;
        } else {
            self.lines &= !bit;
        }
        let rose = self.lines & !before;
        let fell = before & !self.lines;
        if rose & LSTRB != 0 {
            let d = self.selected();
            let r = self.register(sel);
            if self.drives[d].command(r, now) == Some(DriveEvent::Ejected) {
                self.ejects.push(d as u8);
            }
        }
        if self.write.is_some() && (fell & (Q7 | ENABLE) != 0 || (rose | fell) & SELECT != 0) {
            self.finish_write(now);
        }
        if rose & Q7 != 0 && self.lines & ENABLE != 0 {
            let drive = self.selected();
            self.drives[drive].begin_write();
            self.write = Some(WriteState {
                drive,
                side: u8::from(sel),
                buffer: None,
                shifter_free_at: None,
                underrun: false,
            });
        }
    }

    fn byte_clocks(&self) -> u64 {
        // Bit cell in FCLK for mode bits 4 (8 MHz) and 3 (fast); FCLK is the CPU clock here.
        let cell = match self.mode & 0x18 {
            0x00 => 28,
            0x08 => 14,
            0x10 => 32,
            _ => 16,
        };
        8 * cell
    }

    /// Runs the write shifter up to `now`.
    fn advance_write(&mut self, now: u64) {
        let byte = self.byte_clocks();
        let Some(w) = self.write.as_mut() else {
            return;
        };
        while let Some(free) = w.shifter_free_at {
            if w.underrun || free > now {
                break;
            }
            match w.buffer.take() {
                Some(b) => {
                    self.drives[w.drive].write_byte(b, w.side);
                    w.shifter_free_at = Some(free + byte);
                }
                None => w.underrun = true,
            }
        }
    }

    /// Write mode ends (Q7 off): a byte still in the buffer goes out as the last one.
    fn finish_write(&mut self, now: u64) {
        self.advance_write(now);
        if let Some(w) = self.write.take() {
            if let (Some(b), false) = (w.buffer, w.underrun) {
                self.drives[w.drive].write_byte(b, w.side);
            }
        }
    }

    /// Read at `addr` (address bits 12..9 select the line) at CPU clock `now`; `sel` is VIA PA5.
    pub fn read(&mut self, addr: u32, sel: bool, now: u64) -> u8 {
        self.touch(addr, sel, now);
        match (self.lines & Q7 != 0, self.lines & Q6 != 0) {
            (false, false) => self.read_data(sel, now),
            (false, true) => {
                let sense = self.drives[self.selected()].sense(self.register(sel), now);
                (u8::from(sense) << 7)
                    | if self.lines & ENABLE != 0 { 0x20 } else { 0 }
                    | (self.mode & 0x1F)
            }
            (true, false) => {
                self.advance_write(now);
                match &self.write {
                    Some(w) => {
                        (u8::from(w.buffer.is_none()) << 7) | (u8::from(!w.underrun) << 6) | 0x3F
                    }
                    None => 0xFF,
                }
            }
            (true, true) => 0xFF,
        }
    }

    fn read_data(&mut self, sel: bool, now: u64) -> u8 {
        if self.lines & ENABLE == 0 {
            return 0xFF;
        }
        let d = self.selected();
        let Some((n, byte, since)) = self.drives[d].read_byte(u8::from(sel), now) else {
            return 0;
        };
        if self.mode & 1 == 0 {
            return if since < UNLATCHED_VALID_CELLS {
                byte
            } else {
                byte & 0x7F
            };
        }
        if self.delivered == Some((d, n)) {
            byte & 0x7F
        } else {
            self.delivered = Some((d, n));
            byte
        }
    }

    /// Write at `addr` at CPU clock `now`: with Q7 and Q6 on, to the mode register (ENABLE
    /// off) or the write buffer (ENABLE on).
    pub fn write(&mut self, addr: u32, v: u8, sel: bool, now: u64) {
        self.touch(addr, sel, now);
        if self.lines & (Q7 | Q6) != (Q7 | Q6) {
            return;
        }
        if self.lines & ENABLE == 0 {
            self.mode = v;
            return;
        }
        self.advance_write(now);
        if let Some(w) = self.write.as_mut() {
            if w.underrun {
                return;
            }
            // A byte written over a full buffer replaces it, as on the chip.
            w.buffer = Some(v);
            if w.shifter_free_at.is_none() {
                w.shifter_free_at = Some(now);
            }
        }
        self.advance_write(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::floppy::gcr;
    use crate::floppy::sony::reg;
    use crate::storage::MemBacking;

    /// Address for state line `line` (0..7) set on or off.
    fn a(line: u32, on: bool) -> u32 {
        0xDFE1FF + (line << 10) + if on { 0x200 } else { 0 }
    }

    fn disk() -> FloppyImage {
        let bytes = (0..819_200usize).map(|i| (i / 512 + i % 7) as u8).collect();
        FloppyImage::open(Box::new(MemBacking::new(bytes))).unwrap()
    }

    /// Sets CA2 CA1 CA0 for register `r` (CA2 CA1 CA0 SEL) and returns SEL.
    fn lines_for(iwm: &mut Iwm, r: u8, now: u64) -> bool {
        iwm.read(a(2, r & 8 != 0), false, now);
        iwm.read(a(1, r & 4 != 0), false, now);
        iwm.read(a(0, r & 2 != 0), false, now);
        r & 1 != 0
    }

    fn sense(iwm: &mut Iwm, r: u8, now: u64) -> bool {
        let sel = lines_for(iwm, r, now);
        iwm.read(a(6, true), sel, now);
        iwm.read(a(7, false), sel, now) & 0x80 != 0
    }

    fn command(iwm: &mut Iwm, r: u8, now: u64) {
        let sel = lines_for(iwm, r, now);
        iwm.read(a(3, true), sel, now);
        iwm.read(a(3, false), sel, now);
    }

    /// The ROM's mode setting: ENABLE off, Q6 on, write $1F at Q7 on, read back the status.
    fn set_mode(iwm: &mut Iwm, mode: u8) -> u8 {
        iwm.read(a(4, false), false, 0);
        iwm.read(a(6, true), false, 0);
        iwm.write(a(7, true), mode, false, 0);
        iwm.read(a(7, false), false, 0)
    }

    #[test]
    fn status_shows_mode_enable_and_sense() {
        let mut iwm = Iwm::new();
        let st = set_mode(&mut iwm, 0x1F);
        assert_eq!(st & 0x7F, 0x1F, "mode, ENABLE off, bit 6 zero");
        // With ENABLE on, mode writes are ignored and status bit 5 is set.
        iwm.read(a(4, true), false, 0);
        iwm.write(a(7, true), 0x00, false, 0);
        let st = iwm.read(a(7, false), false, 0);
        assert_eq!(st & 0x3F, 0x3F);
        // SENSE follows the addressed register: INSTALLED reads 0, DRIVE_800K 1.
        assert!(!sense(&mut iwm, reg::INSTALLED, 0));
        assert!(sense(&mut iwm, reg::DRIVE_800K, 0));
        assert!(sense(&mut iwm, reg::CSTIN, 0), "empty drive");
        iwm.insert(0, disk(), 0).unwrap();
        assert!(!sense(&mut iwm, reg::CSTIN, 0), "disk in");
        // SELECT picks the external drive, which is empty.
        iwm.read(a(5, true), false, 0);
        assert!(sense(&mut iwm, reg::CSTIN, 0));
        iwm.read(a(5, false), false, 0);
        assert!(!sense(&mut iwm, reg::CSTIN, 0));
    }

    #[test]
    fn sense_register_numbering_through_the_lines() {
        let mut iwm = Iwm::new();
        iwm.insert(0, disk(), 0).unwrap();
        // Each register index reads what the drive model says for it (CA2 CA1 CA0 SEL).
        for r in 0..16u8 {
            let direct = iwm.drives[0].sense(r, 0);
            assert_eq!(sense(&mut iwm, r, 0), direct, "register {r:04b}");
        }
        // And the values tell the registers apart: disk in, writable, head at track 0.
        let all: Vec<bool> = (0..16u8).map(|r| sense(&mut iwm, r, 0)).collect();
        assert_eq!(
            all,
            [
                false, false, true, true, true, false, true, false, true, true, false, false, true,
                true, false, true
            ]
        );
    }

    #[test]
    fn commands_step_motor_and_eject() {
        let mut iwm = Iwm::new();
        iwm.insert(0, disk(), 0).unwrap();
        command(&mut iwm, 0b1001, 0); // clear SWITCHED
        assert!(!sense(&mut iwm, reg::SWITCHED, 0));
        command(&mut iwm, 0b0000, 0); // toward track 79
        for _ in 0..3 {
            command(&mut iwm, 0b0010, 0);
        }
        assert_eq!(iwm.drives[0].track(), 3);
        assert!(sense(&mut iwm, reg::TKO, 0));
        command(&mut iwm, 0b1000, 0); // toward 0
        while sense(&mut iwm, reg::TKO, 0) {
            command(&mut iwm, 0b0010, 0);
        }
        assert_eq!(iwm.drives[0].track(), 0);
        command(&mut iwm, 0b0100, 0);
        assert!(!sense(&mut iwm, reg::MOTORON, 0));
        assert!(iwm.motor_requested());
        command(&mut iwm, 0b1110, 0);
        assert!(sense(&mut iwm, reg::CSTIN, 0));
        assert_eq!(iwm.take_ejects(), [0]);
        assert_eq!(iwm.take_ejects(), Vec::<u8>::new());
        assert!(iwm.info(0).is_none());
    }

    /// Motor on at clock 0 with mode `mode`, ENABLE on, data register selected, head 0.
    fn spinning(mode: u8) -> Iwm {
        let mut iwm = Iwm::new();
        set_mode(&mut iwm, mode);
        iwm.insert(0, disk(), 0).unwrap();
        iwm.read(a(4, true), false, 0);
        command(&mut iwm, 0b0100, 0);
        lines_for(&mut iwm, 0b1000, 0);
        iwm.read(a(6, false), false, 0);
        iwm
    }

    #[test]
    fn data_register_in_latch_mode() {
        let mut iwm = spinning(0x1F);
        // Before the first byte has passed the head: no byte (bit 7 clear).
        assert_eq!(iwm.read(a(6, false), false, 100) & 0x80, 0);
        // The track starts with sync bytes: 8 cells (128 clocks) in, FF is ready.
        assert_eq!(iwm.read(a(6, false), false, 130), 0xFF);
        // Read once with bit 7; then bit 7 stays clear until the next byte (10 cells on).
        assert_eq!(iwm.read(a(6, false), false, 140), 0x7F);
        assert_eq!(iwm.read(a(6, false), false, 128 + 159), 0x7F);
        assert_eq!(iwm.read(a(6, false), false, 128 + 160), 0xFF);
        // Polling like the ROM yields the track's bytes in order, each once.
        let mut got = Vec::new();
        let mut t = 300;
        while got.len() < 4000 {
            let v = iwm.read(a(6, false), false, t);
            if v & 0x80 != 0 {
                got.push(v);
            }
            t += 24;
        }
        // Bytes 0 and 1 were read above.
        let track = iwm.drives[0].track_bytes(0);
        assert_eq!(&got[..], &track[2..4002]);
        // ENABLE off: the data register reads $FF.
        iwm.read(a(4, false), false, t);
        assert_eq!(iwm.read(a(6, false), false, t), 0xFF);
    }

    #[test]
    fn data_register_without_latch_mode() {
        let mut iwm = spinning(0x18);
        // Valid for two cells after completion whether read or not, then bit 7 drops.
        assert_eq!(iwm.read(a(6, false), false, 128), 0xFF);
        assert_eq!(iwm.read(a(6, false), false, 128 + 16), 0xFF);
        assert_eq!(iwm.read(a(6, false), false, 128 + 32), 0x7F);
    }

    #[test]
    fn write_handshake_and_underrun() {
        let mut iwm = spinning(0x1F);
        let t0 = 1000;
        // From the sense state (Q6 on, Q7 off) the first byte goes to Q7 on.
        iwm.read(a(6, true), false, t0);
        iwm.write(a(7, true), 0xFF, false, t0);
        // It went straight to the shifter: the buffer is empty again.
        assert_eq!(iwm.read(a(6, false), false, t0 + 4), 0xFF);
        iwm.write(a(6, true), 0x3F, false, t0 + 8);
        // Buffer full until the shifter finishes the first byte (8 cells of 16 clocks).
        assert_eq!(iwm.read(a(6, false), false, t0 + 20) & 0xC0, 0x40);
        assert_eq!(iwm.read(a(6, false), false, t0 + 127) & 0xC0, 0x40);
        assert_eq!(iwm.read(a(6, false), false, t0 + 128) & 0xC0, 0xC0);
        // Nothing more: at t0 + 256 the shifter finds the buffer empty and underruns.
        assert_eq!(iwm.read(a(6, false), false, t0 + 255) & 0xC0, 0xC0);
        assert_eq!(iwm.read(a(6, false), false, t0 + 256) & 0xC0, 0x80);
        // Q7 off ends write mode and clears the underrun.
        iwm.read(a(7, false), false, t0 + 300);
        iwm.read(a(7, true), false, t0 + 310);
        assert_eq!(iwm.read(a(6, false), false, t0 + 320) & 0xC0, 0xC0);
    }

    #[test]
    fn a_data_field_written_through_the_registers_lands_in_the_image() {
        let mut iwm = spinning(0x1F);
        let mut sector = [0u8; gcr::RAW_SECTOR];
        for (i, b) in sector.iter_mut().enumerate() {
            *b = (i * 5) as u8;
        }
        let mut bytes = vec![0xFF, 0x3F, 0xCF, 0xF3, 0xFC, 0xFF];
        bytes.extend(gcr::data_field(7, &sector));
        let mut t = 5000;
        iwm.read(a(6, true), false, t);
        iwm.write(a(7, true), bytes[0], false, t);
        for &b in &bytes[1..] {
            while iwm.read(a(6, false), false, t) & 0x80 == 0 {
                t += 20;
            }
            iwm.write(a(6, true), b, false, t);
            t += 20;
        }
        while iwm.read(a(6, false), false, t) & 0x80 == 0 {
            t += 20;
        }
        iwm.read(a(7, false), false, t);
        let d = iwm.drive(0).unwrap();
        assert_eq!(d.sectors_written, 1, "{:?}", d.last_write_error);
        let img = d.disk().unwrap();
        assert_eq!(img.sector(7), sector);
    }

    /// Any sequence of accesses, times and written bytes (the Mac's software is not trusted
    /// either) leaves the controller working: no panic, and the disk still reads.
    #[test]
    fn random_accesses_never_break_it() {
        let mut iwm = Iwm::new();
        iwm.insert(0, disk(), 0).unwrap();
        let small = FloppyImage::open(Box::new(MemBacking::new(vec![0x4E; 409_600]))).unwrap();
        iwm.insert(1, small, 0).unwrap();
        let mut x: u32 = 0x1234_5678;
        let mut t = 0u64;
        for _ in 0..300_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            t += u64::from(x % 97);
            let addr = 0xDFE1FF + ((x >> 8) & 0xF) * 0x200;
            let sel = x & (1 << 20) != 0;
            if x & (1 << 21) != 0 {
                iwm.write(addr, (x >> 24) as u8, sel, t);
            } else {
                iwm.read(addr, sel, t);
            }
        }
        // Whatever happened, a drive that still holds its disk can be read.
        let n = (0..2u8).find(|&n| iwm.info(n).is_some());
        if let Some(n) = n {
            iwm.read(a(5, n == 1), false, t);
            set_mode(&mut iwm, 0x1F);
            iwm.read(a(4, true), false, t);
            command(&mut iwm, 0b0100, t);
            lines_for(&mut iwm, 0b1000, t);
            iwm.read(a(7, false), false, t);
            iwm.read(a(6, false), false, t);
            let fresh = (0..200).filter(|k| iwm.read(a(6, false), false, t + k * 40) & 0x80 != 0);
            assert!(fresh.count() > 50);
        }
    }
}
