//! Zilog 8530 SCC, to the extent the Mac Plus uses it without serial traffic: the register
//! pointer protocol, reset commands, the interrupt machinery, and the DCD inputs that carry the
//! mouse's X1 (channel A) and Y1 (channel B) quadrature signals as external/status interrupts.
//!
//! Facts from the Zilog SCC User's Manual: WR0 bits 2..0 (plus "point high", command 001) select
//! the register for the next control access, after which the pointer returns to 0; WR0 command
//! 010 resets the latched external/status interrupt; WR9 bits 7..6 reset a channel or the chip;
//! WR9 bit 3 is the master interrupt enable; WR1 bit 0 enables external/status interrupts and WR15
//! bit 3 makes DCD transitions one of them. RR0 holds the latched status until the reset
//! command; RR2 of channel B returns the vector modified by the highest pending interrupt; RR3
//! (channel A only) lists the pending interrupts.

/// Channel index: A = 0 (modem port, mouse X), B = 1 (printer port, mouse Y).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    A = 0,
    B = 1,
}

#[derive(Clone, Debug, Default)]
struct ChannelState {
    wr: [u8; 16],
    /// DCD input level (true = high).
    dcd: bool,
    /// Status latched at the last external/status change, until "reset ext/status".
    latched: Option<u8>,
    /// External/status interrupt pending.
    ext_ip: bool,
}

impl ChannelState {
    fn reset(&mut self) {
        // Channel reset leaves WR2 and WR9 (shared) alone and clears the interrupt enables.
        let keep = (self.wr[2], self.wr[9]);
        self.wr = [0; 16];
        (self.wr[2], self.wr[9]) = keep;
        self.wr[15] = 0xF8; // all external/status sources enabled after reset
        self.latched = None;
        self.ext_ip = false;
    }

    fn live_rr0(&self) -> u8 {
        // Tx buffer empty (bit 2) and Tx underrun/EOM (bit 6): nothing is ever being sent.
        0x44 | if self.dcd { 0x08 } else { 0 }
    }

    fn rr0(&self) -> u8 {
        // DCD reads the latched level while a change is pending.
        match self.latched {
            Some(l) => (self.live_rr0() & !0x08) | (l & 0x08),
            None => self.live_rr0(),
        }
    }

    fn ext_interrupt_active(&self) -> bool {
        self.ext_ip && self.wr[1] & 0x01 != 0
    }
}

/// The SCC.
#[derive(Clone, Debug)]
pub struct Scc {
    ch: [ChannelState; 2],
    /// Register pointer for the next control access (shared by both channels).
    pointer: u8,
}

impl Default for Scc {
    fn default() -> Self {
        Self::new()
    }
}

impl Scc {
    pub fn new() -> Scc {
        let mut s = Scc {
            ch: [ChannelState::default(), ChannelState::default()],
            pointer: 0,
        };
        s.hardware_reset();
        s
    }

    /// The RESET line or WR9 "force hardware reset".
    pub fn hardware_reset(&mut self) {
        for c in &mut self.ch {
            c.reset();
        }
        // A hardware reset clears WR9: master interrupt enable, VIS and status high/low off.
        for c in &mut self.ch {
            c.wr[9] = 0;
        }
        self.pointer = 0;
    }

    /// INT output (active when master-enabled and some enabled source is pending).
    pub fn irq(&self) -> bool {
        self.ch[0].wr[9] & 0x08 != 0 && self.ch.iter().any(|c| c.ext_interrupt_active())
    }

    /// Current DCD level of a channel.
    pub fn dcd(&self, c: Channel) -> bool {
        self.ch[c as usize].dcd
    }

    /// Whether an external/status interrupt is pending on a channel (the mouse pacing waits for
    /// the ROM to service one edge before making the next).
    pub fn ext_pending(&self, c: Channel) -> bool {
        self.ch[c as usize].ext_ip
    }

    /// Sets the DCD input; a transition latches status and raises an external/status interrupt
    /// when WR15 bit 3 enables DCD.
    pub fn set_dcd(&mut self, c: Channel, level: bool) {
        let st = &mut self.ch[c as usize];
        if st.dcd == level {
            return;
        }
        let before = st.live_rr0();
        st.dcd = level;
        if st.wr[15] & 0x08 != 0 && st.latched.is_none() {
            // The latch holds the status as of the change.
            st.latched = Some((before & !0x08) | if level { 0x08 } else { 0 });
            st.ext_ip = true;
        }
    }

    /// Byte read. `addr` bit 1 selects channel A (1) or B (0), bit 2 data (1) or control (0).
    pub fn read(&mut self, addr: u32) -> u8 {
        let c = if addr & 2 != 0 { 0 } else { 1 };
        if addr & 4 != 0 {
            return 0; // receive data: nothing ever arrives
        }
        let r = std::mem::take(&mut self.pointer);
        self.read_register(c, r)
    }

    /// Byte write, same address decoding as [`Scc::read`].
    pub fn write(&mut self, addr: u32, v: u8) {
        let c = if addr & 2 != 0 { 0 } else { 1 };
        if addr & 4 != 0 {
            return; // transmit data: no serial line attached
        }
        let r = std::mem::take(&mut self.pointer);
        if r == 0 {
            self.write_wr0(c, v);
        } else {
            self.write_register(c, r, v);
        }
    }

    fn write_wr0(&mut self, c: usize, v: u8) {
        self.ch[c].wr[0] = v;
        let mut ptr = v & 7;
        match (v >> 3) & 7 {
            1 => ptr |= 8, // point high
            2 => {
                // Reset external/status interrupts: unlatch; a change that happened while latched
                // interrupts again at once.
                let st = &mut self.ch[c];
                let latched = st.latched.take();
                st.ext_ip = false;
                if let Some(l) = latched {
                    if (l ^ st.live_rr0()) & 0x08 != 0 && st.wr[15] & 0x08 != 0 {
                        st.latched = Some(st.live_rr0());
                        st.ext_ip = true;
                    }
                }
            }
            _ => {} // abort, Rx/Tx/error resets and "reset highest IUS" need no state here
        }
        self.pointer = ptr;
    }

    fn write_register(&mut self, c: usize, r: u8, v: u8) {
        match r {
            9 => {
                // One WR9 shared by the two channels.
                match v >> 6 {
                    1 => self.ch[1].reset(),
                    2 => self.ch[0].reset(),
                    3 => self.hardware_reset(),
                    _ => {}
                }
                for ch in &mut self.ch {
                    ch.wr[9] = v & 0x3F;
                }
            }
            2 => {
                // One vector register for the chip.
                for ch in &mut self.ch {
                    ch.wr[2] = v;
                }
            }
            _ => self.ch[c].wr[usize::from(r)] = v,
        }
    }

    fn read_register(&self, c: usize, r: u8) -> u8 {
        // The 8530 images: RR4..7 = RR0..3, RR8 = data, RR9 = RR13, RR11 = RR15, RR14 = RR10.
        let r = match r {
            4..=7 => r - 4,
            9 => 13,
            11 => 15,
            14 => 10,
            _ => r,
        };
        let st = &self.ch[c];
        match r {
            0 => st.rr0(),
            1 => 0x07, // all sent, residue code 011
            2 if c == 0 => st.wr[2],
            2 => self.modified_vector(),
            3 if c == 0 => self.rr3(),
            3 => 0,
            8 => 0,
            10 => 0,
            12 => st.wr[12],
            13 => st.wr[13],
            15 => st.wr[15] & 0xFA,
            _ => 0,
        }
    }

    fn rr3(&self) -> u8 {
        let mut v = 0;
        if self.ch[1].ext_interrupt_active() {
            v |= 0x01;
        }
        if self.ch[0].ext_interrupt_active() {
            v |= 0x08;
        }
        v
    }

    /// RR2B: the vector with the code of the highest-priority pending interrupt.
    fn modified_vector(&self) -> u8 {
        // Codes (V3 V2 V1): B ext/status 001, A ext/status 101, none 011. Channel A ranks higher.
        let code: u8 = if self.ch[0].ext_interrupt_active() {
            0b101
        } else if self.ch[1].ext_interrupt_active() {
            0b001
        } else {
            0b011
        };
        let base = self.ch[0].wr[2];
        if self.ch[0].wr[9] & 0x10 != 0 {
            // Status high: V4 V5 V6 carry V3 V2 V1 (bit order reversed).
            let rev = ((code & 1) << 2) | (code & 2) | ((code >> 2) & 1);
            (base & !0x70) | (rev << 4)
        } else {
            (base & !0x0E) | (code << 1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B_CTL: u32 = 0;
    const A_CTL: u32 = 2;

    /// The Mac Plus ROM's mouse setup for one channel (see the init sequence in the header of
    /// MAME's mac128 driver, reproduced as register writes).
    fn mac_init(scc: &mut Scc) {
        for (ch, reset) in [(B_CTL, 0x40), (A_CTL, 0x80)] {
            for v in [
                9, reset, 4, 0x4C, 2, 0x00, 3, 0xC0, 15, 0x08, 0, 0x10, 0, 0x10, 1, 0x01,
            ] {
                scc.write(ch, v);
            }
        }
        scc.write(B_CTL, 9);
        scc.write(B_CTL, 0x0A); // MIE | NV
    }

    #[test]
    fn pointer_returns_to_zero_after_access() {
        let mut scc = Scc::new();
        scc.write(A_CTL, 12);
        scc.write(A_CTL, 0x34);
        scc.write(A_CTL, 12);
        assert_eq!(scc.read(A_CTL), 0x34);
        // Next control read is RR0 again.
        assert_eq!(scc.read(A_CTL) & 0x04, 0x04);
        // Point high: WR0 = 0x08 | 5 selects register 13.
        scc.write(A_CTL, 0x08 | 5);
        scc.write(A_CTL, 0x56);
        scc.write(A_CTL, 13);
        assert_eq!(scc.read(A_CTL), 0x56);
    }

    #[test]
    fn dcd_change_raises_ext_status_interrupt_and_latches() {
        let mut scc = Scc::new();
        mac_init(&mut scc);
        assert!(!scc.irq());
        scc.set_dcd(Channel::A, true);
        assert!(scc.irq());
        assert_eq!(scc.read(A_CTL) & 0x08, 0x08);
        // RR3 (channel A) shows channel A ext/status pending.
        scc.write(A_CTL, 3);
        assert_eq!(scc.read(A_CTL), 0x08);
        // RR2B: vector with status low code 101.
        scc.write(B_CTL, 2);
        assert_eq!(scc.read(B_CTL), 0b101 << 1);
        // Latched: a second change does not show until reset.
        scc.set_dcd(Channel::A, false);
        assert_eq!(scc.read(A_CTL) & 0x08, 0x08);
        scc.write(A_CTL, 0x10); // reset ext/status
                                // The change during the latch interrupts again with the new level.
        assert!(scc.irq());
        assert_eq!(scc.read(A_CTL) & 0x08, 0);
        scc.write(A_CTL, 0x10);
        assert!(!scc.irq());
    }

    #[test]
    fn channel_b_and_master_enable() {
        let mut scc = Scc::new();
        mac_init(&mut scc);
        scc.write(B_CTL, 9);
        scc.write(B_CTL, 0x02); // MIE off
        scc.set_dcd(Channel::B, true);
        assert!(!scc.irq());
        assert!(scc.ext_pending(Channel::B));
        scc.write(B_CTL, 9);
        scc.write(B_CTL, 0x0A);
        assert!(scc.irq());
        scc.write(A_CTL, 3);
        assert_eq!(scc.read(A_CTL), 0x01);
        scc.write(B_CTL, 2);
        assert_eq!(scc.read(B_CTL), 0b001 << 1);
        // RR3 read through channel B reads 0.
        scc.write(B_CTL, 3);
        assert_eq!(scc.read(B_CTL), 0);
    }

    #[test]
    fn dcd_ignored_without_wr15_enable_and_status_high_vector() {
        let mut scc = Scc::new();
        scc.write(A_CTL, 9);
        scc.write(A_CTL, 0xC0); // hardware reset
        scc.write(A_CTL, 15);
        scc.write(A_CTL, 0x00);
        scc.write(A_CTL, 1);
        scc.write(A_CTL, 0x01);
        scc.write(A_CTL, 9);
        scc.write(A_CTL, 0x18); // MIE, status high
        scc.set_dcd(Channel::A, true);
        assert!(!scc.irq());
        scc.write(A_CTL, 15);
        scc.write(A_CTL, 0x08);
        scc.set_dcd(Channel::A, false);
        assert!(scc.irq());
        scc.write(A_CTL, 2);
        scc.write(A_CTL, 0x80);
        scc.write(B_CTL, 2);
        // code 101 reversed = 101, in bits 6..4.
        assert_eq!(scc.read(B_CTL), 0x80 | (0b101 << 4));
    }
}
