//! Instruction handlers. Each is `fn(&mut Cpu, &mut B, opcode) -> Res<()>`, specialised by
//! const generics (operand size, operation) and reached through the decode table.

pub(crate) mod alu;
pub(crate) mod bcd;
pub(crate) mod bits;
pub(crate) mod flow;
pub(crate) mod moves;
pub(crate) mod muldiv;
pub(crate) mod shift;

use super::ea::{mask, msb};
use super::Cpu;

/// Operation selectors for the shared ALU handlers.
pub(crate) const ADD: u8 = 0;
pub(crate) const SUB: u8 = 1;
pub(crate) const AND: u8 = 2;
pub(crate) const OR: u8 = 3;
pub(crate) const EOR: u8 = 4;
pub(crate) const CMP: u8 = 5;

#[inline(always)]
pub(crate) fn ea_reg(op: u16) -> usize {
    (op & 7) as usize
}

#[inline(always)]
pub(crate) fn reg9(op: u16) -> usize {
    ((op >> 9) & 7) as usize
}

/// A source operand that needs no memory read: Dn, An or #imm.
#[inline(always)]
pub(crate) fn is_reg_or_imm(m: u16, r: usize) -> bool {
    m == 0 || m == 1 || (m == 7 && r == 4)
}

/// Effective-address class of a mode/register pair, the const generic `M` that specialises
/// handlers by addressing mode: 0..=6 are modes 0..=6 (register taken from the opcode at run
/// time), 7..=11 are mode 7 with register 0..=4 ((xxx).W, (xxx).L, (d16,PC), (d8,PC,Xn), #imm).
pub(crate) const fn ea_class(mode: u16, reg: u16) -> u8 {
    if mode < 7 {
        mode as u8
    } else {
        7 + (reg & 7) as u8
    }
}

/// The mode of class `M` (a constant once the handler is specialised).
#[inline(always)]
pub(crate) fn mode_of<const M: u8>(_op: u16) -> u16 {
    if M < 7 {
        M as u16
    } else {
        7
    }
}

/// The register of class `M`: from bits 2..0 of `op` for modes 0..=6, constant for mode 7.
#[inline(always)]
pub(crate) fn reg_of<const M: u8>(op: u16) -> usize {
    if M < 7 {
        ea_reg(op)
    } else {
        (M - 7) as usize
    }
}

impl Cpu {
    #[inline(always)]
    pub(crate) fn set_nz<const S: u32>(&mut self, r: u32) {
        self.n = r & msb(S) != 0;
        self.z = r & mask(S) == 0;
    }

    /// N and Z from `r`, V and C cleared (logical operations and moves).
    #[inline(always)]
    pub(crate) fn set_logic<const S: u32>(&mut self, r: u32) {
        self.set_nz::<S>(r);
        self.v = false;
        self.c = false;
    }

    /// `d + s + x` with all flags but X (the caller decides about X and Z accumulation).
    #[inline(always)]
    pub(crate) fn add_flags<const S: u32>(&mut self, s: u32, d: u32, x: u32) -> u32 {
        let m = mask(S);
        let (s, d) = (s & m, d & m);
        let r = d.wrapping_add(s).wrapping_add(x) & m;
        let top = msb(S);
        self.n = r & top != 0;
        self.v = (s ^ r) & (d ^ r) & top != 0;
        self.c = ((s & d) | (!r & (s | d))) & top != 0;
        self.z = r == 0;
        r
    }

    /// `d - s - x` with all flags but X.
    #[inline(always)]
    pub(crate) fn sub_flags<const S: u32>(&mut self, s: u32, d: u32, x: u32) -> u32 {
        let m = mask(S);
        let (s, d) = (s & m, d & m);
        let r = d.wrapping_sub(s).wrapping_sub(x) & m;
        let top = msb(S);
        self.n = r & top != 0;
        self.v = (s ^ d) & (r ^ d) & top != 0;
        self.c = ((s & !d) | (r & !d) | (s & r)) & top != 0;
        self.z = r == 0;
        r
    }

    /// Applies ALU operation `K` to destination `d` and source `s`, setting flags.
    #[inline(always)]
    pub(crate) fn alu<const S: u32, const K: u8>(&mut self, s: u32, d: u32) -> u32 {
        match K {
            ADD => {
                let r = self.add_flags::<S>(s, d, 0);
                self.x = self.c;
                r
            }
            SUB => {
                let r = self.sub_flags::<S>(s, d, 0);
                self.x = self.c;
                r
            }
            CMP => self.sub_flags::<S>(s, d, 0),
            AND => {
                let r = s & d & mask(S);
                self.set_logic::<S>(r);
                r
            }
            OR => {
                let r = (s | d) & mask(S);
                self.set_logic::<S>(r);
                r
            }
            _ => {
                let r = (s ^ d) & mask(S);
                self.set_logic::<S>(r);
                r
            }
        }
    }
}
