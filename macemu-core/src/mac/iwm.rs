//! The IWM floppy controller with an empty internal 800K drive and no external drive.
//!
//! Enough for a real ROM to probe the drives, find no disk and carry on to the "?" screen:
//! the eight state lines, the mode/status/handshake registers and the drive's sense lines.
//!
//! Facts (Guide to the Macintosh Family Hardware; IWM specification): address bits 12..9 pick a
//! state line (CA0, CA1, CA2, LSTRB, ENABLE, SELECT, Q6, Q7 in pairs off/on); any access sets
//! it, and the register then read or written depends on Q7/Q6: (0,0) data, (0,1) status,
//! (1,0) write handshake, (1,1) mode (written with the motor off). Status bit 7 is the drive's
//! SENSE line, bit 5 ENABLE, bits 4..0 the mode. The drive register read through SENSE is chosen
//! by CA2, CA1, CA0 and the VIA's SEL line (PA5); writes to it strobe LSTRB.

/// Drive sense registers by (CA2 CA1 CA0 SEL).
mod sense {
    pub const DIRTN: u8 = 0b0000;
    pub const CSTIN: u8 = 0b0001;
    pub const STEP: u8 = 0b0010;
    pub const WRTPRT: u8 = 0b0011;
    pub const MOTORON: u8 = 0b0100;
    pub const TK0: u8 = 0b0101;
    pub const SWITCHED: u8 = 0b0110;
    pub const SIDES: u8 = 0b1100;
    pub const READY: u8 = 0b1101;
    pub const INSTALLED: u8 = 0b1110;
    pub const PRESENT: u8 = 0b1111;
}

#[derive(Clone, Debug)]
pub struct Iwm {
    /// State lines: bit 0 CA0, 1 CA1, 2 CA2, 3 LSTRB, 4 ENABLE, 5 SELECT, 6 Q6, 7 Q7.
    lines: u8,
    mode: u8,
    /// Internal drive (no disk): head direction, motor, track.
    step_inward: bool,
    motor_on: bool,
    track: u8,
}

impl Default for Iwm {
    fn default() -> Self {
        Self::new()
    }
}

const CA0: u8 = 0x01;
const CA1: u8 = 0x02;
const CA2: u8 = 0x04;
const LSTRB: u8 = 0x08;
const ENABLE: u8 = 0x10;
const SELECT: u8 = 0x20;
const Q6: u8 = 0x40;
const Q7: u8 = 0x80;

impl Iwm {
    pub fn new() -> Iwm {
        Iwm {
            lines: 0,
            mode: 0,
            step_inward: false,
            motor_on: false,
            track: 0,
        }
    }

    pub fn reset(&mut self) {
        *self = Iwm::new();
    }

    /// Whether the ROM switched the internal drive's motor on (it stays still without a disk).
    pub fn motor_requested(&self) -> bool {
        self.motor_on
    }

    fn touch(&mut self, addr: u32, sel: bool) {
        let line = ((addr >> 10) & 7) as u8;
        let on = (addr >> 9) & 1 != 0;
        let bit = 1u8 << line;
        let was_strobe = self.lines & LSTRB != 0;
        if on {
            self.lines |= bit;
        } else {
            self.lines &= !bit;
        }
        if bit == LSTRB && on && !was_strobe {
            self.drive_write(sel);
        }
    }

    /// Read at `addr` (address bits 12..9 select the line); `sel` is VIA PA5.
    pub fn read(&mut self, addr: u32, sel: bool) -> u8 {
        self.touch(addr, sel);
        match (self.lines & Q7 != 0, self.lines & Q6 != 0) {
            (false, false) => {
                // Data register: with no disk turning, no byte ever assembles (bit 7 stays 0).
                if self.lines & ENABLE != 0 {
                    0x00
                } else {
                    0xFF
                }
            }
            (false, true) => {
                let sense = self.sense(sel);
                (u8::from(sense) << 7)
                    | if self.lines & ENABLE != 0 { 0x20 } else { 0 }
                    | (self.mode & 0x1F)
            }
            // Write handshake: buffer ready (bit 7), no underrun (bit 6).
            (true, false) => 0xC0 | 0x3F,
            (true, true) => 0xFF,
        }
    }

    /// Write at `addr`; with Q7 and Q6 set and the motor off, the value goes to the mode register.
    pub fn write(&mut self, addr: u32, v: u8, sel: bool) {
        self.touch(addr, sel);
        if self.lines & (Q7 | Q6) == (Q7 | Q6) && self.lines & ENABLE == 0 {
            self.mode = v & 0x1F;
        }
    }

    fn register(&self, sel: bool) -> u8 {
        ((self.lines & CA2) << 1)
            | ((self.lines & CA1) << 1)
            | ((self.lines & CA0) << 1)
            | u8::from(sel)
    }

    fn sense(&self, sel: bool) -> bool {
        if self.lines & SELECT != 0 {
            return true; // external drive: not connected, the line floats high
        }
        match self.register(sel) {
            sense::DIRTN => !self.step_inward,
            sense::CSTIN => true, // no disk in place
            sense::STEP => true,  // not stepping
            sense::WRTPRT => true,
            sense::MOTORON => true, // 1 = off: the motor never spins without a disk
            sense::TK0 => self.track != 0,
            sense::SWITCHED => false,
            sense::SIDES => true,      // double-sided (800K) drive
            sense::READY => true,      // not ready
            sense::INSTALLED => false, // 0 = drive installed
            sense::PRESENT => true,    // 800K drive
            _ => true,
        }
    }

    /// LSTRB rising: the drive latches a control written through CA2 (value) and CA1, CA0, SEL.
    fn drive_write(&mut self, sel: bool) {
        if self.lines & SELECT != 0 {
            return;
        }
        let value = self.lines & CA2 != 0;
        let which = ((self.lines & CA1) << 1) | ((self.lines & CA0) << 1) | u8::from(sel);
        match which {
            0b000 => self.step_inward = !value,
            0b010 if !value => {
                if self.step_inward {
                    self.track = (self.track + 1).min(79);
                } else {
                    self.track = self.track.saturating_sub(1);
                }
            }
            0b100 => self.motor_on = !value,
            _ => {} // eject, switched reset: nothing to do without a disk
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Address for state line `line` (0..7) set on or off.
    fn a(line: u32, on: bool) -> u32 {
        0xDFE1FF + (line << 10) + if on { 0x200 } else { 0 }
    }

    #[test]
    fn mode_register_written_and_seen_in_status() {
        let mut iwm = Iwm::new();
        iwm.read(a(7, true), false); // Q7 on
        iwm.write(a(6, true), 0x17, false); // Q6 on: mode write (motor off)
        iwm.read(a(7, false), false); // Q7 off -> status
        let st = iwm.read(a(6, true), false);
        assert_eq!(st & 0x1F, 0x17);
        assert_eq!(st & 0x20, 0);
    }

    #[test]
    fn internal_drive_installed_without_disk() {
        let mut iwm = Iwm::new();
        iwm.read(a(6, true), false); // status
        let read_sense = |iwm: &mut Iwm, ca2, ca1, ca0, sel| {
            iwm.read(a(2, ca2), sel);
            iwm.read(a(1, ca1), sel);
            iwm.read(a(0, ca0), sel);
            iwm.read(a(6, true), sel) & 0x80 != 0
        };
        assert!(
            !read_sense(&mut iwm, true, true, true, false),
            "INSTALLED = 0"
        );
        assert!(
            read_sense(&mut iwm, false, false, false, true),
            "CSTIN = 1: no disk"
        );
        assert!(
            !read_sense(&mut iwm, false, true, false, true),
            "TK0: at track 0"
        );
        // External drive (SELECT on) absent: INSTALLED reads 1.
        iwm.read(a(5, true), false);
        assert!(read_sense(&mut iwm, true, true, true, false));
    }

    #[test]
    fn handshake_and_data_registers() {
        let mut iwm = Iwm::new();
        iwm.read(a(7, true), false);
        assert_eq!(iwm.read(a(6, false), false) & 0xC0, 0xC0);
        iwm.read(a(7, false), false);
        iwm.read(a(4, true), false); // motor on
        assert_eq!(iwm.read(a(6, false), false) & 0x80, 0);
    }

    #[test]
    fn stepping_moves_the_head() {
        let mut iwm = Iwm::new();
        // DIRTN := 0 (inward): CA2=0, CA1=0, CA0=0, SEL=0, strobe.
        for l in [2, 1, 0] {
            iwm.read(a(l, false), false);
        }
        iwm.read(a(3, true), false);
        iwm.read(a(3, false), false);
        // STEP: CA2=0, CA1=0, CA0=1.
        iwm.read(a(0, true), false);
        iwm.read(a(3, true), false);
        iwm.read(a(3, false), false);
        assert_eq!(iwm.track, 1);
    }
}
