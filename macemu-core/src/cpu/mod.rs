//! Motorola 68000 core.
//!
//! Split by concern: [`state`] (registers, status register), [`decode`] (a 65,536-entry table mapping
//! every opcode to a specialised handler, built once), [`execute`] (the handlers), [`ea`] (effective
//! addresses and sized bus access), [`exceptions`] (traps, interrupts, address/bus errors, halting),
//! [`timing`] (internal-cycle figures); [`instruction`] and [`disasm`] turn words into a printable
//! [`Instruction`] for debuggers and traces.
//!
//! The core models the 68000's two-word prefetch queue (IR/IRC) exactly as the hardware does, so
//! the program counter, exception stack frames and the sequence of bus cycles match a real chip.

mod decode;
pub mod disasm;
mod ea;
mod exceptions;
mod execute;
pub mod flat;
pub mod instruction;
mod state;
mod timing;
#[cfg(feature = "vectors")]
pub mod vectors;

pub use disasm::{disassemble, WordSource};
pub use instruction::{Instruction, Mnemonic, Operand, Size};
pub use state::Registers;

use std::any::Any;

use crate::bus::{Bus, FunctionCode};

/// Which member of the 680x0 family is emulated. It selects the dispatch table (the private
/// `decode::dispatch`) once per CPU and bus type; the instruction loop never branches on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CpuModel {
    M68000,
}

/// Whether the CPU executes instructions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RunState {
    Running,
    /// After `STOP`: resumes when an interrupt above the mask arrives (or on reset).
    Stopped,
    /// After a double bus/address fault: only a reset restarts the CPU.
    Halted,
}

/// Why an access did not complete: the instruction is abandoned and a group-0 exception taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fault {
    pub kind: FaultKind,
    /// Full 32-bit address as computed by the program (the bus sees 24 bits).
    pub addr: u32,
    pub write: bool,
    pub fc: FunctionCode,
}

/// Error marker of an aborted access; the details are in `Cpu::fault`. Zero-sized so every
/// `Res<T>` travels in registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Faulted;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FaultKind {
    Address,
    Bus,
}

pub(crate) type Res<T> = Result<T, Faulted>;

/// The 68000 state. Generic only in its methods: `step::<B>` is monomorphised per bus type.
#[derive(Clone)]
pub struct Cpu {
    pub(crate) d: [u32; 8],
    /// `a[7]` is the active stack pointer; the other one lives in `other_sp`.
    pub(crate) a: [u32; 8],
    /// USP while in supervisor mode, SSP while in user mode.
    pub(crate) other_sp: u32,
    pub(crate) s: bool,
    pub(crate) t: bool,
    pub(crate) int_mask: u8,
    pub(crate) x: bool,
    pub(crate) n: bool,
    pub(crate) z: bool,
    pub(crate) v: bool,
    pub(crate) c: bool,
    /// Address of the word held in `irc`; the instruction in `ir` starts at `pc - 2`.
    pub(crate) pc: u32,
    pub(crate) ir: u16,
    pub(crate) irc: u16,
    /// Clocks used by the current step.
    pub(crate) clk: u32,
    pub(crate) state: RunState,
    /// The prefetch queue must be refilled from `pc - 2` before the next instruction
    /// (after `regs_mut` changed the PC).
    pub(crate) refill: bool,
    /// Interrupt level seen at the previous sample (level 7 is edge-triggered).
    pub(crate) last_ipl: u8,
    /// Set while a group-0 frame is being written: another fault then halts the CPU.
    pub(crate) in_group0: bool,
    /// The last instruction ran with T set: a trace exception precedes the next one.
    pub(crate) trace_pending: bool,
    /// Correction to `pc` for the saved program counter of an address/bus error frame, set by
    /// the effective-address calculation (the 68000 updates its PC at fixed microcode steps).
    pub(crate) ae_adj: u32,
    /// Opcode of the aborted instruction for an address/bus error frame (IR in the frame, even
    /// after the prefetch has loaded the next one). Set when a fault is taken.
    pub(crate) cur_op: u16,
    /// The faulting access came after the prefetch and the frame shows the next opcode (IR).
    pub(crate) frame_shows_ir: bool,
    /// The last aborted access.
    pub(crate) fault: Fault,
    /// Instructions completed (statistics for benchmarks and the debugger).
    pub(crate) instructions: u64,
    model: CpuModel,
    /// The dispatch table of this model for the bus type last run (see [`decode::dispatch`]).
    dispatch: Option<&'static (dyn Any + Send + Sync)>,
}

impl Cpu {
    pub fn new(model: CpuModel) -> Cpu {
        Cpu {
            d: [0; 8],
            a: [0; 8],
            other_sp: 0,
            s: true,
            t: false,
            int_mask: 7,
            x: false,
            n: false,
            z: false,
            v: false,
            c: false,
            pc: 0,
            ir: 0,
            irc: 0,
            clk: 0,
            state: RunState::Running,
            refill: true,
            last_ipl: 0,
            in_group0: false,
            trace_pending: false,
            ae_adj: 0,
            cur_op: 0,
            frame_shows_ir: false,
            fault: Fault {
                kind: FaultKind::Address,
                addr: 0,
                write: false,
                fc: FunctionCode::SupervisorData,
            },
            instructions: 0,
            model,
            dispatch: None,
        }
    }

    pub fn model(&self) -> CpuModel {
        self.model
    }

    /// Hardware reset: supervisor mode, interrupts masked, SSP from vector 0 and PC from vector 1.
    /// A bus fault while reading the vectors halts the CPU.
    pub fn reset<B: Bus>(&mut self, bus: &mut B) {
        self.s = true;
        self.t = false;
        self.int_mask = 7;
        self.state = RunState::Running;
        self.last_ipl = 0;
        self.clk = 0;
        let fc = FunctionCode::SupervisorProgram;
        let r = (|| -> Res<(u32, u32)> {
            let ssp = self.read_long_fc(bus, 0, fc)?;
            let pc = self.read_long_fc(bus, 4, fc)?;
            Ok((ssp, pc))
        })();
        match r {
            Ok((ssp, pc)) => {
                self.a[7] = ssp;
                if self.jump(bus, pc).is_err() {
                    self.state = RunState::Halted;
                }
            }
            Err(_) => self.state = RunState::Halted,
        }
        self.refill = false;
        let _ = bus.take_wait_cycles();
    }

    /// Executes one instruction, or enters one exception/interrupt, and returns the clocks used.
    /// A stopped or halted CPU spends 4 clocks waiting (a stopped one still samples interrupts).
    pub fn step<B: Bus + 'static>(&mut self, bus: &mut B) -> u32 {
        self.clk = 0;
        if self.refill {
            self.refill = false;
            let pc = self.pc.wrapping_sub(2);
            if self.jump(bus, pc).is_err() {
                self.cur_op = self.ir;
                self.group0(bus);
                return self.finish(bus);
            }
        }
        if self.trace_pending {
            self.trace_pending = false;
            self.trace_exception(bus);
            return self.finish(bus);
        }
        let ipl = bus.interrupt_level() & 7;
        if ipl > self.int_mask || (ipl == 7 && self.last_ipl != 7) {
            self.last_ipl = ipl;
            if self.state != RunState::Halted {
                self.interrupt(bus, ipl);
                return self.finish(bus);
            }
        }
        self.last_ipl = ipl;
        if self.state != RunState::Running {
            self.clk = 4;
            return self.finish(bus);
        }
        self.execute_one(bus);
        self.finish(bus)
    }

    #[inline(always)]
    fn finish<B: Bus>(&mut self, bus: &mut B) -> u32 {
        self.clk + bus.take_wait_cycles()
    }

    /// Runs until at least `cycles` clocks are used, or the CPU stops or halts.
    /// Returns the clocks used. A stopped CPU is given one step to accept an interrupt.
    pub fn run<B: Bus + 'static>(&mut self, bus: &mut B, cycles: u64) -> u64 {
        let mut used = 0u64;
        if self.state != RunState::Running {
            used += u64::from(self.step(bus));
            if self.state != RunState::Running {
                return used;
            }
        }
        let table = self.dispatch::<B>();
        let mut done = 0u64;
        while used < cycles {
            // Fast path: no trace (pending or to come), refill or interrupt; same semantics as
            // `step`, which handles the rest.
            let ipl = bus.interrupt_level() & 7;
            if self.trace_pending
                || self.t
                || self.refill
                || ipl > self.int_mask
                || (ipl == 7 && self.last_ipl != 7)
            {
                used += u64::from(self.step(bus));
            } else {
                self.last_ipl = ipl;
                self.clk = 0;
                self.ae_adj = 0;
                let op = self.ir;
                match table[op as usize](self, bus, op) {
                    Ok(()) => done += 1,
                    Err(Faulted) => self.aborted(bus, op),
                }
                used += u64::from(self.clk + bus.take_wait_cycles());
            }
            if self.state != RunState::Running {
                break;
            }
        }
        self.instructions += done;
        used
    }

    /// The instruction `op` was abandoned by an address or bus error: take the exception.
    #[cold]
    #[inline(never)]
    fn aborted<B: Bus>(&mut self, bus: &mut B, op: u16) {
        self.cur_op = if self.frame_shows_ir { self.ir } else { op };
        self.frame_shows_ir = false;
        self.group0(bus);
    }

    /// One instruction; its trace exception (if T was set) is taken at the start of the next step.
    #[inline(always)]
    fn execute_one<B: Bus + 'static>(&mut self, bus: &mut B) {
        self.trace_pending = self.t;
        self.ae_adj = 0;
        let op = self.ir;
        let table = self.dispatch::<B>();
        match table[op as usize](self, bus, op) {
            Ok(()) => self.instructions += 1,
            Err(Faulted) => self.aborted(bus, op),
        }
    }

    /// The handler table of this model for bus type `B`: the cached one when the bus type is
    /// unchanged (the model never changes).
    #[inline(always)]
    fn dispatch<B: Bus + 'static>(&mut self) -> &'static decode::Dispatch<B> {
        if let Some(t) = self
            .dispatch
            .and_then(|t| t.downcast_ref::<decode::Dispatch<B>>())
        {
            return t;
        }
        let t = decode::dispatch::<B>(self.model);
        self.dispatch = Some(t);
        t
    }

    pub fn run_state(&self) -> RunState {
        self.state
    }

    /// Instructions completed since creation.
    pub fn instructions(&self) -> u64 {
        self.instructions
    }

    /// Architectural register snapshot (PC is the address of the next instruction).
    pub fn regs(&self) -> Registers {
        let (usp, ssp) = if self.s {
            (self.other_sp, self.a[7])
        } else {
            (self.a[7], self.other_sp)
        };
        Registers {
            d: self.d,
            a: self.a,
            usp,
            ssp,
            sr: self.sr(),
            pc: self.pc.wrapping_sub(2),
        }
    }

    /// Mutable access to the registers; written back when the guard drops. A changed PC makes the
    /// CPU refill its prefetch queue from the new address before the next instruction.
    pub fn regs_mut(&mut self) -> state::RegsMut<'_> {
        let regs = self.regs();
        state::RegsMut {
            orig_pc: regs.pc,
            regs,
            cpu: self,
        }
    }

    /// Current status register.
    pub fn sr(&self) -> u16 {
        self.get_sr()
    }
}

impl Default for Cpu {
    fn default() -> Self {
        Cpu::new(CpuModel::M68000)
    }
}
