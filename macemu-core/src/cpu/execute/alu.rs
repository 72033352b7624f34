//! Arithmetic and logic: ADD/SUB/CMP/AND/OR/EOR and their A/I/Q/X forms, NEG/NEGX/NOT/CLR/TST,
//! EXT, SWAP, EXG, MOVEQ, Scc, TAS, CHK.

use super::{ea_reg, is_reg_or_imm, mode_of, reg9, reg_of, ADD, CMP, EOR, SUB};
use crate::bus::Bus;
use crate::cpu::ea::{mask, sext, LONG, WORD};
use crate::cpu::exceptions::vector;
use crate::cpu::{Cpu, Res};

/// `<ea>,Dn` forms of ADD, SUB, AND, OR, CMP.
pub(crate) fn to_reg<B: Bus, const S: u32, const K: u8, const M: u8>(
    c: &mut Cpu,
    bus: &mut B,
    op: u16,
) -> Res<()> {
    let (m, r) = (mode_of::<M>(op), reg_of::<M>(op));
    let s = c.read_ea::<S, B>(bus, m, r)?;
    let dn = reg9(op);
    let res = c.alu::<S, K>(s, c.d[dn]);
    if K != CMP {
        c.set_d::<S>(dn, res);
    }
    c.prefetch(bus)?;
    if S == LONG {
        c.idle(if K == CMP || !is_reg_or_imm(m, r) {
            2
        } else {
            4
        });
    }
    Ok(())
}

/// `Dn,<ea>` forms of ADD, SUB, AND, OR, EOR with a memory destination.
pub(crate) fn to_mem<B: Bus, const S: u32, const K: u8, const M: u8>(
    c: &mut Cpu,
    bus: &mut B,
    op: u16,
) -> Res<()> {
    let a = c.ea_addr::<S, B>(bus, mode_of::<M>(op), reg_of::<M>(op))?;
    let d = c.read::<S, B>(bus, a)?;
    let res = c.alu::<S, K>(c.d[reg9(op)], d);
    c.prefetch(bus)?;
    c.write_rmw::<S, B>(bus, a, res)
}

/// EOR Dn,Dn.
pub(crate) fn eor_reg<B: Bus, const S: u32>(c: &mut Cpu, bus: &mut B, op: u16) -> Res<()> {
    let r = ea_reg(op);
    let res = c.alu::<S, EOR>(c.d[reg9(op)], c.d[r]);
    c.set_d::<S>(r, res);
    c.prefetch(bus)?;
    if S == LONG {
        c.idle(4);
    }
    Ok(())
}

/// ADDA, SUBA, CMPA (source sign-extended to 32 bits).
pub(crate) fn addr_op<B: Bus, const S: u32, const K: u8, const M: u8>(
    c: &mut Cpu,
    bus: &mut B,
    op: u16,
) -> Res<()> {
    let (m, r) = (mode_of::<M>(op), reg_of::<M>(op));
    let s = sext(S, c.read_ea::<S, B>(bus, m, r)?);
    let an = reg9(op);
    let d = c.a[an];
    match K {
        ADD => c.a[an] = d.wrapping_add(s),
        SUB => c.a[an] = d.wrapping_sub(s),
        _ => {
            c.sub_flags::<LONG>(s, d, 0);
        }
    }
    c.prefetch(bus)?;
    c.idle(if K == CMP {
        2
    } else if S != LONG || is_reg_or_imm(m, r) {
        4
    } else {
        2
    });
    Ok(())
}

/// ADDI, SUBI, ANDI, ORI, EORI, CMPI.
pub(crate) fn imm<B: Bus, const S: u32, const K: u8, const M: u8>(
    c: &mut Cpu,
    bus: &mut B,
    op: u16,
) -> Res<()> {
    let s = if S == LONG {
        c.fetch_ext_long(bus)?
    } else {
        u32::from(c.fetch_ext(bus)?) & mask(S)
    };
    let (m, r) = (mode_of::<M>(op), reg_of::<M>(op));
    if m == 0 {
        let res = c.alu::<S, K>(s, c.d[r]);
        if K != CMP {
            c.set_d::<S>(r, res);
        }
        c.prefetch(bus)?;
        if S == LONG {
            c.idle(if K == CMP { 2 } else { 4 });
        }
        return Ok(());
    }
    let a = c.ea_addr::<S, B>(bus, m, r)?;
    let d = c.read::<S, B>(bus, a)?;
    let res = c.alu::<S, K>(s, d);
    c.prefetch(bus)?;
    if K != CMP {
        c.write_rmw::<S, B>(bus, a, res)?;
    }
    Ok(())
}

/// ADDQ/SUBQ to a data register or memory (K = ADD or SUB).
pub(crate) fn quick<B: Bus, const S: u32, const K: u8, const M: u8>(
    c: &mut Cpu,
    bus: &mut B,
    op: u16,
) -> Res<()> {
    let q = match (op >> 9) & 7 {
        0 => 8,
        n => u32::from(n),
    };
    let (m, r) = (mode_of::<M>(op), reg_of::<M>(op));
    if m == 0 {
        let res = c.alu::<S, K>(q, c.d[r]);
        c.set_d::<S>(r, res);
        c.prefetch(bus)?;
        if S == LONG {
            c.idle(4);
        }
        return Ok(());
    }
    let a = c.ea_addr::<S, B>(bus, m, r)?;
    let d = c.read::<S, B>(bus, a)?;
    let res = c.alu::<S, K>(q, d);
    c.prefetch(bus)?;
    c.write_rmw::<S, B>(bus, a, res)
}

/// ADDQ/SUBQ to an address register: whole register, no flags.
pub(crate) fn quick_an<B: Bus, const K: u8>(c: &mut Cpu, bus: &mut B, op: u16) -> Res<()> {
    let q = match (op >> 9) & 7 {
        0 => 8,
        n => u32::from(n),
    };
    let r = ea_reg(op);
    c.a[r] = if K == ADD {
        c.a[r].wrapping_add(q)
    } else {
        c.a[r].wrapping_sub(q)
    };
    c.prefetch(bus)?;
    c.idle(4);
    Ok(())
}

/// ADDX/SUBX, register and -(Ay),-(Ax) forms (K = ADD or SUB).
pub(crate) fn extend<B: Bus, const S: u32, const K: u8>(
    c: &mut Cpu,
    bus: &mut B,
    op: u16,
) -> Res<()> {
    let (rx, ry) = (reg9(op), ea_reg(op));
    let x = u32::from(c.x);
    let z = c.z;
    if op & 8 == 0 {
        let res = if K == ADD {
            c.add_flags::<S>(c.d[ry], c.d[rx], x)
        } else {
            c.sub_flags::<S>(c.d[ry], c.d[rx], x)
        };
        c.z = z && res == 0;
        c.x = c.c;
        c.set_d::<S>(rx, res);
        c.prefetch(bus)?;
        if S == LONG {
            c.idle(4);
        }
        return Ok(());
    }
    c.ae_adj = 2;
    let sa = c.predec_long_aware::<S>(ry)?;
    let s = c.read_low_first::<S, B>(bus, sa)?;
    c.clk -= 2; // the second predecrement overlaps the first read
    let da = c.predec_long_aware::<S>(rx)?;
    let d = c.read_low_first::<S, B>(bus, da)?;
    let res = if K == ADD {
        c.add_flags::<S>(s, d, x)
    } else {
        c.sub_flags::<S>(s, d, x)
    };
    c.z = z && res == 0;
    c.x = c.c;
    if S == LONG {
        // Low word, prefetch, high word.
        c.write::<WORD, B>(bus, da.wrapping_add(2), res)?;
        c.prefetch(bus)?;
        c.write::<WORD, B>(bus, da, res >> 16)
    } else {
        c.prefetch(bus)?;
        c.write::<S, B>(bus, da, res)
    }
}

impl Cpu {
    /// A -(An) operand read: longs low word first, as the predecrement walks down.
    #[inline(always)]
    fn read_low_first<const S: u32, B: Bus>(&mut self, bus: &mut B, a: u32) -> Res<u32> {
        if S == LONG {
            let lo = self.read::<WORD, B>(bus, a.wrapping_add(2))?;
            let hi = self.read::<WORD, B>(bus, a)?;
            Ok(hi << 16 | lo)
        } else {
            self.read::<S, B>(bus, a)
        }
    }

    /// -(An) for ADDX/SUBX/ABCD-style operands: a long at an odd address faults on its low
    /// word (at An-2) before An changes.
    #[inline(always)]
    fn predec_long_aware<const S: u32>(&mut self, r: usize) -> Res<u32> {
        self.idle(2);
        let step = if S == 1 && r == 7 { 2 } else { S };
        let a = self.a[r].wrapping_sub(step);
        if S == LONG && a & 1 != 0 {
            let fc = self.data_fc();
            self.clk += 4;
            return Err(self.fault(crate::cpu::FaultKind::Address, a.wrapping_add(2), false, fc));
        }
        self.a[r] = a;
        Ok(a)
    }
}

/// CMPM (Ay)+,(Ax)+.
pub(crate) fn cmpm<B: Bus, const S: u32>(c: &mut Cpu, bus: &mut B, op: u16) -> Res<()> {
    let (ry, rx) = (ea_reg(op), reg9(op));
    let step = |r: usize| if S == 1 && r == 7 { 2 } else { S };
    let sa = c.a[ry];
    // A faulting long source has advanced by one word; a faulting destination not at all.
    c.a[ry] = sa.wrapping_add(if S == LONG && sa & 1 != 0 {
        2
    } else {
        step(ry)
    });
    c.ae_adj = 2;
    let s = c.read::<S, B>(bus, sa)?;
    let da = c.a[rx];
    if S == 1 || da & 1 == 0 {
        c.a[rx] = da.wrapping_add(step(rx));
    }
    let d = c.read::<S, B>(bus, da)?;
    c.sub_flags::<S>(s, d, 0);
    c.prefetch(bus)
}

/// Single-operand read-modify-write operations on data registers or memory.
pub(crate) const NEG: u8 = 0;
pub(crate) const NEGX: u8 = 1;
pub(crate) const NOT: u8 = 2;
pub(crate) const CLR: u8 = 3;

pub(crate) fn unary<B: Bus, const S: u32, const K: u8, const M: u8>(
    c: &mut Cpu,
    bus: &mut B,
    op: u16,
) -> Res<()> {
    let (m, r) = (mode_of::<M>(op), reg_of::<M>(op));
    let apply = |c: &mut Cpu, d: u32| -> u32 {
        match K {
            NEG => {
                let res = c.sub_flags::<S>(d, 0, 0);
                c.x = c.c;
                res
            }
            NEGX => {
                let z = c.z;
                let res = c.sub_flags::<S>(d, 0, u32::from(c.x));
                c.z = z && res == 0;
                c.x = c.c;
                res
            }
            NOT => {
                let res = !d & mask(S);
                c.set_logic::<S>(res);
                res
            }
            _ => {
                c.set_logic::<S>(0);
                0
            }
        }
    };
    if m == 0 {
        let res = apply(c, c.d[r]);
        c.set_d::<S>(r, res);
        c.prefetch(bus)?;
        if S == LONG {
            c.idle(2);
        }
        return Ok(());
    }
    let a = c.ea_addr::<S, B>(bus, m, r)?;
    let d = c.read::<S, B>(bus, a)?;
    let res = apply(c, d);
    c.prefetch(bus)?;
    c.write_rmw::<S, B>(bus, a, res)
}

pub(crate) fn tst<B: Bus, const S: u32, const M: u8>(c: &mut Cpu, bus: &mut B, op: u16) -> Res<()> {
    let v = c.read_ea::<S, B>(bus, mode_of::<M>(op), reg_of::<M>(op))?;
    c.set_logic::<S>(v);
    c.prefetch(bus)
}

/// EXT.W (S = 2) and EXT.L (S = 4).
pub(crate) fn ext<B: Bus, const S: u32>(c: &mut Cpu, bus: &mut B, op: u16) -> Res<()> {
    let r = ea_reg(op);
    let v = if S == LONG {
        c.d[r] as u16 as i16 as i32 as u32
    } else {
        c.d[r] as u8 as i8 as i16 as u16 as u32
    };
    c.set_d::<S>(r, v);
    c.set_logic::<S>(v);
    c.prefetch(bus)
}

pub(crate) fn swap<B: Bus>(c: &mut Cpu, bus: &mut B, op: u16) -> Res<()> {
    let r = ea_reg(op);
    let v = c.d[r].rotate_left(16);
    c.d[r] = v;
    c.set_logic::<LONG>(v);
    c.prefetch(bus)
}

pub(crate) fn exg<B: Bus>(c: &mut Cpu, bus: &mut B, op: u16) -> Res<()> {
    let (rx, ry) = (reg9(op), ea_reg(op));
    match (op >> 3) & 0x1F {
        0x08 => c.d.swap(rx, ry),
        0x09 => c.a.swap(rx, ry),
        _ => core::mem::swap(&mut c.d[rx], &mut c.a[ry]),
    }
    c.prefetch(bus)?;
    c.idle(2);
    Ok(())
}

pub(crate) fn moveq<B: Bus>(c: &mut Cpu, bus: &mut B, op: u16) -> Res<()> {
    let v = op as u8 as i8 as i32 as u32;
    c.d[reg9(op)] = v;
    c.set_logic::<LONG>(v);
    c.prefetch(bus)
}

pub(crate) fn scc<B: Bus, const M: u8>(c: &mut Cpu, bus: &mut B, op: u16) -> Res<()> {
    let (m, r) = (mode_of::<M>(op), reg_of::<M>(op));
    let v = if c.cond(op >> 8) { 0xFF } else { 0 };
    if m == 0 {
        c.set_d::<1>(r, v);
        c.prefetch(bus)?;
        if v != 0 {
            c.idle(2);
        }
        return Ok(());
    }
    let a = c.ea_addr::<1, B>(bus, m, r)?;
    c.read::<1, B>(bus, a)?;
    c.prefetch(bus)?;
    c.write::<1, B>(bus, a, v)
}

pub(crate) fn tas<B: Bus, const M: u8>(c: &mut Cpu, bus: &mut B, op: u16) -> Res<()> {
    let (m, r) = (mode_of::<M>(op), reg_of::<M>(op));
    if m == 0 {
        let v = c.d[r];
        c.set_logic::<1>(v);
        c.set_d::<1>(r, v | 0x80);
        return c.prefetch(bus);
    }
    let a = c.ea_addr::<1, B>(bus, m, r)?;
    let v = c.read::<1, B>(bus, a)?;
    c.set_logic::<1>(v);
    c.idle(2);
    c.write::<1, B>(bus, a, v | 0x80)?;
    c.prefetch(bus)
}

/// CHK.W <ea>,Dn.
pub(crate) fn chk<B: Bus, const M: u8>(c: &mut Cpu, bus: &mut B, op: u16) -> Res<()> {
    let bound = c.read_ea::<2, B>(bus, mode_of::<M>(op), reg_of::<M>(op))? as u16 as i16;
    let v = c.d[reg9(op)] as u16 as i16;
    c.z = v == 0;
    c.v = false;
    c.c = false;
    c.n = v < 0;
    // The upper bound is tested first; that trap is taken two clocks sooner. The shorter path
    // is also taken for a negative Dn whose difference to a positive bound overflows 16 bits
    // (it traps for Dn < 0 either way), as the m68000 vectors show.
    if v > bound || v.wrapping_sub(bound) > 0 {
        c.idle(4);
        return c.exception(bus, vector::CHK, c.pc, 4);
    }
    c.idle(6);
    if v < 0 || v > bound {
        return c.exception(bus, vector::CHK, c.pc, 4);
    }
    c.prefetch(bus)
}
