//! Single-bit operations: BTST, BCHG, BCLR, BSET with a register or immediate bit number.

use super::{mode_of, reg9, reg_of};
use crate::bus::Bus;
use crate::cpu::{Cpu, Res};

pub(crate) const BTST: u8 = 0;
pub(crate) const BCHG: u8 = 1;
pub(crate) const BCLR: u8 = 2;
pub(crate) const BSET: u8 = 3;

#[inline(always)]
fn apply<const K: u8>(v: u32, bit: u32) -> u32 {
    match K {
        BCHG => v ^ (1 << bit),
        BCLR => v & !(1 << bit),
        BSET => v | (1 << bit),
        _ => v,
    }
}

/// `IMM` = false: bit number in Dn (bits 11..9); true: in an extension word.
pub(crate) fn bit_op<B: Bus, const K: u8, const IMM: bool, const M: u8>(
    c: &mut Cpu,
    bus: &mut B,
    op: u16,
) -> Res<()> {
    let num = if IMM {
        u32::from(c.fetch_ext(bus)?)
    } else {
        c.d[reg9(op)]
    };
    let (m, r) = (mode_of::<M>(op), reg_of::<M>(op));
    if m == 0 {
        let bit = num & 31;
        let v = c.d[r];
        c.z = v & (1 << bit) == 0;
        c.d[r] = apply::<K>(v, bit);
        c.prefetch(bus)?;
        c.idle(match K {
            BTST => 2,
            BCLR => {
                if bit < 16 {
                    4
                } else {
                    6
                }
            }
            _ => {
                if bit < 16 {
                    2
                } else {
                    4
                }
            }
        });
        return Ok(());
    }
    let bit = num & 7;
    if m == 7 && r == 4 {
        // BTST Dn,#imm
        let v = u32::from(c.fetch_ext(bus)?);
        c.z = v & (1 << bit) == 0;
        c.prefetch(bus)?;
        c.idle(2);
        return Ok(());
    }
    let a = c.ea_addr::<1, B>(bus, m, r)?;
    let v = if m == 7 && (r == 2 || r == 3) {
        let fc = c.prog_fc();
        u32::from(c.read_byte_fc(bus, a, fc)?)
    } else {
        c.read::<1, B>(bus, a)?
    };
    c.z = v & (1 << bit) == 0;
    if K == BTST {
        return c.prefetch(bus);
    }
    c.prefetch(bus)?;
    c.write::<1, B>(bus, a, apply::<K>(v, bit))
}
