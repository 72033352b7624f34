//! NCR 5380 SCSI controller and the bus behind it, with up to seven targets (IDs 0–6; the Mac
//! is ID 7).
//!
//! Mac Plus decoding: the chip sits at $580000–$5FFFFF, register = A6–A4 (the ROM reads at
//! $580000 + r×$10 and writes at $580001 + r×$10). A9 is DACK: a read with A9 set ($580200) takes
//! a byte by pseudo-DMA, a write ($580201) gives one. There is no IRQ or DRQ wire to the CPU; the
//! ROM polls the bus-and-status register for DRQ.
//!
//! Registers (NCR 5380 data sheet): read 0 current data, 1 initiator command, 2 mode, 3 target
//! command, 4 current bus status, 5 bus and status, 6 input data, 7 reset parity/interrupt; write
//! 0 output data, 1 initiator command, 2 mode, 3 target command, 4 select enable, 5 start DMA
//! send, 6 start DMA target receive, 7 start DMA initiator receive.
//!
//! The bus follows the initiator's signals as it writes them: selection (SEL with one target's ID
//! on the data bus, BSY released) is answered at once with BSY, and the target enters MESSAGE OUT
//! (if ATN is up) or COMMAND when SEL drops. Every byte then moves by a REQ/ACK handshake: the
//! target asserts REQ, takes or drops its byte when the initiator raises ACK, and moves on when
//! ACK falls. A DACK access does a whole handshake. Targets answer instantly, so the ROM's blind
//! transfers (DRQ polled only before the first byte) never outrun them.

use crate::scsi::{cdb_len, status, Action, ScsiTarget};
use crate::storage::{DiskError, DriveSlot, MediaInfo};

/// Targets on the bus: IDs 0–6.
pub const TARGETS: u8 = 7;

/// ICR bits.
const ICR_RST: u8 = 0x80;
const ICR_AIP: u8 = 0x40;
const ICR_ACK: u8 = 0x10;
const ICR_BSY: u8 = 0x08;
const ICR_SEL: u8 = 0x04;
const ICR_ATN: u8 = 0x02;
const ICR_DBUS: u8 = 0x01;
/// Mode register bits.
const MR_DMA: u8 = 0x02;
const MR_ARB: u8 = 0x01;
/// Current bus status bits.
const CSR_RST: u8 = 0x80;
const CSR_BSY: u8 = 0x40;
const CSR_REQ: u8 = 0x20;
const CSR_SEL: u8 = 0x02;
/// Bus and status bits.
const BSR_DRQ: u8 = 0x40;
const BSR_IRQ: u8 = 0x10;
const BSR_PHASE_MATCH: u8 = 0x08;
const BSR_ATN: u8 = 0x02;
const BSR_ACK: u8 = 0x01;
/// A9 selects DACK (pseudo-DMA).
const DACK: u32 = 0x200;

/// Message bytes (SCSI-2 §6.5).
const MSG_COMMAND_COMPLETE: u8 = 0x00;
const MSG_ABORT: u8 = 0x06;
const MSG_BUS_DEVICE_RESET: u8 = 0x0C;

/// Information transfer phases, as the MSG, C/D and I/O lines show them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    DataOut = 0,
    DataIn = 1,
    Command = 2,
    Status = 3,
    MessageOut = 6,
    MessageIn = 7,
}

impl Phase {
    fn bits(self) -> u8 {
        self as u8
    }
    /// I/O asserted: the target drives the data bus.
    fn is_in(self) -> bool {
        self.bits() & 1 != 0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dma {
    Send,
    Receive,
}

/// A target holding the bus.
#[derive(Debug)]
struct Connection {
    id: u8,
    phase: Phase,
    req: bool,
    /// Bytes of this phase: what the target sends, or what it has collected so far.
    buf: Vec<u8>,
    /// Next byte to send (in phases).
    pos: usize,
    /// Bytes to collect (out phases).
    want: usize,
    /// The current byte changed hands; the next REQ waits for ACK to fall.
    acked: bool,
}

#[derive(Debug)]
enum Bus {
    Free,
    /// The target answered selection with BSY and waits for SEL to drop.
    Selected(u8),
    Connected(Connection),
}

/// The 5380 and its bus.
pub struct Scsi {
    odr: u8,
    idr: u8,
    icr: u8,
    mode: u8,
    tcr: u8,
    ser: u8,
    irq: bool,
    dma: Option<Dma>,
    bus: Bus,
    targets: [Option<Box<dyn ScsiTarget>>; TARGETS as usize],
}

impl Default for Scsi {
    fn default() -> Scsi {
        Scsi::new()
    }
}

impl std::fmt::Debug for Scsi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let present: Vec<u8> = (0..TARGETS)
            .filter(|&i| self.targets[usize::from(i)].is_some())
            .collect();
        f.debug_struct("Scsi")
            .field("icr", &self.icr)
            .field("mode", &self.mode)
            .field("tcr", &self.tcr)
            .field("bus", &self.bus)
            .field("targets", &present)
            .finish()
    }
}

impl Scsi {
    pub fn new() -> Scsi {
        Scsi {
            odr: 0,
            idr: 0,
            icr: 0,
            mode: 0,
            tcr: 0,
            ser: 0,
            irq: false,
            dma: None,
            bus: Bus::Free,
            targets: std::array::from_fn(|_| None),
        }
    }

    /// Chip reset (the 68000's RESET): registers cleared, the bus free. Targets stay attached.
    pub fn reset(&mut self) {
        self.abort_connection();
        self.odr = 0;
        self.idr = 0;
        self.icr = 0;
        self.mode = 0;
        self.tcr = 0;
        self.ser = 0;
        self.irq = false;
        self.dma = None;
    }

    /// Puts `target` on the bus at `id` (0–6).
    pub fn attach(&mut self, id: u8, target: Box<dyn ScsiTarget>) -> Result<(), DiskError> {
        let slot = self.slot(id)?;
        if slot.is_some() {
            return Err(DiskError::Occupied(DriveSlot::Scsi(id)));
        }
        *slot = Some(target);
        Ok(())
    }

    /// Takes the target at `id` off the bus (a command in progress is abandoned, as when a
    /// drive is switched off). `Ok(None)` when no target was there.
    pub fn detach(&mut self, id: u8) -> Result<Option<Box<dyn ScsiTarget>>, DiskError> {
        self.slot(id)?;
        let holds_bus = match &self.bus {
            Bus::Selected(t) => *t == id,
            Bus::Connected(c) => c.id == id,
            Bus::Free => false,
        };
        if holds_bus {
            self.abort_connection();
        }
        Ok(self.targets[usize::from(id)].take())
    }

    /// What the target at `id` holds.
    pub fn info(&self, id: u8) -> Option<MediaInfo> {
        self.targets
            .get(usize::from(id))?
            .as_ref()
            .map(|t| t.info())
    }

    /// Writes that failed to reach a target's medium since the last call, by ID.
    pub fn take_write_errors(&mut self) -> Vec<(u8, String)> {
        (0u8..)
            .zip(self.targets.iter_mut())
            .filter_map(|(id, t)| t.as_mut()?.take_write_error().map(|e| (id, e)))
            .collect()
    }

    fn slot(&mut self, id: u8) -> Result<&mut Option<Box<dyn ScsiTarget>>, DiskError> {
        self.targets
            .get_mut(usize::from(id))
            .ok_or(DiskError::NoSuchDrive(DriveSlot::Scsi(id)))
    }

    /// Interrupt request output (not wired to the CPU on the Plus, kept for status reads).
    pub fn irq(&self) -> bool {
        self.irq
    }

    /// Select-enable register (no target ever reselects, so it has no effect).
    pub fn select_enable(&self) -> u8 {
        self.ser
    }

    /// The phase the bus is in, `None` while no target holds it.
    pub fn phase(&self) -> Option<Phase> {
        match &self.bus {
            Bus::Connected(c) => Some(c.phase),
            _ => None,
        }
    }

    // ---- bus signals -----------------------------------------------------------------------

    fn arbitrating(&self) -> bool {
        self.mode & MR_ARB != 0
    }

    fn target_busy(&self) -> bool {
        !matches!(self.bus, Bus::Free)
    }

    /// BSY from this chip: asserted by the ICR, or by the arbitration logic once the bus is free.
    fn initiator_busy(&self) -> bool {
        self.icr & ICR_BSY != 0 || (self.arbitrating() && !self.target_busy())
    }

    fn bus_phase_bits(&self) -> u8 {
        match &self.bus {
            Bus::Connected(c) => c.phase.bits(),
            _ => 0,
        }
    }

    fn phase_match(&self) -> bool {
        self.tcr & 7 == self.bus_phase_bits()
    }

    fn req(&self) -> bool {
        matches!(&self.bus, Bus::Connected(c) if c.req)
    }

    /// The data bus: the target's byte in an I/O phase, else what this chip drives.
    fn bus_data(&self) -> u8 {
        if let Bus::Connected(c) = &self.bus {
            if c.phase.is_in() {
                return c.buf.get(c.pos).copied().unwrap_or(0);
            }
        }
        if self.icr & ICR_DBUS != 0 || (self.arbitrating() && !self.target_busy()) {
            self.odr
        } else {
            0
        }
    }

    fn drq(&self) -> bool {
        if self.mode & MR_DMA == 0 || !self.req() {
            return false;
        }
        match self.dma {
            // Ready for the next byte whenever the target requests one: after the last byte the
            // ROM waits for DRQ again (with no timeout), and the target's next REQ is in STATUS.
            Some(Dma::Send) => true,
            Some(Dma::Receive) => self.phase_match() && self.bus_phase_bits() & 1 != 0,
            None => false,
        }
    }

    /// Everything the bus does after the initiator changed a signal.
    fn update_bus(&mut self) {
        match &mut self.bus {
            Bus::Free => {
                if self.icr & ICR_SEL != 0 && !self.initiator_busy() {
                    let ids = self.bus_data() & 0x7F;
                    if ids.count_ones() == 1 {
                        let id = ids.trailing_zeros() as u8;
                        if self.targets[usize::from(id)].is_some() {
                            self.bus = Bus::Selected(id);
                        }
                    }
                }
            }
            Bus::Selected(id) => {
                if self.icr & ICR_SEL == 0 {
                    let phase = if self.icr & ICR_ATN != 0 {
                        Phase::MessageOut
                    } else {
                        Phase::Command
                    };
                    self.bus = Bus::Connected(Connection {
                        id: *id,
                        phase,
                        req: true,
                        buf: Vec::new(),
                        pos: 0,
                        want: 1,
                        acked: false,
                    });
                }
            }
            Bus::Connected(c) => {
                let ack = self.icr & ICR_ACK != 0;
                if ack && c.req && !c.acked {
                    if c.phase.is_in() {
                        self.idr = c.buf.get(c.pos).copied().unwrap_or(0);
                    } else {
                        let v = if self.icr & ICR_DBUS != 0 {
                            self.odr
                        } else {
                            0
                        };
                        c.buf.push(v);
                    }
                    c.req = false;
                    c.acked = true;
                } else if !ack && c.acked {
                    c.acked = false;
                    self.advance();
                }
            }
        }
    }

    /// The target moves on after a byte changed hands.
    fn advance(&mut self) {
        let Bus::Connected(c) = &mut self.bus else {
            return;
        };
        let id = usize::from(c.id);
        if c.phase.is_in() {
            c.pos += 1;
            if c.pos < c.buf.len() {
                c.req = true;
                return;
            }
        } else if c.buf.len() < c.want {
            c.req = true;
            return;
        }
        match c.phase {
            Phase::MessageOut => {
                let msg = c.buf.first().copied().unwrap_or(0);
                if msg == MSG_ABORT || msg == MSG_BUS_DEVICE_RESET {
                    self.abort_connection();
                    return;
                }
                // Other messages (IDENTIFY, NO OPERATION, …) need no action from a disk.
                let phase = if self.icr & ICR_ATN != 0 {
                    Phase::MessageOut
                } else {
                    Phase::Command
                };
                c.phase = phase;
                c.buf.clear();
                c.want = 1;
                c.req = true;
            }
            Phase::Command => {
                if c.buf.len() == 1 {
                    c.want = cdb_len(c.buf[0]);
                    c.req = true;
                    return;
                }
                let cdb = std::mem::take(&mut c.buf);
                let action = match self.targets[id].as_mut() {
                    Some(t) => t.command(&cdb),
                    None => return self.abort_connection(),
                };
                self.apply(action);
            }
            Phase::DataIn => {
                let action = match self.targets[id].as_mut() {
                    Some(t) => t.data_in_done(),
                    None => return self.abort_connection(),
                };
                self.apply(action);
            }
            Phase::DataOut => {
                let data = std::mem::take(&mut c.buf);
                let action = match self.targets[id].as_mut() {
                    Some(t) => t.data_out(&data),
                    None => return self.abort_connection(),
                };
                self.apply(action);
            }
            Phase::Status => {
                c.phase = Phase::MessageIn;
                c.buf = vec![MSG_COMMAND_COMPLETE];
                c.pos = 0;
                c.req = true;
            }
            // Command complete: the target releases BSY.
            Phase::MessageIn => self.bus = Bus::Free,
        }
    }

    /// Enters the phase a target asked for.
    fn apply(&mut self, mut action: Action) {
        let Bus::Connected(c) = &mut self.bus else {
            return;
        };
        let id = usize::from(c.id);
        // Empty chunks need no bus phase; ask the target again (bounded, whatever it answers).
        for _ in 0..16 {
            let next = match (&action, self.targets[id].as_mut()) {
                (Action::DataIn(v), Some(t)) if v.is_empty() => t.data_in_done(),
                (Action::DataOut(0), Some(t)) => t.data_out(&[]),
                _ => break,
            };
            action = next;
        }
        let (phase, buf, want) = match action {
            Action::DataIn(v) if !v.is_empty() => (Phase::DataIn, v, 0),
            Action::DataOut(n) if n > 0 => (Phase::DataOut, Vec::with_capacity(n), n),
            Action::Status(s) => (Phase::Status, vec![s], 0),
            _ => (Phase::Status, vec![status::CHECK_CONDITION], 0),
        };
        c.phase = phase;
        c.buf = buf;
        c.want = want;
        c.pos = 0;
        c.req = true;
    }

    /// The bus goes free in the middle of whatever was happening.
    fn abort_connection(&mut self) {
        let id = match &self.bus {
            Bus::Selected(id) => Some(*id),
            Bus::Connected(c) => Some(c.id),
            Bus::Free => None,
        };
        if let Some(t) = id.and_then(|id| self.targets[usize::from(id)].as_mut()) {
            t.abort();
        }
        self.bus = Bus::Free;
    }

    /// RST on the bus: every target lets go, the chip's mode and target command clear and it
    /// interrupts. Targets do not report UNIT ATTENTION afterwards.
    fn bus_reset(&mut self) {
        self.abort_connection();
        self.mode = 0;
        self.tcr = 0;
        self.dma = None;
        self.irq = true;
    }

    // ---- pseudo-DMA --------------------------------------------------------------------------

    fn dack_read(&mut self) -> u8 {
        let ready = self.mode & MR_DMA != 0
            && self.dma == Some(Dma::Receive)
            && self.req()
            && self.phase_match();
        if let (true, Bus::Connected(c)) = (ready, &mut self.bus) {
            if c.phase.is_in() {
                self.idr = c.buf.get(c.pos).copied().unwrap_or(0);
                c.req = false;
                self.advance();
            }
        }
        self.idr
    }

    fn dack_write(&mut self, v: u8) {
        self.odr = v;
        let ready = self.mode & MR_DMA != 0
            && self.dma == Some(Dma::Send)
            && self.req()
            && self.phase_match();
        if let (true, Bus::Connected(c)) = (ready, &mut self.bus) {
            if !c.phase.is_in() {
                c.buf.push(v);
                c.req = false;
                self.advance();
            }
        }
    }

    // ---- registers -----------------------------------------------------------------------------

    /// A read at `addr` in $580000–$5FFFFF.
    pub fn read(&mut self, addr: u32) -> u8 {
        if addr & DACK != 0 {
            return self.dack_read();
        }
        match (addr >> 4) & 7 {
            0 => self.bus_data(),
            1 => {
                // AIP while arbitrating on a free bus; never "lost arbitration": no other
                // initiator exists.
                let aip = if self.arbitrating() && !self.target_busy() {
                    ICR_AIP
                } else {
                    0
                };
                self.icr | aip
            }
            2 => self.mode,
            3 => self.tcr,
            4 => {
                let mut v = 0;
                if self.icr & ICR_RST != 0 {
                    v |= CSR_RST;
                }
                if self.initiator_busy() || self.target_busy() {
                    v |= CSR_BSY;
                }
                if self.req() {
                    v |= CSR_REQ;
                }
                // MSG, C/D, I/O sit at bits 4–2.
                v |= self.bus_phase_bits() << 2;
                if self.icr & ICR_SEL != 0 {
                    v |= CSR_SEL;
                }
                v
            }
            5 => {
                let mut v = 0;
                if self.drq() {
                    v |= BSR_DRQ;
                }
                if self.irq {
                    v |= BSR_IRQ;
                }
                if self.phase_match() {
                    v |= BSR_PHASE_MATCH;
                }
                if self.icr & ICR_ATN != 0 {
                    v |= BSR_ATN;
                }
                if self.icr & ICR_ACK != 0 {
                    v |= BSR_ACK;
                }
                v
            }
            6 => self.idr,
            _ => {
                self.irq = false;
                0
            }
        }
    }

    /// A write at `addr` in $580000–$5FFFFF.
    pub fn write(&mut self, addr: u32, v: u8) {
        if addr & DACK != 0 {
            self.dack_write(v);
            return;
        }
        match (addr >> 4) & 7 {
            0 => self.odr = v,
            1 => {
                let rising_rst = v & ICR_RST != 0 && self.icr & ICR_RST == 0;
                // Bits 6 and 5 are the data sheet's test/differential enables when written.
                self.icr = v & (ICR_RST | ICR_ACK | ICR_BSY | ICR_SEL | ICR_ATN | ICR_DBUS);
                if rising_rst {
                    self.bus_reset();
                }
            }
            2 => {
                self.mode = v;
                if v & MR_DMA == 0 {
                    self.dma = None;
                }
            }
            3 => self.tcr = v & 0x0F,
            4 => self.ser = v,
            5 if self.mode & MR_DMA != 0 => self.dma = Some(Dma::Send),
            7 if self.mode & MR_DMA != 0 => self.dma = Some(Dma::Receive),
            // Target-mode DMA receive: the Mac is never a target.
            _ => {}
        }
        if self.icr & ICR_RST == 0 {
            self.update_bus();
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
