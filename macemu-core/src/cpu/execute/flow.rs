//! Program flow: Bcc/BRA/BSR, DBcc, JMP, JSR, RTS, RTE, RTR, TRAP, TRAPV, STOP, RESET, NOP and
//! the illegal, line-A and line-F traps.

use super::{ea_reg, mode_of, reg_of};
use crate::bus::Bus;
use crate::cpu::exceptions::vector;
use crate::cpu::state::SR_MASK;
use crate::cpu::{Cpu, Res, RunState};

pub(crate) fn bcc<B: Bus, const CC: u16>(c: &mut Cpu, bus: &mut B, op: u16) -> Res<()> {
    let disp8 = op as u8;
    if c.cond(CC) {
        let disp = if disp8 == 0 {
            c.irc as i16 as i32 as u32
        } else {
            disp8 as i8 as i32 as u32
        };
        c.idle(2);
        return c.jump(bus, c.pc.wrapping_add(disp));
    }
    c.idle(4);
    if disp8 == 0 {
        c.fetch_ext(bus)?;
    }
    c.prefetch(bus)
}

pub(crate) fn bsr<B: Bus>(c: &mut Cpu, bus: &mut B, op: u16) -> Res<()> {
    let disp8 = op as u8;
    let (disp, ret) = if disp8 == 0 {
        (c.irc as i16 as i32 as u32, c.pc.wrapping_add(2))
    } else {
        (disp8 as i8 as i32 as u32, c.pc)
    };
    let target = c.pc.wrapping_add(disp);
    c.idle(2);
    c.push_long(bus, ret)?;
    c.ae_adj = target.wrapping_sub(c.pc);
    c.jump(bus, target)
}

pub(crate) fn dbcc<B: Bus, const CC: u16>(c: &mut Cpu, bus: &mut B, op: u16) -> Res<()> {
    if c.cond(CC) {
        c.idle(4);
        c.fetch_ext(bus)?;
        return c.prefetch(bus);
    }
    let r = ea_reg(op);
    let cnt = (c.d[r] as u16).wrapping_sub(1);
    if cnt != 0xFFFF {
        c.idle(2);
        let target = c.pc.wrapping_add(c.irc as i16 as i32 as u32);
        c.ae_adj = 2;
        c.jump(bus, target)?;
        c.d[r] = (c.d[r] & 0xFFFF_0000) | u32::from(cnt);
        return Ok(());
    }
    c.d[r] = (c.d[r] & 0xFFFF_0000) | u32::from(cnt);
    c.idle(2);
    c.fetch_ext(bus)?;
    c.idle(4);
    c.prefetch(bus)
}

impl Cpu {
    /// JSR/BSR: the first word at the target is fetched before the return address is pushed.
    #[inline(always)]
    fn call<B: Bus>(&mut self, bus: &mut B, target: u32, ret: u32) -> Res<()> {
        let fc = self.prog_fc();
        let w = self.read_word_fc(bus, target, fc)?;
        self.ae_adj = 0;
        self.push_long(bus, ret)?;
        self.ir = w;
        self.irc = self.read_word_fc(bus, target.wrapping_add(2), fc)?;
        self.pc = target.wrapping_add(2);
        Ok(())
    }

    /// Control addressing for JMP/JSR: extension words are taken from the queue without the
    /// refill the branch would discard. Returns the target and the return address.
    #[inline(always)]
    fn ctrl_target<B: Bus>(&mut self, bus: &mut B, m: u16, r: usize) -> Res<(u32, u32)> {
        let irc = self.irc;
        let pc = self.pc;
        Ok(match m {
            2 => (self.a[r], pc),
            5 => {
                self.idle(2);
                (
                    self.a[r].wrapping_add(irc as i16 as i32 as u32),
                    pc.wrapping_add(2),
                )
            }
            6 => {
                self.idle(6);
                (self.index(self.a[r], irc), pc.wrapping_add(2))
            }
            _ => match r {
                0 => {
                    self.idle(2);
                    (irc as i16 as i32 as u32, pc.wrapping_add(2))
                }
                1 => {
                    let hi = self.fetch_ext(bus)?;
                    (
                        u32::from(hi) << 16 | u32::from(self.irc),
                        self.pc.wrapping_add(2),
                    )
                }
                2 => {
                    self.idle(2);
                    (
                        pc.wrapping_add(irc as i16 as i32 as u32),
                        pc.wrapping_add(2),
                    )
                }
                _ => {
                    self.idle(6);
                    (self.index(pc, irc), pc.wrapping_add(2))
                }
            },
        })
    }
}

pub(crate) fn jmp<B: Bus, const M: u8>(c: &mut Cpu, bus: &mut B, op: u16) -> Res<()> {
    let pc = c.pc;
    let (t, _) = c.ctrl_target(bus, mode_of::<M>(op), reg_of::<M>(op))?;
    c.ae_adj = pc.wrapping_sub(c.pc);
    c.jump(bus, t)
}

pub(crate) fn jsr<B: Bus, const M: u8>(c: &mut Cpu, bus: &mut B, op: u16) -> Res<()> {
    let (t, ret) = c.ctrl_target(bus, mode_of::<M>(op), reg_of::<M>(op))?;
    c.ae_adj = ret.wrapping_sub(c.pc);
    c.call(bus, t, ret)
}

pub(crate) fn rts<B: Bus>(c: &mut Cpu, bus: &mut B, _op: u16) -> Res<()> {
    let t = c.pop_long(bus)?;
    c.jump(bus, t)
}

pub(crate) fn rtr<B: Bus>(c: &mut Cpu, bus: &mut B, _op: u16) -> Res<()> {
    let sp = c.a[7];
    let ccr = c.read::<2, B>(bus, sp)?;
    let t = c.read::<4, B>(bus, sp.wrapping_add(2))?;
    c.a[7] = sp.wrapping_add(6);
    c.set_ccr(ccr as u16);
    c.jump(bus, t)
}

pub(crate) fn rte<B: Bus>(c: &mut Cpu, bus: &mut B, _op: u16) -> Res<()> {
    if !c.s {
        return c.trap_at_instruction(bus, vector::PRIVILEGE);
    }
    let sp = c.a[7];
    let sr = c.read::<2, B>(bus, sp)?;
    let t = c.read::<4, B>(bus, sp.wrapping_add(2))?;
    c.a[7] = sp.wrapping_add(6);
    c.set_sr(sr as u16 & SR_MASK);
    c.jump(bus, t)
}

pub(crate) fn trap<B: Bus>(c: &mut Cpu, bus: &mut B, op: u16) -> Res<()> {
    c.exception(bus, vector::TRAP + u32::from(op & 15), c.pc, 4)
}

pub(crate) fn trapv<B: Bus>(c: &mut Cpu, bus: &mut B, _op: u16) -> Res<()> {
    if c.v {
        // The trap enters supervisor mode before the prefetch: it reads with the supervisor
        // program function code.
        let sr = c.enter_supervisor();
        c.prefetch(bus)?;
        c.push_frame(bus, c.pc.wrapping_sub(2), sr)?;
        return c.vector_jump(bus, vector::TRAPV);
    }
    c.prefetch(bus)
}

pub(crate) fn nop<B: Bus>(c: &mut Cpu, bus: &mut B, _op: u16) -> Res<()> {
    c.prefetch(bus)
}

pub(crate) fn reset<B: Bus>(c: &mut Cpu, bus: &mut B, _op: u16) -> Res<()> {
    if !c.s {
        return c.trap_at_instruction(bus, vector::PRIVILEGE);
    }
    bus.reset_devices();
    c.idle(128);
    c.prefetch(bus)
}

/// STOP #imm: loads SR and waits for an interrupt; the immediate stays in the queue.
pub(crate) fn stop<B: Bus>(c: &mut Cpu, bus: &mut B, _op: u16) -> Res<()> {
    if !c.s {
        return c.trap_at_instruction(bus, vector::PRIVILEGE);
    }
    let v = c.irc;
    c.set_sr(v & SR_MASK);
    c.idle(4);
    c.state = RunState::Stopped;
    Ok(())
}

pub(crate) fn illegal<B: Bus>(c: &mut Cpu, bus: &mut B, _op: u16) -> Res<()> {
    c.trap_at_instruction(bus, vector::ILLEGAL)
}

pub(crate) fn line_a<B: Bus>(c: &mut Cpu, bus: &mut B, _op: u16) -> Res<()> {
    c.trap_at_instruction(bus, vector::LINE_A)
}

pub(crate) fn line_f<B: Bus>(c: &mut Cpu, bus: &mut B, _op: u16) -> Res<()> {
    c.trap_at_instruction(bus, vector::LINE_F)
}
