//! Rockwell/Synertek 6522 VIA as wired in the Macintosh Plus.
//!
//! The VIA counts on the E clock (CPU clock / 10 = 783.36 kHz). Time reaches it only through
//! [`Via::advance`] (E-clock ticks), so the board can run it lazily: it catches the VIA up to the
//! current cycle before every register access and at its own events.
//!
//! Mac Plus wiring (Guide to the Macintosh Family Hardware, ch. "Macintosh Plus"):
//!
//! | line | use |
//! |---|---|
//! | PA7 (in) | SCC wait/request |
//! | PA6 | screen buffer: 1 main, 0 alternate |
//! | PA5 | floppy head select (SEL) |
//! | PA4 | ROM overlay: 1 = ROM also at 0 |
//! | PA3 | sound buffer: 1 main, 0 alternate |
//! | PA2..0 | sound volume |
//! | PB7 | sound enable, active low (also T1 output when ACR7 = 1) |
//! | PB6 (in) | H4: horizontal blanking |
//! | PB5, PB4 (in) | mouse Y2, X2 quadrature |
//! | PB3 (in) | mouse button, 0 = pressed |
//! | PB2, PB1, PB0 | RTC /enable, data clock, serial data |
//! | CA1 / CA2 | vertical blanking / RTC one-second |
//! | CB1 / CB2 / SR | keyboard clock / keyboard data / keyboard byte |

/// Interrupt flag bits (IFR/IER).
pub mod irq {
    pub const CA2: u8 = 0x01;
    pub const CA1: u8 = 0x02;
    pub const SR: u8 = 0x04;
    pub const CB2: u8 = 0x08;
    pub const CB1: u8 = 0x10;
    pub const T2: u8 = 0x20;
    pub const T1: u8 = 0x40;
}

/// Register numbers (the Mac decodes register n at 0xEFE1FE + n * 0x200).
pub mod reg {
    pub const ORB: u8 = 0;
    pub const ORA: u8 = 1;
    pub const DDRB: u8 = 2;
    pub const DDRA: u8 = 3;
    pub const T1CL: u8 = 4;
    pub const T1CH: u8 = 5;
    pub const T1LL: u8 = 6;
    pub const T1LH: u8 = 7;
    pub const T2CL: u8 = 8;
    pub const T2CH: u8 = 9;
    pub const SR: u8 = 10;
    pub const ACR: u8 = 11;
    pub const PCR: u8 = 12;
    pub const IFR: u8 = 13;
    pub const IER: u8 = 14;
    pub const ORA_NH: u8 = 15;
}

/// Shift register modes (ACR bits 4..2) the Mac keyboard uses.
pub const SR_MODE_IN_EXTERNAL: u8 = 3;
pub const SR_MODE_OUT_EXTERNAL: u8 = 7;

/// The 6522. Port pins that are inputs are set by the board with the `set_*` methods.
#[derive(Clone, Debug)]
pub struct Via {
    ora: u8,
    orb: u8,
    ddra: u8,
    ddrb: u8,
    /// Levels driven onto port A/B input pins from outside.
    pins_a: u8,
    pins_b: u8,
    t1_counter: u16,
    t1_latch: u16,
    /// One-shot T1 interrupts once after each counter load.
    t1_armed: bool,
    /// Free-running T1 after reaching zero: the FFFF state before the latch reload.
    t1_reload: bool,
    t1_pb7: bool,
    t2_counter: u16,
    t2_latch_low: u8,
    t2_armed: bool,
    sr: u8,
    /// Shift (in or out) in progress for internally clocked modes: E ticks left.
    sr_ticks_left: u32,
    /// A byte written in shift-out-external mode, waiting for the device's clock.
    sr_out_pending: Option<u8>,
    acr: u8,
    pcr: u8,
    ifr: u8,
    ier: u8,
    ca1: bool,
    ca2: bool,
    cb1: bool,
    cb2: bool,
}

impl Default for Via {
    fn default() -> Self {
        Self::new()
    }
}

impl Via {
    /// Power-on / RESET state: all registers but the timers and SR cleared, all pins inputs.
    pub fn new() -> Via {
        Via {
            ora: 0,
            orb: 0,
            ddra: 0,
            ddrb: 0,
            pins_a: 0xFF,
            pins_b: 0xFF,
            t1_counter: 0xFFFF,
            t1_latch: 0xFFFF,
            t1_armed: false,
            t1_reload: false,
            t1_pb7: true,
            t2_counter: 0xFFFF,
            t2_latch_low: 0xFF,
            t2_armed: false,
            sr: 0,
            sr_ticks_left: 0,
            sr_out_pending: None,
            acr: 0,
            pcr: 0,
            ifr: 0,
            ier: 0,
            ca1: true,
            ca2: true,
            cb1: true,
            cb2: true,
        }
    }

    /// The RESET line: clears the I/O registers, leaves counters, latches and SR (as the 6522).
    pub fn reset(&mut self) {
        let keep = (
            self.t1_counter,
            self.t1_latch,
            self.t2_counter,
            self.t2_latch_low,
            self.sr,
        );
        let (pins_a, pins_b) = (self.pins_a, self.pins_b);
        *self = Via::new();
        (
            self.t1_counter,
            self.t1_latch,
            self.t2_counter,
            self.t2_latch_low,
            self.sr,
        ) = keep;
        self.pins_a = pins_a;
        self.pins_b = pins_b;
    }

    /// IRQ output (active when an enabled flag is set).
    pub fn irq(&self) -> bool {
        self.ifr & self.ier & 0x7F != 0
    }

    /// Port A as seen on the pins: outputs drive, inputs float high (pull-ups) unless driven.
    pub fn port_a(&self) -> u8 {
        (self.ora & self.ddra) | (self.pins_a & !self.ddra)
    }

    /// Port B as seen on the pins (PB7 is the T1 output when ACR bit 7 is set).
    pub fn port_b(&self) -> u8 {
        let mut v = (self.orb & self.ddrb) | (self.pins_b & !self.ddrb);
        if self.acr & 0x80 != 0 {
            v = (v & 0x7F) | if self.t1_pb7 { 0x80 } else { 0 };
        }
        v
    }

    /// Bits of port A that the VIA drives (DDR = 1).
    pub fn ddr_a(&self) -> u8 {
        self.ddra
    }

    /// Bits of port B that the VIA drives (DDR = 1).
    pub fn ddr_b(&self) -> u8 {
        self.ddrb
    }

    /// Drives external levels onto port A pins selected by `mask`.
    pub fn set_port_a_input(&mut self, mask: u8, value: u8) {
        self.pins_a = (self.pins_a & !mask) | (value & mask);
    }

    /// Drives external levels onto port B pins selected by `mask`.
    pub fn set_port_b_input(&mut self, mask: u8, value: u8) {
        self.pins_b = (self.pins_b & !mask) | (value & mask);
    }

    /// The shift-register mode (ACR bits 4..2).
    pub fn sr_mode(&self) -> u8 {
        (self.acr >> 2) & 7
    }

    /// The interrupt enable register (without bit 7).
    pub fn ier(&self) -> u8 {
        self.ier
    }

    /// The interrupt flags (without bit 7).
    pub fn ifr(&self) -> u8 {
        self.ifr & 0x7F
    }

    fn set_flag(&mut self, f: u8) {
        self.ifr |= f;
    }

    fn clear_flag(&mut self, f: u8) {
        self.ifr &= !f;
    }

    /// Sets the CA1 input level; the active edge (PCR bit 0) raises the CA1 flag.
    pub fn set_ca1(&mut self, level: bool) {
        let positive = self.pcr & 0x01 != 0;
        if level != self.ca1 && level == positive {
            self.set_flag(irq::CA1);
        }
        self.ca1 = level;
    }

    /// Sets the CA2 input level (only when PCR configures CA2 as an input).
    pub fn set_ca2(&mut self, level: bool) {
        let mode = (self.pcr >> 1) & 7;
        if mode < 4 {
            let positive = mode & 2 != 0;
            if level != self.ca2 && level == positive {
                self.set_flag(irq::CA2);
            }
        }
        self.ca2 = level;
    }

    /// Sets the CB1 input level (PCR bit 4 selects the active edge).
    pub fn set_cb1(&mut self, level: bool) {
        let positive = self.pcr & 0x10 != 0;
        if level != self.cb1 && level == positive {
            self.set_flag(irq::CB1);
        }
        self.cb1 = level;
    }

    /// Sets the CB2 input level (only when PCR configures CB2 as an input).
    pub fn set_cb2(&mut self, level: bool) {
        let mode = (self.pcr >> 5) & 7;
        if mode < 4 {
            let positive = mode & 2 != 0;
            if level != self.cb2 && level == positive {
                self.set_flag(irq::CB2);
            }
        }
        self.cb2 = level;
    }

    /// One negative edge on PB6 (T2 counts these in pulse-counting mode, ACR bit 5).
    pub fn pulse_pb6(&mut self) {
        if self.acr & 0x20 != 0 {
            if self.t2_counter == 0 && self.t2_armed {
                self.set_flag(irq::T2);
                self.t2_armed = false;
            }
            self.t2_counter = self.t2_counter.wrapping_sub(1);
        }
    }

    /// A byte the host wrote for an external device in shift-out-under-external-clock mode.
    /// The device calls [`Via::finish_shift_out`] when it has clocked all eight bits.
    pub fn pending_shift_out(&self) -> Option<u8> {
        self.sr_out_pending
    }

    /// The external device clocked the last bit out: SR interrupt; returns the byte.
    pub fn finish_shift_out(&mut self) -> Option<u8> {
        let b = self.sr_out_pending.take()?;
        self.set_flag(irq::SR);
        Some(b)
    }

    /// The external device clocked eight bits in (shift-in under external clock, mode 3).
    /// Returns false (and changes nothing) when the VIA is not in that mode.
    pub fn shift_in_external(&mut self, byte: u8) -> bool {
        if self.sr_mode() != SR_MODE_IN_EXTERNAL {
            return false;
        }
        self.sr = byte;
        self.set_flag(irq::SR);
        true
    }

    /// E-clock ticks until the next timer or shift-register interrupt, if one is pending.
    pub fn ticks_to_next_event(&self) -> Option<u32> {
        let mut next: Option<u32> = None;
        let mut consider = |t: u32| next = Some(next.map_or(t, |n: u32| n.min(t)));
        if self.acr & 0x40 != 0 {
            // Free-running: always reaches zero again.
            if self.t1_reload {
                consider(1 + u32::from(self.t1_latch) + 1);
            } else {
                consider(u32::from(self.t1_counter) + 1);
            }
        } else if self.t1_armed {
            consider(u32::from(self.t1_counter) + 1);
        }
        if self.t2_armed && self.acr & 0x20 == 0 {
            consider(u32::from(self.t2_counter) + 1);
        }
        if self.sr_ticks_left > 0 {
            consider(self.sr_ticks_left);
        }
        next
    }

    /// Advances the timers by `ticks` E-clock cycles.
    pub fn advance(&mut self, ticks: u32) {
        if ticks == 0 {
            return;
        }
        self.advance_t1(ticks);
        if self.acr & 0x20 == 0 {
            let t = u32::from(self.t2_counter);
            if ticks > t && self.t2_armed {
                self.set_flag(irq::T2);
                self.t2_armed = false;
            }
            self.t2_counter = self.t2_counter.wrapping_sub(ticks as u16);
        }
        if self.sr_ticks_left > 0 {
            if ticks >= self.sr_ticks_left {
                self.sr_ticks_left = 0;
                self.set_flag(irq::SR);
            } else {
                self.sr_ticks_left -= ticks;
            }
        }
    }

    fn advance_t1(&mut self, ticks: u32) {
        let free_run = self.acr & 0x40 != 0;
        if !free_run {
            // One-shot: counts down through zero to FFFF (interrupting once) and keeps counting.
            let t = u32::from(self.t1_counter);
            if self.t1_reload {
                // Left free-run mode while waiting for a reload: the counter just keeps counting.
                self.t1_reload = false;
            }
            if ticks > t && self.t1_armed {
                self.set_flag(irq::T1);
                self.t1_armed = false;
                self.t1_pb7 = true;
            }
            self.t1_counter = self.t1_counter.wrapping_sub(ticks as u16);
            return;
        }
        // Free-running: N, N-1 .. 0, FFFF (interrupt), then the latch again: N + 2 ticks a period.
        let mut rem = ticks;
        if self.t1_reload {
            self.t1_reload = false;
            self.t1_counter = self.t1_latch;
            rem -= 1;
        }
        let to_zero_cross = u32::from(self.t1_counter) + 1;
        if rem < to_zero_cross {
            self.t1_counter -= rem as u16;
            return;
        }
        rem -= to_zero_cross;
        self.t1_expired();
        let period = u32::from(self.t1_latch) + 2;
        let extra = rem / period;
        if extra > 0 {
            // Each whole period adds one more expiry (the flag is a level, PB7 toggles).
            if extra % 2 == 1 {
                self.t1_pb7 = !self.t1_pb7;
            }
            rem %= period;
        }
        if rem == 0 {
            self.t1_counter = 0xFFFF;
            self.t1_reload = true;
        } else {
            // One tick to reload, then count down from the latch.
            self.t1_counter = self.t1_latch - (rem - 1) as u16;
        }
    }

    fn t1_expired(&mut self) {
        self.set_flag(irq::T1);
        self.t1_armed = false;
        self.t1_pb7 = !self.t1_pb7;
    }

    /// Reads register `r` (0..15). Reads have side effects (flags clear), as on the chip.
    pub fn read(&mut self, r: u8) -> u8 {
        match r & 0xF {
            reg::ORB => {
                self.clear_port_b_flags();
                self.port_b_read_value()
            }
            reg::ORA => {
                self.clear_port_a_flags();
                self.port_a()
            }
            reg::DDRB => self.ddrb,
            reg::DDRA => self.ddra,
            reg::T1CL => {
                self.clear_flag(irq::T1);
                self.t1_counter as u8
            }
            reg::T1CH => (self.t1_counter >> 8) as u8,
            reg::T1LL => self.t1_latch as u8,
            reg::T1LH => (self.t1_latch >> 8) as u8,
            reg::T2CL => {
                self.clear_flag(irq::T2);
                self.t2_counter as u8
            }
            reg::T2CH => (self.t2_counter >> 8) as u8,
            reg::SR => {
                self.clear_flag(irq::SR);
                self.start_internal_shift();
                self.sr
            }
            reg::ACR => self.acr,
            reg::PCR => self.pcr,
            reg::IFR => {
                let f = self.ifr & 0x7F;
                if self.irq() {
                    f | 0x80
                } else {
                    f
                }
            }
            reg::IER => self.ier | 0x80,
            _ => self.port_a(), // ORA without handshake
        }
    }

    /// Writes register `r` (0..15).
    pub fn write(&mut self, r: u8, v: u8) {
        match r & 0xF {
            reg::ORB => {
                self.clear_port_b_flags();
                self.orb = v;
            }
            reg::ORA => {
                self.clear_port_a_flags();
                self.ora = v;
            }
            reg::DDRB => self.ddrb = v,
            reg::DDRA => self.ddra = v,
            reg::T1CL | reg::T1LL => self.t1_latch = (self.t1_latch & 0xFF00) | u16::from(v),
            reg::T1CH => {
                self.t1_latch = (self.t1_latch & 0x00FF) | (u16::from(v) << 8);
                self.t1_counter = self.t1_latch;
                self.t1_reload = false;
                self.t1_armed = true;
                self.t1_pb7 = false;
                self.clear_flag(irq::T1);
            }
            reg::T1LH => {
                self.t1_latch = (self.t1_latch & 0x00FF) | (u16::from(v) << 8);
                self.clear_flag(irq::T1);
            }
            reg::T2CL => self.t2_latch_low = v,
            reg::T2CH => {
                self.t2_counter = (u16::from(v) << 8) | u16::from(self.t2_latch_low);
                self.t2_armed = true;
                self.clear_flag(irq::T2);
            }
            reg::SR => {
                self.sr = v;
                self.clear_flag(irq::SR);
                if self.sr_mode() == SR_MODE_OUT_EXTERNAL {
                    self.sr_out_pending = Some(v);
                } else {
                    self.start_internal_shift();
                }
            }
            reg::ACR => {
                let old_mode = self.sr_mode();
                self.acr = v;
                let mode = self.sr_mode();
                if mode != old_mode {
                    self.sr_ticks_left = 0;
                    self.sr_out_pending = None;
                    if mode == SR_MODE_OUT_EXTERNAL {
                        // The device starts clocking as soon as the VIA drives the data line.
                        self.sr_out_pending = Some(self.sr);
                    }
                }
            }
            reg::PCR => self.pcr = v,
            reg::IFR => self.ifr &= !(v & 0x7F),
            reg::IER => {
                if v & 0x80 != 0 {
                    self.ier |= v & 0x7F;
                } else {
                    self.ier &= !(v & 0x7F);
                }
            }
            _ => self.ora = v,
        }
    }

    /// Port B input register: pins for inputs, output latch for outputs (as the 6522 reads ORB).
    fn port_b_read_value(&self) -> u8 {
        self.port_b()
    }

    fn clear_port_a_flags(&mut self) {
        // CA2 is cleared too unless PCR selects "independent interrupt" input mode (001 / 011).
        let ca2_mode = (self.pcr >> 1) & 7;
        let independent = ca2_mode == 1 || ca2_mode == 3;
        self.clear_flag(irq::CA1 | if independent { 0 } else { irq::CA2 });
    }

    fn clear_port_b_flags(&mut self) {
        let cb2_mode = (self.pcr >> 5) & 7;
        let independent = cb2_mode == 1 || cb2_mode == 3;
        self.clear_flag(irq::CB1 | if independent { 0 } else { irq::CB2 });
    }

    /// Modes clocked by phi2 (2, 6) or T2 (1, 5) shift 8 bits on their own.
    fn start_internal_shift(&mut self) {
        self.sr_ticks_left = match self.sr_mode() {
            2 | 6 => 16, // one bit every 2 E ticks
            1 | 5 => 8 * 2 * (u32::from(self.t2_latch_low) + 2),
            _ => 0,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn via_with_irqs() -> Via {
        let mut v = Via::new();
        v.write(reg::IER, 0xFF);
        v
    }

    #[test]
    fn t1_one_shot_interrupts_after_n_plus_one_ticks_once() {
        let mut v = via_with_irqs();
        v.write(reg::T1CL, 100);
        v.write(reg::T1CH, 0);
        assert_eq!(v.ticks_to_next_event(), Some(101));
        v.advance(100);
        assert!(!v.irq(), "counter at 0, not yet past it");
        assert_eq!(v.read(reg::T1CL), 0);
        v.advance(1);
        assert!(v.irq());
        assert_eq!(v.read(reg::IFR), 0x80 | irq::T1);
        // Counter keeps decrementing from FFFF.
        assert_eq!(v.read(reg::T1CH), 0xFF);
        // Reading T1C-L clears the flag.
        v.read(reg::T1CL);
        assert!(!v.irq());
        // One-shot: no second interrupt.
        v.advance(200_000);
        assert!(!v.irq());
        assert_eq!(v.ticks_to_next_event(), None);
    }

    #[test]
    fn t1_free_running_period_is_latch_plus_two() {
        let mut v = via_with_irqs();
        v.write(reg::ACR, 0x40);
        v.write(reg::T1LL, 10);
        v.write(reg::T1CH, 0);
        // First expiry after 11 ticks, then every 12.
        v.advance(10);
        assert!(!v.irq());
        v.advance(1);
        assert!(v.irq());
        v.write(reg::IFR, irq::T1);
        assert_eq!(v.ticks_to_next_event(), Some(12));
        v.advance(11);
        assert!(!v.irq());
        v.advance(1);
        assert!(v.irq());
        v.write(reg::IFR, irq::T1);
        // Many periods in one advance, landing exactly on expiries: counter back in sync.
        v.advance(12 * 50);
        assert!(v.irq());
        assert_eq!(v.ticks_to_next_event(), Some(12));
        // Same result ticking one by one.
        let mut a = via_with_irqs();
        a.write(reg::ACR, 0x40);
        a.write(reg::T1LL, 10);
        a.write(reg::T1CH, 0);
        let mut b = a.clone();
        let mut hits = 0;
        for _ in 0..1000 {
            a.advance(1);
            if a.irq() {
                hits += 1;
                a.write(reg::IFR, irq::T1);
            }
        }
        b.advance(1000);
        assert_eq!(hits, 1 + (1000 - 11) / 12);
        assert_eq!(a.read(reg::T1CL), b.read(reg::T1CL));
        assert_eq!(a.read(reg::T1CH), b.read(reg::T1CH));
    }

    #[test]
    fn t1_latch_high_write_clears_flag_without_reload() {
        let mut v = via_with_irqs();
        v.write(reg::T1CL, 5);
        v.write(reg::T1CH, 0);
        v.advance(6);
        assert!(v.irq());
        v.write(reg::T1LH, 0x12);
        assert!(!v.irq());
        assert_eq!(v.read(reg::T1LH), 0x12);
        assert_eq!(v.read(reg::T1CH), 0xFF, "no latch-to-counter transfer");
    }

    #[test]
    fn t2_one_shot_and_read_clear() {
        let mut v = via_with_irqs();
        v.write(reg::T2CL, 0x34);
        v.write(reg::T2CH, 0x12);
        assert_eq!(v.ticks_to_next_event(), Some(0x1234 + 1));
        v.advance(0x1234);
        assert!(!v.irq());
        v.advance(1);
        assert_eq!(v.read(reg::IFR) & irq::T2, irq::T2);
        v.read(reg::T2CL);
        assert_eq!(v.read(reg::IFR), 0);
        v.advance(0x20000);
        assert_eq!(v.read(reg::IFR), 0, "T2 interrupts once per load");
    }

    #[test]
    fn t2_pulse_counting_on_pb6() {
        let mut v = via_with_irqs();
        v.write(reg::ACR, 0x20);
        v.write(reg::T2CL, 3);
        v.write(reg::T2CH, 0);
        v.advance(1000);
        assert!(!v.irq(), "E clock does not count in pulse mode");
        for _ in 0..3 {
            v.pulse_pb6();
        }
        assert!(!v.irq());
        v.pulse_pb6();
        assert!(v.irq());
    }

    #[test]
    fn ier_and_ifr_semantics() {
        let mut v = Via::new();
        v.write(reg::IER, 0x80 | irq::CA1 | irq::T1);
        assert_eq!(v.read(reg::IER), 0x80 | irq::CA1 | irq::T1);
        v.write(reg::IER, irq::T1);
        assert_eq!(v.read(reg::IER), 0x80 | irq::CA1);
        // A flag set but not enabled does not raise IRQ or IFR bit 7.
        v.write(reg::T2CL, 0);
        v.write(reg::T2CH, 0);
        v.advance(1);
        assert_eq!(v.read(reg::IFR), irq::T2);
        assert!(!v.irq());
        // Writing 1s clears flags.
        v.write(reg::IFR, 0x7F);
        assert_eq!(v.read(reg::IFR), 0);
    }

    #[test]
    fn ca1_edge_follows_pcr_and_port_a_read_clears() {
        let mut v = via_with_irqs();
        // PCR bit 0 = 0: negative edge.
        v.set_ca1(false);
        assert!(v.irq());
        v.read(reg::ORA);
        assert!(!v.irq());
        v.set_ca1(true);
        assert!(!v.irq(), "rising edge ignored");
        v.write(reg::PCR, 0x01);
        v.set_ca1(false);
        assert!(!v.irq());
        v.set_ca1(true);
        assert!(v.irq());
        // Register 15 reads without clearing.
        v.read(reg::ORA_NH);
        assert!(v.irq());
    }

    #[test]
    fn ca2_independent_mode_survives_port_read() {
        let mut v = via_with_irqs();
        v.write(reg::PCR, 0x02); // CA2: independent interrupt, negative edge
        v.set_ca2(false);
        assert!(v.irq());
        v.read(reg::ORA);
        assert!(v.irq());
        v.write(reg::IFR, irq::CA2);
        assert!(!v.irq());
    }

    #[test]
    fn ports_mix_outputs_and_inputs() {
        let mut v = Via::new();
        // After reset every pin is an input pulled high: overlay (PA4) reads 1.
        assert_eq!(v.port_a() & 0x10, 0x10);
        v.write(reg::DDRA, 0x7F);
        v.write(reg::ORA, 0x00);
        assert_eq!(v.port_a(), 0x80);
        v.set_port_a_input(0x80, 0x00);
        assert_eq!(v.read(reg::ORA), 0x00);
        v.write(reg::DDRB, 0x87);
        v.write(reg::ORB, 0x05);
        v.set_port_b_input(0x78, 0x08); // button up, X2/Y2 low, H4 low
        assert_eq!(v.read(reg::ORB), 0x0D);
    }

    #[test]
    fn shift_register_external_handshake() {
        let mut v = via_with_irqs();
        // Shift out under external clock.
        v.write(reg::ACR, SR_MODE_OUT_EXTERNAL << 2);
        v.write(reg::SR, 0x10);
        assert_eq!(v.pending_shift_out(), Some(0x10));
        assert!(!v.irq());
        assert_eq!(v.finish_shift_out(), Some(0x10));
        assert_eq!(v.read(reg::IFR) & irq::SR, irq::SR);
        assert_eq!(v.finish_shift_out(), None);
        // Not in shift-in mode: the device must wait.
        assert!(!v.shift_in_external(0x7B));
        v.write(reg::ACR, SR_MODE_IN_EXTERNAL << 2);
        assert_eq!(v.pending_shift_out(), None);
        assert!(v.shift_in_external(0x7B));
        assert!(v.irq());
        assert_eq!(v.read(reg::SR), 0x7B);
        assert!(!v.irq(), "reading SR clears its flag");
    }

    #[test]
    fn shift_register_phi2_mode_completes_after_16_ticks() {
        let mut v = via_with_irqs();
        v.write(reg::ACR, 6 << 2);
        v.write(reg::SR, 0xAA);
        assert_eq!(v.ticks_to_next_event(), Some(16));
        v.advance(15);
        assert!(!v.irq());
        v.advance(1);
        assert!(v.irq());
    }

    #[test]
    fn t1_pb7_output_toggles_in_free_run() {
        let mut v = Via::new();
        v.write(reg::ACR, 0xC0);
        v.write(reg::T1LL, 0);
        v.write(reg::T1CH, 0);
        assert_eq!(v.port_b() & 0x80, 0, "PB7 goes low on load");
        v.advance(1);
        assert_eq!(v.port_b() & 0x80, 0x80);
        v.advance(2);
        assert_eq!(v.port_b() & 0x80, 0);
    }

    #[test]
    fn reset_keeps_timers_clears_control() {
        let mut v = via_with_irqs();
        v.write(reg::T1CL, 0x34);
        v.write(reg::T1CH, 0x12);
        v.write(reg::DDRA, 0xFF);
        v.reset();
        assert_eq!(v.read(reg::DDRA), 0);
        assert_eq!(v.read(reg::IER), 0x80);
        assert_eq!(v.read(reg::T1LL), 0x34);
    }
}
