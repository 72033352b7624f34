//! The 68000's view of the outside world: every memory and device access goes through [`Bus`].
//!
//! The CPU is generic over its bus (`Cpu::step<B: Bus>`), so calls are monomorphised and inlined;
//! there is no dynamic dispatch per access.

/// The function code lines FC2..FC0 driven with every bus cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FunctionCode {
    UserData = 1,
    UserProgram = 2,
    SupervisorData = 5,
    SupervisorProgram = 6,
    /// Interrupt acknowledge cycles.
    CpuSpace = 7,
}

/// A bus cycle that ended with BERR asserted: the CPU takes a bus-error exception.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BusError;

/// How the device that raised an interrupt answers the acknowledge cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InterruptAck {
    /// VPA asserted: the CPU uses autovector 24 + level (the Mac's only mode).
    Autovector,
    /// A device placed this vector number on the data bus.
    Vector(u8),
    /// BERR during acknowledge: spurious interrupt (vector 24).
    Spurious,
}

/// Memory and devices as the 68000 sees them (24-bit addresses on the 68000; the CPU masks them).
pub trait Bus {
    fn read_byte(&mut self, fc: FunctionCode, addr: u32) -> Result<u8, BusError>;
    fn read_word(&mut self, fc: FunctionCode, addr: u32) -> Result<u16, BusError>;
    fn write_byte(&mut self, fc: FunctionCode, addr: u32, value: u8) -> Result<(), BusError>;
    fn write_word(&mut self, fc: FunctionCode, addr: u32, value: u16) -> Result<(), BusError>;

    /// Called as each bus cycle starts, with the clocks the current instruction (or exception)
    /// has used before it, wait states not included. A bus whose memory is shared by time slots
    /// (the Mac's video circuitry) needs to know when within the instruction a cycle starts.
    #[inline(always)]
    fn cycle_start(&mut self, _clk: u32) {}

    /// Wait states (in CPU clocks) the bus inserted since the last call; the CPU adds them to
    /// its cycle count. Devices that stretch bus cycles (VIA E-clock sync) report them here.
    fn take_wait_cycles(&mut self) -> u32 {
        0
    }

    /// The current interrupt priority level on IPL2..IPL0 (0 = none, 7 = NMI).
    fn interrupt_level(&mut self) -> u8 {
        0
    }

    /// Answer the interrupt acknowledge cycle for `level`.
    fn interrupt_ack(&mut self, _level: u8) -> InterruptAck {
        InterruptAck::Autovector
    }

    /// The RESET instruction pulsed the RESET line: devices return to their power-on state.
    fn reset_devices(&mut self) {}

    /// The byte at `addr` as a debugger or tracer sees it: `&self`, so no device register is
    /// read, no clock advances and nothing changes. `None` where only a real bus cycle could
    /// answer (device registers) or nothing answers; the default knows no memory at all.
    fn peek_byte(&self, _addr: u32) -> Option<u8> {
        None
    }

    /// The big-endian word at `addr`, under the rules of [`Bus::peek_byte`].
    fn peek_word(&self, addr: u32) -> Option<u16> {
        let hi = self.peek_byte(addr)?;
        let lo = self.peek_byte(addr.wrapping_add(1))?;
        Some(u16::from_be_bytes([hi, lo]))
    }
}
