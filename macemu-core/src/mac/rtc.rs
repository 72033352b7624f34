//! The Mac Plus real-time clock (Apple 343-0042-B): a seconds counter and 256 bytes of
//! parameter RAM (XPRAM), spoken to bit-serially through VIA PB0 (data), PB1 (clock) and PB2
//! (/enable).
//!
//! Protocol (Guide to the Macintosh Family Hardware; Inside Macintosh III "Parameter RAM"):
//! bits travel most significant first; the RTC samples the data line on each rising clock edge
//! while receiving, and puts its next bit on the line at each rising edge while sending. A
//! command byte is `r a a a a a 0 1` (`r` = 1 to read):
//!
//! | address bits `aaaaa` | register |
//! |---|---|
//! | `00xnn` | seconds byte `nn` (0 = least significant) |
//! | `010nn` | PRAM bytes 0x08 + nn |
//! | `01100` | test register (write only) |
//! | `01101` | write-protect register (write only, bit 7) |
//! | `1nnnn` | PRAM bytes 0x10 + nnnn |
//!
//! The Plus adds extended commands for all 256 bytes: `r 0 1 1 1 a a a` then `0 a a a a a x x`
//! (8-bit address `aaaaaaaa`), followed by the data byte.
//!
//! Time is never read from the host clock here: the board sets the seconds and calls
//! [`Rtc::tick_second`] once per emulated second.

/// Size of the Plus's parameter RAM.
pub const XPRAM_SIZE: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Receiving a command byte.
    Command,
    /// Receiving the data byte of a write to `reg` (a standard command byte).
    WriteData { cmd: u8 },
    /// Receiving the second address byte of an extended command.
    ExtendedAddress { cmd: u8 },
    /// Receiving the data byte of an extended write.
    ExtendedWrite { addr: u8 },
    /// Sending a byte to the host.
    Sending,
}

/// The clock chip.
#[derive(Clone, Debug)]
pub struct Rtc {
    seconds: u32,
    xpram: [u8; XPRAM_SIZE],
    write_protect: bool,
    phase: Phase,
    shift: u8,
    bits: u8,
    data_out: bool,
    last_clock: bool,
    enabled: bool,
    /// The RTC drives the data line: while sending, and with its last bit until the next clock
    /// edge or deselection (the ROM samples the eighth bit after the final rising edge).
    driving: bool,
    xpram_changed: bool,
}

impl Default for Rtc {
    fn default() -> Self {
        Self::new()
    }
}

impl Rtc {
    /// A clock at 0 seconds (midnight, 1 January 1904) with zeroed parameter RAM: the ROM
    /// finds no valid signature and writes its defaults, as a Plus with a flat battery does.
    pub fn new() -> Rtc {
        Rtc {
            seconds: 0,
            xpram: [0; XPRAM_SIZE],
            write_protect: false,
            phase: Phase::Command,
            shift: 0,
            bits: 0,
            data_out: true,
            last_clock: false,
            enabled: false,
            driving: false,
            xpram_changed: false,
        }
    }

    /// Seconds since 1904-01-01 00:00 local time, as the Mac counts.
    pub fn seconds(&self) -> u32 {
        self.seconds
    }

    /// Sets the clock (the driver converts its wall-clock time to Mac seconds).
    pub fn set_seconds(&mut self, s: u32) {
        self.seconds = s;
    }

    /// One emulated second passed.
    pub fn tick_second(&mut self) {
        self.seconds = self.seconds.wrapping_add(1);
    }

    /// The whole parameter RAM.
    pub fn xpram(&self) -> &[u8; XPRAM_SIZE] {
        &self.xpram
    }

    /// Replaces the parameter RAM (loading a saved file).
    pub fn set_xpram(&mut self, data: &[u8; XPRAM_SIZE]) {
        self.xpram = *data;
        self.xpram_changed = false;
    }

    /// True once after the Mac changed any parameter RAM byte (for the driver's save thread).
    pub fn take_xpram_changed(&mut self) -> bool {
        std::mem::take(&mut self.xpram_changed)
    }

    /// Whether the write-protect register is set.
    pub fn write_protected(&self) -> bool {
        self.write_protect
    }

    /// The level the RTC drives on the data line (meaningful while it is sending).
    pub fn data_out(&self) -> bool {
        self.data_out
    }

    /// Whether the RTC is driving the data line (sending a reply).
    pub fn sending(&self) -> bool {
        self.enabled && self.driving
    }

    /// Updates the three lines. `data_in` is the level on PB0 as driven by the VIA.
    pub fn update_lines(&mut self, enable_n: bool, clock: bool, data_in: bool) {
        let enabled = !enable_n;
        if !enabled {
            // Deselecting aborts any transfer.
            self.enabled = false;
            self.driving = false;
            self.phase = Phase::Command;
            self.bits = 0;
            self.shift = 0;
            self.last_clock = clock;
            return;
        }
        self.enabled = true;
        let rising = clock && !self.last_clock;
        self.last_clock = clock;
        if !rising {
            return;
        }
        if self.phase == Phase::Sending {
            self.driving = true;
            self.data_out = self.shift & 0x80 != 0;
            self.shift <<= 1;
            self.bits += 1;
            if self.bits == 8 {
                self.bits = 0;
                self.phase = Phase::Command;
            }
            return;
        }
        self.driving = false;
        self.shift = (self.shift << 1) | u8::from(data_in);
        self.bits += 1;
        if self.bits == 8 {
            self.bits = 0;
            let byte = self.shift;
            self.shift = 0;
            self.byte_received(byte);
        }
    }

    fn byte_received(&mut self, byte: u8) {
        self.phase = match self.phase {
            Phase::Command => {
                if byte & 0x78 == 0x38 {
                    Phase::ExtendedAddress { cmd: byte }
                } else if byte & 0x80 != 0 {
                    self.start_send(self.read_register(byte))
                } else {
                    Phase::WriteData { cmd: byte }
                }
            }
            Phase::WriteData { cmd } => {
                self.write_register(cmd, byte);
                Phase::Command
            }
            Phase::ExtendedAddress { cmd } => {
                let addr = ((cmd & 0x07) << 5) | ((byte >> 2) & 0x1F);
                if cmd & 0x80 != 0 {
                    self.start_send(self.xpram[usize::from(addr)])
                } else {
                    Phase::ExtendedWrite { addr }
                }
            }
            Phase::ExtendedWrite { addr } => {
                self.write_xpram(addr, byte);
                Phase::Command
            }
            Phase::Sending => Phase::Command,
        };
    }

    fn start_send(&mut self, value: u8) -> Phase {
        self.shift = value;
        self.bits = 0;
        Phase::Sending
    }

    fn read_register(&self, cmd: u8) -> u8 {
        let a = (cmd >> 2) & 0x1F;
        match a {
            0..=7 => self.seconds.to_le_bytes()[usize::from(a & 3)],
            8..=11 => self.xpram[usize::from(0x08 + (a & 3))],
            12..=15 => 0, // test and write-protect registers are write-only
            _ => self.xpram[usize::from(0x10 + (a & 0x0F))],
        }
    }

    fn write_register(&mut self, cmd: u8, v: u8) {
        let a = (cmd >> 2) & 0x1F;
        match a {
            0..=7 => {
                if !self.write_protect {
                    let mut b = self.seconds.to_le_bytes();
                    b[usize::from(a & 3)] = v;
                    self.seconds = u32::from_le_bytes(b);
                }
            }
            8..=11 => self.write_xpram(0x08 + (a & 3), v),
            12 => {} // test register: bits 7 and 6 must be 0 for normal operation
            13 => self.write_protect = v & 0x80 != 0,
            14 | 15 => {}
            _ => self.write_xpram(0x10 + (a & 0x0F), v),
        }
    }

    fn write_xpram(&mut self, addr: u8, v: u8) {
        if self.write_protect {
            return;
        }
        let slot = &mut self.xpram[usize::from(addr)];
        if *slot != v {
            *slot = v;
            self.xpram_changed = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives the lines as the Mac ROM does (PB2 low, data set up, clock low then high).
    struct Host<'a> {
        rtc: &'a mut Rtc,
    }

    impl Host<'_> {
        fn send(&mut self, byte: u8) {
            for i in (0..8).rev() {
                let bit = (byte >> i) & 1 != 0;
                self.rtc.update_lines(false, false, bit);
                self.rtc.update_lines(false, true, bit);
            }
        }

        fn receive(&mut self) -> u8 {
            let mut v = 0u8;
            for _ in 0..8 {
                self.rtc.update_lines(false, false, true);
                self.rtc.update_lines(false, true, true);
                v = (v << 1) | u8::from(self.rtc.data_out());
            }
            v
        }

        fn end(&mut self) {
            self.rtc.update_lines(true, true, true);
        }

        fn read(&mut self, cmd: u8) -> u8 {
            self.send(cmd);
            let v = self.receive();
            self.end();
            v
        }

        fn write(&mut self, cmd: u8, v: u8) {
            self.send(cmd);
            self.send(v);
            self.end();
        }

        fn xread(&mut self, addr: u8) -> u8 {
            self.send(0xB8 | (addr >> 5));
            self.send((addr & 0x1F) << 2);
            let v = self.receive();
            self.end();
            v
        }

        fn xwrite(&mut self, addr: u8, v: u8) {
            self.send(0x38 | (addr >> 5));
            self.send((addr & 0x1F) << 2);
            self.send(v);
            self.end();
        }
    }

    #[test]
    fn seconds_read_write_and_tick() {
        let mut rtc = Rtc::new();
        rtc.set_seconds(0xA1B2_C3D4);
        let mut h = Host { rtc: &mut rtc };
        assert_eq!(h.read(0x81), 0xD4);
        assert_eq!(h.read(0x85), 0xC3);
        assert_eq!(h.read(0x89), 0xB2);
        assert_eq!(h.read(0x8D), 0xA1);
        // 001nn mirrors 000nn.
        assert_eq!(h.read(0x91), 0xD4);
        h.write(0x01, 0xFF);
        rtc.tick_second();
        assert_eq!(rtc.seconds(), 0xA1B2_C400);
    }

    #[test]
    fn last_bit_stays_on_the_line_until_deselect() {
        let mut rtc = Rtc::new();
        rtc.set_seconds(0x70);
        let mut h = Host { rtc: &mut rtc };
        h.send(0x81);
        let v = h.receive();
        assert_eq!(v, 0x70);
        assert!(h.rtc.sending());
        assert!(!h.rtc.data_out(), "bit 0 of 0x70 is still driven");
        h.end();
        assert!(!rtc.sending());
    }

    #[test]
    fn classic_pram_groups_map_into_xpram() {
        let mut rtc = Rtc::new();
        let mut h = Host { rtc: &mut rtc };
        // z010aa01: PRAM 0x08..0x0B
        h.write(0x21 | (2 << 2), 0x5A);
        // z1aaaa01: PRAM 0x10..0x1F
        h.write(0x41 | (0x0F << 2), 0xC3);
        assert_eq!(h.read(0x80 | 0x21 | (2 << 2)), 0x5A);
        assert_eq!(h.read(0x80 | 0x41 | (0x0F << 2)), 0xC3);
        assert_eq!(rtc.xpram()[0x0A], 0x5A);
        assert_eq!(rtc.xpram()[0x1F], 0xC3);
        assert!(rtc.take_xpram_changed());
        assert!(!rtc.take_xpram_changed());
    }

    #[test]
    fn extended_commands_reach_all_256_bytes() {
        let mut rtc = Rtc::new();
        let mut h = Host { rtc: &mut rtc };
        for a in [0x00u8, 0x0C, 0x3F, 0x80, 0xE4, 0xFF] {
            h.xwrite(a, a ^ 0x5A);
        }
        for a in [0x00u8, 0x0C, 0x3F, 0x80, 0xE4, 0xFF] {
            assert_eq!(h.xread(a), a ^ 0x5A);
        }
        assert_eq!(rtc.xpram()[0xE4], 0xE4 ^ 0x5A);
        assert_eq!(rtc.xpram()[0x01], 0);
    }

    #[test]
    fn write_protect_blocks_clock_and_pram() {
        let mut rtc = Rtc::new();
        rtc.set_seconds(100);
        let mut h = Host { rtc: &mut rtc };
        h.write(0x35, 0x80); // write-protect on
        h.write(0x01, 0x00);
        h.xwrite(0x40, 0x99);
        assert_eq!(h.read(0x81), 100);
        assert_eq!(h.xread(0x40), 0);
        h.write(0x35, 0x00); // off again: the register itself is always writable
        h.xwrite(0x40, 0x99);
        assert_eq!(h.xread(0x40), 0x99);
    }

    #[test]
    fn deselect_aborts_partial_command() {
        let mut rtc = Rtc::new();
        let mut h = Host { rtc: &mut rtc };
        // Four bits of a command, then /enable goes high.
        for _ in 0..4 {
            h.rtc.update_lines(false, false, true);
            h.rtc.update_lines(false, true, true);
        }
        h.end();
        h.xwrite(0x10, 0xA8);
        assert_eq!(h.xread(0x10), 0xA8);
    }

    #[test]
    fn set_xpram_loads_without_marking_changed() {
        let mut rtc = Rtc::new();
        let mut data = [0u8; XPRAM_SIZE];
        data[0x0C..0x10].copy_from_slice(b"NuMc");
        rtc.set_xpram(&data);
        assert!(!rtc.take_xpram_changed());
        let mut h = Host { rtc: &mut rtc };
        assert_eq!(h.xread(0x0D), b'u');
    }
}
