//! Programmer-visible registers and the status register.

use super::Cpu;

/// Architectural register set: `a[7]` is the active stack pointer (USP or SSP per `sr` bit 13);
/// `usp` and `ssp` always hold both stack pointers; `pc` is the address of the next instruction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Registers {
    pub d: [u32; 8],
    pub a: [u32; 8],
    pub usp: u32,
    pub ssp: u32,
    pub sr: u16,
    pub pc: u32,
}

/// Status-register bits implemented by the 68000.
pub(crate) const SR_MASK: u16 = 0xA71F;

/// Write-back guard returned by [`Cpu::regs_mut`]. `a[7]` wins over `usp`/`ssp` for the stack
/// pointer of the mode selected by the final `sr`.
pub struct RegsMut<'a> {
    pub(crate) regs: Registers,
    pub(crate) orig_pc: u32,
    pub(crate) cpu: &'a mut Cpu,
}

impl core::ops::Deref for RegsMut<'_> {
    type Target = Registers;
    fn deref(&self) -> &Registers {
        &self.regs
    }
}

impl core::ops::DerefMut for RegsMut<'_> {
    fn deref_mut(&mut self) -> &mut Registers {
        &mut self.regs
    }
}

impl Drop for RegsMut<'_> {
    fn drop(&mut self) {
        let r = self.regs;
        let cpu = &mut *self.cpu;
        let old_sp = cpu.a[7];
        cpu.d = r.d;
        cpu.a = r.a;
        cpu.set_sr_raw(r.sr);
        let s = r.sr & 0x2000 != 0;
        // The caller may have edited a[7] or the named stack pointer: a[7] changes take priority.
        let (usp, ssp) = if r.a[7] != old_sp {
            if s {
                (r.usp, r.a[7])
            } else {
                (r.a[7], r.ssp)
            }
        } else {
            (r.usp, r.ssp)
        };
        if s {
            cpu.a[7] = ssp;
            cpu.other_sp = usp;
        } else {
            cpu.a[7] = usp;
            cpu.other_sp = ssp;
        }
        if r.pc != self.orig_pc {
            cpu.pc = r.pc.wrapping_add(2);
            cpu.refill = true;
        }
    }
}

impl Cpu {
    #[inline(always)]
    pub(crate) fn ccr(&self) -> u16 {
        (self.x as u16) << 4
            | (self.n as u16) << 3
            | (self.z as u16) << 2
            | (self.v as u16) << 1
            | self.c as u16
    }

    #[inline(always)]
    pub(crate) fn get_sr(&self) -> u16 {
        (self.t as u16) << 15 | (self.s as u16) << 13 | (self.int_mask as u16) << 8 | self.ccr()
    }

    #[inline(always)]
    pub(crate) fn set_ccr(&mut self, v: u16) {
        self.x = v & 0x10 != 0;
        self.n = v & 0x08 != 0;
        self.z = v & 0x04 != 0;
        self.v = v & 0x02 != 0;
        self.c = v & 0x01 != 0;
    }

    /// Sets every SR bit without touching the stack pointers.
    fn set_sr_raw(&mut self, v: u16) {
        self.set_ccr(v);
        self.t = v & 0x8000 != 0;
        self.s = v & 0x2000 != 0;
        self.int_mask = ((v >> 8) & 7) as u8;
    }

    /// Sets SR, swapping stack pointers when the S bit changes.
    #[inline]
    pub(crate) fn set_sr(&mut self, v: u16) {
        let s = v & 0x2000 != 0;
        if s != self.s {
            core::mem::swap(&mut self.a[7], &mut self.other_sp);
        }
        self.set_sr_raw(v);
    }

    #[inline]
    pub(crate) fn usp(&self) -> u32 {
        if self.s {
            self.other_sp
        } else {
            self.a[7]
        }
    }

    #[inline]
    pub(crate) fn set_usp(&mut self, v: u32) {
        if self.s {
            self.other_sp = v
        } else {
            self.a[7] = v
        }
    }

    /// Test condition `cc` (0..=15) against the flags.
    #[inline(always)]
    pub(crate) fn cond(&self, cc: u16) -> bool {
        match cc & 15 {
            0 => true,
            1 => false,
            2 => !self.c && !self.z,
            3 => self.c || self.z,
            4 => !self.c,
            5 => self.c,
            6 => !self.z,
            7 => self.z,
            8 => !self.v,
            9 => self.v,
            10 => !self.n,
            11 => self.n,
            12 => self.n == self.v,
            13 => self.n != self.v,
            14 => !self.z && self.n == self.v,
            _ => self.z || self.n != self.v,
        }
    }
}
