//! Shifts and rotates: ASL/ASR, LSL/LSR, ROXL/ROXR, ROL/ROR on registers and memory words.

use super::{ea_reg, mode_of, reg9, reg_of};
use crate::bus::Bus;
use crate::cpu::ea::{mask, msb, LONG, WORD};
use crate::cpu::{Cpu, Res};

pub(crate) const AS: u8 = 0;
pub(crate) const LS: u8 = 1;
pub(crate) const ROX: u8 = 2;
pub(crate) const RO: u8 = 3;

impl Cpu {
    /// Shifts `d` (S bytes) by `cnt` (0..=63) and sets flags. `LEFT` selects the direction.
    #[inline(always)]
    fn shift<const S: u32, const K: u8, const LEFT: bool>(&mut self, d: u32, cnt: u32) -> u32 {
        let w = S * 8;
        let m = mask(S);
        let d = d & m;
        let top = msb(S);
        let r;
        match K {
            AS | LS => {
                if cnt == 0 {
                    r = d;
                    self.c = false;
                    self.v = false;
                } else if LEFT {
                    if cnt < w {
                        r = (d << cnt) & m;
                        self.c = (d >> (w - cnt)) & 1 != 0;
                    } else {
                        r = 0;
                        self.c = cnt == w && d & 1 != 0;
                    }
                    self.v = if K == AS {
                        if cnt < w {
                            let hi = (m << (w - 1 - cnt)) & m;
                            let bits = d & hi;
                            bits != 0 && bits != hi
                        } else {
                            d != 0
                        }
                    } else {
                        false
                    };
                    self.x = self.c;
                } else {
                    let neg = K == AS && d & top != 0;
                    if cnt < w {
                        r = if neg {
                            ((d | !m) as i32 >> cnt) as u32 & m
                        } else {
                            d >> cnt
                        };
                        self.c = (d >> (cnt - 1)) & 1 != 0;
                    } else {
                        r = if neg { m } else { 0 };
                        self.c = if K == AS {
                            neg
                        } else {
                            cnt == w && neg_bit(d, top)
                        };
                    }
                    self.v = false;
                    self.x = self.c;
                }
            }
            RO => {
                self.v = false;
                if cnt == 0 {
                    r = d;
                    self.c = false;
                } else {
                    let n = cnt % w;
                    r = if n == 0 {
                        d
                    } else if LEFT {
                        ((d << n) | (d >> (w - n))) & m
                    } else {
                        ((d >> n) | (d << (w - n))) & m
                    };
                    self.c = if LEFT { r & 1 != 0 } else { r & top != 0 };
                }
            }
            _ => {
                self.v = false;
                let n = cnt % (w + 1);
                if n == 0 {
                    r = d;
                } else {
                    let wide = u64::from(d) | u64::from(self.x) << w;
                    let all = (1u64 << (w + 1)) - 1;
                    let n = u64::from(n);
                    let w1 = u64::from(w + 1);
                    let rot = if LEFT {
                        ((wide << n) | (wide >> (w1 - n))) & all
                    } else {
                        ((wide >> n) | (wide << (w1 - n))) & all
                    };
                    r = rot as u32 & m;
                    self.x = (rot >> w) & 1 != 0;
                }
                self.c = self.x;
            }
        }
        self.n = r & top != 0;
        self.z = r == 0;
        r
    }
}

#[inline(always)]
fn neg_bit(d: u32, top: u32) -> bool {
    d & top != 0
}

/// Register shift: count in bits 11..9 (1..8) or in a data register (mod 64).
pub(crate) fn shift_reg<B: Bus, const S: u32, const K: u8, const LEFT: bool>(
    c: &mut Cpu,
    bus: &mut B,
    op: u16,
) -> Res<()> {
    let cnt = if op & 0x20 != 0 {
        c.d[reg9(op)] & 63
    } else {
        match reg9(op) {
            0 => 8,
            n => n as u32,
        }
    };
    let r = ea_reg(op);
    let v = c.shift::<S, K, LEFT>(c.d[r], cnt);
    c.set_d::<S>(r, v);
    c.prefetch(bus)?;
    c.idle(if S == LONG { 4 } else { 2 } + 2 * cnt);
    Ok(())
}

/// Memory shift of one word by one bit.
pub(crate) fn shift_mem<B: Bus, const K: u8, const LEFT: bool, const M: u8>(
    c: &mut Cpu,
    bus: &mut B,
    op: u16,
) -> Res<()> {
    let a = c.ea_addr::<WORD, B>(bus, mode_of::<M>(op), reg_of::<M>(op))?;
    let d = c.read::<WORD, B>(bus, a)?;
    let v = c.shift::<WORD, K, LEFT>(d, 1);
    c.prefetch(bus)?;
    c.write::<WORD, B>(bus, a, v)
}
