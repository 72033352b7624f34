//! Exception processing: traps, interrupts, trace, address and bus errors, double-fault halt.

use super::{Cpu, FaultKind, Res, RunState};
use crate::bus::{Bus, FunctionCode, InterruptAck};

/// Exception vector numbers.
pub(crate) mod vector {
    pub const BUS_ERROR: u32 = 2;
    pub const ADDRESS_ERROR: u32 = 3;
    pub const ILLEGAL: u32 = 4;
    pub const ZERO_DIVIDE: u32 = 5;
    pub const CHK: u32 = 6;
    pub const TRAPV: u32 = 7;
    pub const PRIVILEGE: u32 = 8;
    pub const TRACE: u32 = 9;
    pub const LINE_A: u32 = 10;
    pub const LINE_F: u32 = 11;
    pub const SPURIOUS: u32 = 24;
    pub const AUTOVECTOR: u32 = 24;
    pub const TRAP: u32 = 32;
}

impl Cpu {
    /// Enters supervisor mode with trace off and returns the SR to stack.
    #[inline]
    pub(crate) fn enter_supervisor(&mut self) -> u16 {
        let sr = self.get_sr();
        if !self.s {
            core::mem::swap(&mut self.a[7], &mut self.other_sp);
            self.s = true;
        }
        self.t = false;
        sr
    }

    /// Reads the handler address of `vec` and loads the prefetch queue there.
    pub(crate) fn vector_jump<B: Bus>(&mut self, bus: &mut B, vec: u32) -> Res<()> {
        let target = self.read_long_fc(bus, vec * 4, FunctionCode::SupervisorData)?;
        let fc = FunctionCode::SupervisorProgram;
        self.ir = self.read_word_fc(bus, target, fc)?;
        self.pc = target;
        self.idle(2);
        self.irc = self.read_word_fc(bus, target.wrapping_add(2), fc)?;
        self.pc = target.wrapping_add(2);
        Ok(())
    }

    /// Writes the 3-word frame of a group 1/2 exception: PC low, SR, PC high (the 68000's order).
    pub(crate) fn push_frame<B: Bus>(&mut self, bus: &mut B, pc: u32, sr: u16) -> Res<()> {
        let sp = self.a[7];
        let fc = FunctionCode::SupervisorData;
        self.a[7] = sp.wrapping_sub(6);
        self.write_word_fc(bus, sp.wrapping_sub(2), pc as u16, fc)?;
        self.write_word_fc(bus, sp.wrapping_sub(6), sr, fc)?;
        self.write_word_fc(bus, sp.wrapping_sub(4), (pc >> 16) as u16, fc)
    }

    /// Group 1/2 exception with saved PC `pc`, after `idle` internal clocks.
    pub(crate) fn exception<B: Bus>(
        &mut self,
        bus: &mut B,
        vec: u32,
        pc: u32,
        idle: u32,
    ) -> Res<()> {
        let sr = self.enter_supervisor();
        self.idle(idle);
        self.push_frame(bus, pc, sr)?;
        self.vector_jump(bus, vec)
    }

    /// Illegal instruction, line A/F and privilege violation: the frame holds the opcode's address.
    pub(crate) fn trap_at_instruction<B: Bus>(&mut self, bus: &mut B, vec: u32) -> Res<()> {
        self.trace_pending = false;
        let pc = self.pc.wrapping_sub(2);
        self.exception(bus, vec, pc, 4)
    }

    pub(crate) fn trace_exception<B: Bus>(&mut self, bus: &mut B) {
        self.cur_op = self.ir;
        let pc = self.pc.wrapping_sub(2);
        if self
            .exception(bus, super::exceptions::vector::TRACE, pc, 4)
            .is_err()
        {
            self.group0(bus);
        }
    }

    /// Interrupt entry for `level` (1..=7): acknowledge cycle, frame, vector, new mask.
    pub(crate) fn interrupt<B: Bus>(&mut self, bus: &mut B, level: u8) {
        self.cur_op = self.ir;
        // A stopped CPU has not consumed STOP's immediate word yet.
        let pc = if self.state == RunState::Stopped {
            self.pc.wrapping_add(2)
        } else {
            self.pc.wrapping_sub(2)
        };
        self.state = RunState::Running;
        let sr = self.enter_supervisor();
        self.int_mask = level;
        self.idle(6);
        let r = (|| -> Res<()> {
            let sp = self.a[7];
            let fc = FunctionCode::SupervisorData;
            self.a[7] = sp.wrapping_sub(6);
            self.write_word_fc(bus, sp.wrapping_sub(2), pc as u16, fc)?;
            // Interrupt acknowledge cycle (autovectors wait for the E clock).
            self.idle(8);
            let vec = match bus.interrupt_ack(level) {
                InterruptAck::Autovector => {
                    super::exceptions::vector::AUTOVECTOR + u32::from(level)
                }
                InterruptAck::Vector(v) => u32::from(v),
                InterruptAck::Spurious => super::exceptions::vector::SPURIOUS,
            };
            self.write_word_fc(bus, sp.wrapping_sub(6), sr, fc)?;
            self.write_word_fc(bus, sp.wrapping_sub(4), (pc >> 16) as u16, fc)?;
            self.vector_jump(bus, vec)
        })();
        if r.is_err() {
            self.group0(bus);
        }
    }

    /// Address or bus error: the 7-word frame, or a halt when it happens during another one.
    pub(crate) fn group0<B: Bus>(&mut self, bus: &mut B) {
        let f = self.fault;
        if self.in_group0 {
            self.state = RunState::Halted;
            return;
        }
        self.in_group0 = true;
        self.trace_pending = false;
        let status = (self.cur_op & !0x1F)
            | u16::from(!f.write) << 4
            // I/N: the m68000 vectors (MAME's microcode) report 0 for program accesses as well.
            | f.fc as u16;
        let pc = self.pc.wrapping_add(self.ae_adj);
        let sr = self.enter_supervisor();
        self.idle(8);
        let r = (|| -> Res<()> {
            let sp = self.a[7];
            let fc = FunctionCode::SupervisorData;
            self.a[7] = sp.wrapping_sub(14);
            self.write_word_fc(bus, sp.wrapping_sub(2), pc as u16, fc)?;
            self.write_word_fc(bus, sp.wrapping_sub(6), sr, fc)?;
            self.write_word_fc(bus, sp.wrapping_sub(4), (pc >> 16) as u16, fc)?;
            self.write_word_fc(bus, sp.wrapping_sub(8), self.cur_op, fc)?;
            self.write_word_fc(bus, sp.wrapping_sub(10), f.addr as u16, fc)?;
            self.write_word_fc(bus, sp.wrapping_sub(14), status, fc)?;
            self.write_word_fc(bus, sp.wrapping_sub(12), (f.addr >> 16) as u16, fc)?;
            let vec = match f.kind {
                FaultKind::Address => super::exceptions::vector::ADDRESS_ERROR,
                FaultKind::Bus => super::exceptions::vector::BUS_ERROR,
            };
            self.vector_jump(bus, vec)
        })();
        self.in_group0 = false;
        if r.is_err() {
            self.state = RunState::Halted;
        }
    }
}
