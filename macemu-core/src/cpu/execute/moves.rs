//! Data movement: MOVE, MOVEA, MOVEM, MOVEP, LEA, PEA, LINK, UNLK, MOVE USP, SR/CCR moves and
//! the immediate logic operations on SR/CCR.

use super::{ea_reg, is_reg_or_imm, mode_of, reg9, reg_of, AND, EOR};
use crate::bus::Bus;
use crate::cpu::ea::{sext, LONG, WORD};
use crate::cpu::exceptions::vector;
use crate::cpu::state::SR_MASK;
use crate::cpu::{Cpu, Res};

/// MOVE <ea>,<ea>.
pub(crate) fn move_<B: Bus, const S: u32, const D: u8, const M: u8>(
    c: &mut Cpu,
    bus: &mut B,
    op: u16,
) -> Res<()> {
    let (sm, sr) = (mode_of::<M>(op), reg_of::<M>(op));
    let v = c.read_ea::<S, B>(bus, sm, sr)?;
    let dm = mode_of::<D>(op >> 3);
    let dr = reg_of::<D>(op >> 9);
    if dm == 0 {
        c.set_logic::<S>(v);
        c.set_d::<S>(dr, v);
        return c.prefetch(bus);
    }
    if dm == 4 {
        // -(An): the address is formed without the usual extra clocks.
        let step = if S == 1 && dr == 7 { 2 } else { S };
        let a = c.a[dr].wrapping_sub(step);
        c.set_logic::<S>(v);
        c.ae_adj = 2;
        c.prefetch(bus)?;
        c.ae_adj = 0;
        if S == LONG {
            // The low word goes first; at an odd address it faults before An changes.
            if a & 1 != 0 {
                return c.write::<WORD, B>(bus, a.wrapping_add(2), v);
            }
            c.a[dr] = a;
            return c.write_long_rev(bus, a, v);
        }
        c.a[dr] = a;
        // The frame of a faulting word write shows the already prefetched opcode.
        c.frame_shows_ir = true;
        c.write::<S, B>(bus, a, v)?;
        c.frame_shows_ir = false;
        return Ok(());
    }
    if dm == 7 && dr == 1 {
        let hi = c.fetch_ext(bus)?;
        let a = u32::from(hi) << 16 | u32::from(c.irc);
        if is_reg_or_imm(sm, sr) {
            // From a register or immediate the queue is refilled before the write.
            c.fetch_ext(bus)?;
            c.ae_adj = if sm <= 1 { 0 } else { 2u32.wrapping_neg() };
            c.set_logic::<S>(v);
            c.write::<S, B>(bus, a, v)?;
            return c.prefetch(bus);
        }
        // From memory the low address word is used from IRC; its refill follows the write.
        c.pc = c.pc.wrapping_add(2);
        c.ae_adj = if sm <= 1 { 0 } else { 2u32.wrapping_neg() };
        c.set_logic::<S>(v);
        if S == LONG && a & 1 != 0 && !is_reg_or_imm(sm, sr) {
            // Only the low word's flags are in place when the write faults.
            c.set_logic::<WORD>(v);
        }
        c.write::<S, B>(bus, a, v)?;
        let fc = c.prog_fc();
        c.irc = c.read_word_fc(bus, c.pc, fc)?;
        return c.prefetch(bus);
    }
    let a = if dm == 3 {
        let a = c.a[dr];
        if S == 1 || a & 1 == 0 {
            c.a[dr] = a.wrapping_add(if S == 1 && dr == 7 { 2 } else { S });
        }
        a
    } else {
        c.ea_addr::<S, B>(bus, dm, dr)?
    };
    c.ae_adj = if dm <= 3 { 2 } else { 0 };
    if S == LONG && a & 1 != 0 {
        // A faulting long write leaves the flags partly evaluated: from a memory source only
        // the low word's; from a register untouched for (An) and (An)+, N and Z only for the
        // displacement modes.
        let mem_src = !is_reg_or_imm(sm, sr);
        match dm {
            2 | 3 if mem_src => c.set_logic::<WORD>(v),
            5 | 6 if mem_src => c.set_logic::<WORD>(v >> 16),
            2 | 3 => {}
            5 | 6 => c.set_nz::<LONG>(v),
            _ => c.set_logic::<LONG>(v),
        }
    } else {
        c.set_logic::<S>(v);
    }
    c.write::<S, B>(bus, a, v)?;
    c.prefetch(bus)
}

/// MOVEA.W / MOVEA.L.
pub(crate) fn movea<B: Bus, const S: u32, const M: u8>(
    c: &mut Cpu,
    bus: &mut B,
    op: u16,
) -> Res<()> {
    let v = sext(
        S,
        c.read_ea::<S, B>(bus, mode_of::<M>(op), reg_of::<M>(op))?,
    );
    c.a[reg9(op)] = v;
    c.prefetch(bus)
}

/// LEA <ea>,An.
pub(crate) fn lea<B: Bus, const M: u8>(c: &mut Cpu, bus: &mut B, op: u16) -> Res<()> {
    let m = mode_of::<M>(op);
    let r = reg_of::<M>(op);
    let a = c.ea_addr::<LONG, B>(bus, m, r)?;
    c.a[reg9(op)] = a;
    if m == 6 || (m == 7 && r == 3) {
        c.idle(2);
    }
    c.prefetch(bus)
}

/// PEA <ea>.
pub(crate) fn pea<B: Bus, const M: u8>(c: &mut Cpu, bus: &mut B, op: u16) -> Res<()> {
    let m = mode_of::<M>(op);
    let r = reg_of::<M>(op);
    let a = c.ea_addr::<LONG, B>(bus, m, r)?;
    if m == 6 || (m == 7 && r == 3) {
        c.idle(2);
    }
    if m == 7 && r <= 1 {
        c.push_long(bus, a)?;
        return c.prefetch(bus);
    }
    c.prefetch(bus)?;
    c.push_long(bus, a)
}

pub(crate) fn link<B: Bus>(c: &mut Cpu, bus: &mut B, op: u16) -> Res<()> {
    let r = ea_reg(op);
    let disp = c.fetch_ext(bus)? as i16 as i32 as u32;
    let v = c.a[r];
    let sp = c.a[7].wrapping_sub(4);
    c.a[7] = sp;
    c.write::<LONG, B>(bus, sp, v)?;
    c.a[r] = sp;
    c.a[7] = c.a[7].wrapping_add(disp);
    c.prefetch(bus)
}

pub(crate) fn unlk<B: Bus>(c: &mut Cpu, bus: &mut B, op: u16) -> Res<()> {
    let r = ea_reg(op);
    let a = c.a[r];
    c.ae_adj = 2;
    let v = c.read::<LONG, B>(bus, a)?;
    c.a[7] = a.wrapping_add(4);
    c.a[r] = v;
    c.prefetch(bus)
}

/// MOVE An,USP (bit 3 clear) / MOVE USP,An.
pub(crate) fn move_usp<B: Bus>(c: &mut Cpu, bus: &mut B, op: u16) -> Res<()> {
    if !c.s {
        return c.trap_at_instruction(bus, vector::PRIVILEGE);
    }
    let r = ea_reg(op);
    if op & 8 == 0 {
        c.set_usp(c.a[r]);
    } else {
        c.a[r] = c.usp();
    }
    c.prefetch(bus)
}

pub(crate) fn move_from_sr<B: Bus, const M: u8>(c: &mut Cpu, bus: &mut B, op: u16) -> Res<()> {
    let (m, r) = (mode_of::<M>(op), reg_of::<M>(op));
    let sr = u32::from(c.get_sr());
    if m == 0 {
        c.set_d::<WORD>(r, sr);
        c.prefetch(bus)?;
        c.idle(2);
        return Ok(());
    }
    let a = c.ea_addr::<WORD, B>(bus, m, r)?;
    c.read::<WORD, B>(bus, a)?;
    c.prefetch(bus)?;
    c.write::<WORD, B>(bus, a, sr)
}

/// MOVE <ea>,CCR (`SR` = false) or MOVE <ea>,SR.
pub(crate) fn move_to_sr<B: Bus, const SR: bool, const M: u8>(
    c: &mut Cpu,
    bus: &mut B,
    op: u16,
) -> Res<()> {
    if SR && !c.s {
        return c.trap_at_instruction(bus, vector::PRIVILEGE);
    }
    let v = c.read_ea::<WORD, B>(bus, mode_of::<M>(op), reg_of::<M>(op))? as u16;
    if SR {
        c.set_sr(v & SR_MASK);
    } else {
        c.set_ccr(v);
    }
    c.idle(4);
    let pc = c.pc;
    c.jump(bus, pc)
}

/// ANDI/ORI/EORI #imm to CCR (`SR` = false) or SR.
pub(crate) fn logic_sr<B: Bus, const K: u8, const SR: bool>(
    c: &mut Cpu,
    bus: &mut B,
    _op: u16,
) -> Res<()> {
    if SR && !c.s {
        return c.trap_at_instruction(bus, vector::PRIVILEGE);
    }
    let imm = c.fetch_ext(bus)?;
    let cur = if SR { c.get_sr() } else { c.ccr() };
    let v = match K {
        AND => cur & imm,
        EOR => cur ^ imm,
        _ => cur | imm,
    };
    if SR {
        c.set_sr(v & SR_MASK);
    } else {
        c.set_ccr(v);
    }
    c.idle(8);
    let pc = c.pc;
    c.jump(bus, pc)
}

/// MOVEM registers to memory.
pub(crate) fn movem_to_mem<B: Bus, const S: u32, const M: u8>(
    c: &mut Cpu,
    bus: &mut B,
    op: u16,
) -> Res<()> {
    let list = c.fetch_ext(bus)?;
    let (m, r) = (mode_of::<M>(op), reg_of::<M>(op));
    c.ae_adj = 2;
    if m == 4 {
        // Predecrement: list bit 0 is A7, stored from A7 down to D0.
        let mut a = c.a[r];
        let start = a;
        for i in 0..16 {
            if list & (1 << i) != 0 {
                let reg = 15 - i;
                let v = if reg >= 8 { c.a[reg - 8] } else { c.d[reg] };
                let v = if reg == 8 + r { start } else { v };
                a = a.wrapping_sub(S);
                if S == LONG {
                    c.write_long_rev(bus, a, v)?;
                } else {
                    c.write::<WORD, B>(bus, a, v)?;
                }
                c.a[r] = a;
            }
        }
        c.a[r] = a;
        return c.prefetch(bus);
    }
    let mut a = c.ea_addr::<S, B>(bus, m, r)?;
    c.ae_adj = 2;
    for i in 0..16 {
        if list & (1 << i) != 0 {
            let v = if i >= 8 { c.a[i - 8] } else { c.d[i] };
            c.write::<S, B>(bus, a, v)?;
            a = a.wrapping_add(S);
        }
    }
    c.prefetch(bus)
}

/// MOVEM memory to registers (words are sign-extended); ends with one extra word read.
pub(crate) fn movem_to_reg<B: Bus, const S: u32, const M: u8>(
    c: &mut Cpu,
    bus: &mut B,
    op: u16,
) -> Res<()> {
    let list = c.fetch_ext(bus)?;
    let (m, r) = (mode_of::<M>(op), reg_of::<M>(op));
    let pcrel = m == 7 && (r == 2 || r == 3);
    let mut a = if m == 3 {
        c.a[r]
    } else {
        c.ea_addr::<S, B>(bus, m, r)?
    };
    c.ae_adj = 2;
    let fc = if pcrel { c.prog_fc() } else { c.data_fc() };
    for i in 0..16 {
        if list & (1 << i) != 0 {
            let v = sext(S, c.read_fc::<S, B>(bus, a, fc)?);
            if i >= 8 {
                c.a[i - 8] = v;
            } else {
                c.d[i] = v;
            }
            a = a.wrapping_add(S);
            if m == 3 {
                c.a[r] = a;
            }
        }
    }
    c.read_word_fc(bus, a, fc)?;
    if m == 3 {
        c.a[r] = a;
    }
    c.prefetch(bus)
}

/// MOVEP: bytes at alternate addresses. Bit 7: register to memory; bit 6: long.
pub(crate) fn movep<B: Bus, const S: u32, const TO_MEM: bool>(
    c: &mut Cpu,
    bus: &mut B,
    op: u16,
) -> Res<()> {
    let disp = c.fetch_ext(bus)? as i16 as i32 as u32;
    let a = c.a[ea_reg(op)].wrapping_add(disp);
    let dn = reg9(op);
    let fc = c.data_fc();
    let n = S;
    if TO_MEM {
        let v = c.d[dn];
        for i in 0..n {
            let b = (v >> (8 * (n - 1 - i))) as u8;
            c.write_byte_fc(bus, a.wrapping_add(2 * i), b, fc)?;
        }
    } else {
        let mut v = 0u32;
        for i in 0..n {
            v = (v << 8) | u32::from(c.read_byte_fc(bus, a.wrapping_add(2 * i), fc)?);
        }
        c.set_d::<S>(dn, v);
    }
    c.prefetch(bus)
}
