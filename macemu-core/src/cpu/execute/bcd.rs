//! Packed-decimal arithmetic: ABCD, SBCD, NBCD (including the 68000's N and V results).

use super::{ea_reg, mode_of, reg9, reg_of};
use crate::bus::Bus;
use crate::cpu::{Cpu, Res};

impl Cpu {
    /// `d + s + X` in BCD; sets X, N, V, C and accumulates Z (N and V as the 68000 leaves them).
    fn bcd_add(&mut self, s: u32, d: u32) -> u32 {
        let x = u32::from(self.x);
        let bin = s + d + x;
        let mut res = bin;
        if (s & 0xF) + (d & 0xF) + x > 9 {
            res += 6;
        }
        let carry = bin > 0x99;
        if carry {
            res += 0x60;
        }
        self.v = !bin & res & 0x80 != 0;
        self.finish_bcd(res, carry)
    }

    /// `d - s - X` in BCD; sets X, N, V, C and accumulates Z.
    fn bcd_sub(&mut self, s: u32, d: u32) -> u32 {
        let x = s_i(self.x);
        let (s, d) = (s as i32, d as i32);
        let bin = d - s - x;
        let mut res = bin;
        if (d & 0xF) - (s & 0xF) - x < 0 {
            res -= 6;
        }
        let carry = bin < 0 || res < 0;
        if bin < 0 {
            res -= 0x60;
        }
        self.v = bin & !res & 0x80 != 0;
        self.finish_bcd(res as u32, carry)
    }

    fn finish_bcd(&mut self, res: u32, carry: bool) -> u32 {
        let res = res & 0xFF;
        self.c = carry;
        self.x = carry;
        self.n = res & 0x80 != 0;
        if res != 0 {
            self.z = false;
        }
        res
    }
}

fn s_i(b: bool) -> i32 {
    i32::from(b)
}

/// ABCD (K = false) and SBCD (K = true), Dy,Dx or -(Ay),-(Ax).
pub(crate) fn abcd_sbcd<B: Bus, const SUB: bool>(c: &mut Cpu, bus: &mut B, op: u16) -> Res<()> {
    let (rx, ry) = (reg9(op), ea_reg(op));
    if op & 8 == 0 {
        let (s, d) = (c.d[ry] & 0xFF, c.d[rx] & 0xFF);
        let r = if SUB {
            c.bcd_sub(s, d)
        } else {
            c.bcd_add(s, d)
        };
        c.set_d::<1>(rx, r);
        c.prefetch(bus)?;
        c.idle(2);
        return Ok(());
    }
    let sa = c.ea_addr::<1, B>(bus, 4, ry)?;
    let s = c.read::<1, B>(bus, sa)?;
    let da = c.ea_addr::<1, B>(bus, 4, rx)?;
    c.clk -= 2;
    let d = c.read::<1, B>(bus, da)?;
    let r = if SUB {
        c.bcd_sub(s, d)
    } else {
        c.bcd_add(s, d)
    };
    c.prefetch(bus)?;
    c.write::<1, B>(bus, da, r)
}

pub(crate) fn nbcd<B: Bus, const M: u8>(c: &mut Cpu, bus: &mut B, op: u16) -> Res<()> {
    let (m, r) = (mode_of::<M>(op), reg_of::<M>(op));
    if m == 0 {
        let v = c.bcd_sub(c.d[r] & 0xFF, 0);
        c.set_d::<1>(r, v);
        c.prefetch(bus)?;
        c.idle(2);
        return Ok(());
    }
    let a = c.ea_addr::<1, B>(bus, m, r)?;
    let d = c.read::<1, B>(bus, a)?;
    let v = c.bcd_sub(d, 0);
    c.prefetch(bus)?;
    c.write::<1, B>(bus, a, v)
}
