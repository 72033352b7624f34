//! MULU, MULS, DIVU, DIVS with the 68000's data-dependent timing.

use super::{mode_of, reg9, reg_of};
use crate::bus::Bus;
use crate::cpu::exceptions::vector;
use crate::cpu::timing;
use crate::cpu::{Cpu, Res};

pub(crate) fn mul<B: Bus, const SIGNED: bool, const M: u8>(
    c: &mut Cpu,
    bus: &mut B,
    op: u16,
) -> Res<()> {
    let s = c.read_ea::<2, B>(bus, mode_of::<M>(op), reg_of::<M>(op))? as u16;
    let dn = reg9(op);
    let d = c.d[dn] as u16;
    let r = if SIGNED {
        (i32::from(s as i16) * i32::from(d as i16)) as u32
    } else {
        u32::from(s) * u32::from(d)
    };
    c.d[dn] = r;
    c.set_logic::<4>(r);
    c.prefetch(bus)?;
    c.idle(if SIGNED {
        timing::muls(s)
    } else {
        timing::mulu(s)
    });
    Ok(())
}

pub(crate) fn div<B: Bus, const SIGNED: bool, const M: u8>(
    c: &mut Cpu,
    bus: &mut B,
    op: u16,
) -> Res<()> {
    let s = c.read_ea::<2, B>(bus, mode_of::<M>(op), reg_of::<M>(op))? as u16;
    let dn = reg9(op);
    let d = c.d[dn];
    if s == 0 {
        c.c = false;
        c.idle(8);
        return c.exception(bus, vector::ZERO_DIVIDE, c.pc, 0);
    }
    if SIGNED {
        let dd = d as i32;
        let ss = i32::from(s as i16);
        c.idle(timing::divs(dd, s as i16));
        let q = i64::from(dd) / i64::from(ss);
        let rem = i64::from(dd) % i64::from(ss);
        if q > i64::from(i16::MAX) || q < i64::from(i16::MIN) {
            c.v = true;
            c.c = false;
            c.n = true;
            c.z = false;
        } else {
            c.d[dn] = (q as u32 & 0xFFFF) | ((rem as u32) << 16);
            c.n = q < 0;
            c.z = q == 0;
            c.v = false;
            c.c = false;
        }
    } else {
        c.idle(timing::divu(d, s));
        let q = d / u32::from(s);
        let rem = d % u32::from(s);
        if q > 0xFFFF {
            c.v = true;
            c.c = false;
            c.n = true;
            c.z = false;
        } else {
            c.d[dn] = q | (rem << 16);
            c.n = q & 0x8000 != 0;
            c.z = q == 0;
            c.v = false;
            c.c = false;
        }
    }
    c.prefetch(bus)
}
