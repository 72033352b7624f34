//! NCR 5380 SCSI controller on an empty bus: arbitration wins, selection never gets BSY back,
//! so the ROM's SCSI probe times out and boot goes on to the floppy.
//!
//! Register map (NCR 5380 data sheet; Mac Plus decoding at 0x580000 + reg * 0x10, DACK with
//! address bit 9): read 0 current data, 1 initiator command, 2 mode, 3 target command, 4 current
//! bus status, 5 bus and status, 6 input data, 7 reset parity/interrupt; write 0 output data,
//! 1 initiator command, 2 mode, 3 target command, 4 select enable, 5..7 start DMA.

#[derive(Clone, Debug, Default)]
pub struct Scsi {
    odr: u8,
    icr: u8,
    mode: u8,
    tcr: u8,
    ser: u8,
    irq: bool,
}

/// ICR bits.
const ICR_RST: u8 = 0x80;
const ICR_AIP: u8 = 0x40;
const ICR_ACK: u8 = 0x10;
const ICR_BSY: u8 = 0x08;
const ICR_SEL: u8 = 0x04;
const ICR_ATN: u8 = 0x02;
const ICR_DBUS: u8 = 0x01;
/// Mode register: arbitrate.
const MR_ARB: u8 = 0x01;

impl Scsi {
    pub fn new() -> Scsi {
        Scsi::default()
    }

    pub fn reset(&mut self) {
        *self = Scsi::new();
    }

    /// Interrupt request output (not wired to the CPU on the Plus, kept for status reads).
    pub fn irq(&self) -> bool {
        self.irq
    }

    fn arbitrating(&self) -> bool {
        self.mode & MR_ARB != 0
    }

    /// Reads register `reg` (0..7).
    pub fn read(&mut self, reg: u8) -> u8 {
        match reg & 7 {
            0 => {
                // Only this initiator drives the bus: its data during arbitration or when asserted.
                if self.icr & ICR_DBUS != 0 || self.arbitrating() {
                    self.odr
                } else {
                    0
                }
            }
            1 => {
                // AIP once arbitration started on a free bus; never "lost arbitration".
                (self.icr & !(ICR_AIP | 0x20)) | if self.arbitrating() { ICR_AIP } else { 0 }
            }
            2 => self.mode,
            3 => self.tcr,
            4 => {
                // Current bus status: only our own signals are on the bus.
                let mut v = 0;
                if self.icr & ICR_RST != 0 {
                    v |= 0x80;
                }
                if self.icr & ICR_BSY != 0 {
                    v |= 0x40;
                }
                if self.icr & ICR_SEL != 0 {
                    v |= 0x02;
                }
                v
            }
            5 => {
                // Bus and status: phase match when TCR expects the idle bus phase (000).
                let mut v = 0;
                if self.tcr & 0x07 == 0 {
                    v |= 0x08;
                }
                if self.irq {
                    v |= 0x10;
                }
                if self.icr & ICR_ATN != 0 {
                    v |= 0x02;
                }
                if self.icr & ICR_ACK != 0 {
                    v |= 0x01;
                }
                v
            }
            6 => 0,
            _ => {
                self.irq = false;
                0
            }
        }
    }

    /// Writes register `reg` (0..7).
    pub fn write(&mut self, reg: u8, v: u8) {
        match reg & 7 {
            0 => self.odr = v,
            1 => {
                if v & ICR_RST != 0 && self.icr & ICR_RST == 0 {
                    // Asserting RST resets the bus and interrupts.
                    self.irq = true;
                }
                self.icr = v & !(ICR_AIP | 0x20);
            }
            2 => self.mode = v,
            3 => self.tcr = v & 0x0F,
            4 => self.ser = v,
            _ => {} // DMA starts: no target ever requests
        }
    }

    /// Select-enable register (kept for completeness; no target ever reselects).
    pub fn select_enable(&self) -> u8 {
        self.ser
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arbitration_wins_and_selection_gets_no_busy() {
        let mut s = Scsi::new();
        s.write(0, 0x80); // our ID 7
        s.write(2, MR_ARB);
        assert_eq!(s.read(1) & ICR_AIP, ICR_AIP);
        assert_eq!(s.read(1) & 0x20, 0, "never lost arbitration");
        assert_eq!(s.read(0), 0x80, "only our ID on the bus");
        // Select target 0: assert SEL + data, release arbitration.
        s.write(0, 0x81);
        s.write(1, ICR_SEL | ICR_DBUS | ICR_BSY);
        s.write(2, 0);
        s.write(1, ICR_SEL | ICR_DBUS);
        // Target never answers with BSY.
        for _ in 0..1000 {
            assert_eq!(s.read(4) & 0x40, 0);
        }
        assert_eq!(s.read(4) & 0x02, 0x02, "our SEL is visible");
    }

    #[test]
    fn bus_reset_interrupts_until_cleared() {
        let mut s = Scsi::new();
        s.write(1, ICR_RST);
        assert!(s.irq());
        assert_eq!(s.read(4) & 0x80, 0x80);
        assert_eq!(s.read(5) & 0x10, 0x10);
        s.write(1, 0);
        s.read(7);
        assert!(!s.irq());
        assert_eq!(s.read(5) & 0x08, 0x08, "phase match on the idle bus");
    }
}
