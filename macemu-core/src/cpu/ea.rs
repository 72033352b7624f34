//! Sized bus access, the prefetch queue and effective-address calculation.
//!
//! Every bus cycle costs 4 clocks here, so an instruction's timing is its bus cycles plus the
//! internal clocks its handler adds with [`Cpu::idle`].

use super::{Cpu, Fault, FaultKind, Faulted, Res};
use crate::bus::{Bus, FunctionCode};

/// Operand sizes in bytes, used as const generic arguments.
pub(crate) const BYTE: u32 = 1;
pub(crate) const WORD: u32 = 2;
pub(crate) const LONG: u32 = 4;

/// The 68000 drives 24 address lines.
const ADDR_MASK: u32 = 0x00FF_FFFF;

#[inline(always)]
pub(crate) const fn mask(s: u32) -> u32 {
    match s {
        1 => 0xFF,
        2 => 0xFFFF,
        _ => 0xFFFF_FFFF,
    }
}

#[inline(always)]
pub(crate) const fn msb(s: u32) -> u32 {
    match s {
        1 => 0x80,
        2 => 0x8000,
        _ => 0x8000_0000,
    }
}

/// Sign-extends the low `s` bytes of `v`.
#[inline(always)]
pub(crate) const fn sext(s: u32, v: u32) -> u32 {
    match s {
        1 => v as u8 as i8 as i32 as u32,
        2 => v as u16 as i16 as i32 as u32,
        _ => v,
    }
}

impl Cpu {
    #[inline(always)]
    pub(crate) fn data_fc(&self) -> FunctionCode {
        if self.s {
            FunctionCode::SupervisorData
        } else {
            FunctionCode::UserData
        }
    }

    #[inline(always)]
    pub(crate) fn prog_fc(&self) -> FunctionCode {
        if self.s {
            FunctionCode::SupervisorProgram
        } else {
            FunctionCode::UserProgram
        }
    }

    /// Internal (non-bus) clocks.
    #[inline(always)]
    pub(crate) fn idle(&mut self, n: u32) {
        self.clk += n;
    }

    /// Records an aborted access for the group-0 exception.
    #[cold]
    #[inline(never)]
    pub(crate) fn fault(
        &mut self,
        kind: FaultKind,
        addr: u32,
        write: bool,
        fc: FunctionCode,
    ) -> Faulted {
        self.fault = Fault {
            kind,
            addr,
            write,
            fc,
        };
        Faulted
    }

    #[inline(always)]
    pub(crate) fn read_byte_fc<B: Bus>(
        &mut self,
        bus: &mut B,
        addr: u32,
        fc: FunctionCode,
    ) -> Res<u8> {
        bus.cycle_start(self.clk);
        self.clk += 4;
        bus.read_byte(fc, addr & ADDR_MASK)
            .map_err(|_| self.fault(FaultKind::Bus, addr, false, fc))
    }

    #[inline(always)]
    pub(crate) fn read_word_fc<B: Bus>(
        &mut self,
        bus: &mut B,
        addr: u32,
        fc: FunctionCode,
    ) -> Res<u16> {
        bus.cycle_start(self.clk);
        self.clk += 4;
        if addr & 1 != 0 {
            return Err(self.fault(FaultKind::Address, addr, false, fc));
        }
        bus.read_word(fc, addr & ADDR_MASK)
            .map_err(|_| self.fault(FaultKind::Bus, addr, false, fc))
    }

    #[inline(always)]
    pub(crate) fn read_long_fc<B: Bus>(
        &mut self,
        bus: &mut B,
        addr: u32,
        fc: FunctionCode,
    ) -> Res<u32> {
        let hi = self.read_word_fc(bus, addr, fc)?;
        let lo = self.read_word_fc(bus, addr.wrapping_add(2), fc)?;
        Ok(u32::from(hi) << 16 | u32::from(lo))
    }

    #[inline(always)]
    pub(crate) fn write_byte_fc<B: Bus>(
        &mut self,
        bus: &mut B,
        addr: u32,
        v: u8,
        fc: FunctionCode,
    ) -> Res<()> {
        bus.cycle_start(self.clk);
        self.clk += 4;
        bus.write_byte(fc, addr & ADDR_MASK, v)
            .map_err(|_| self.fault(FaultKind::Bus, addr, true, fc))
    }

    #[inline(always)]
    pub(crate) fn write_word_fc<B: Bus>(
        &mut self,
        bus: &mut B,
        addr: u32,
        v: u16,
        fc: FunctionCode,
    ) -> Res<()> {
        bus.cycle_start(self.clk);
        self.clk += 4;
        if addr & 1 != 0 {
            return Err(self.fault(FaultKind::Address, addr, true, fc));
        }
        bus.write_word(fc, addr & ADDR_MASK, v)
            .map_err(|_| self.fault(FaultKind::Bus, addr, true, fc))
    }

    /// Sized data-space read.
    #[inline(always)]
    pub(crate) fn read<const S: u32, B: Bus>(&mut self, bus: &mut B, addr: u32) -> Res<u32> {
        let fc = self.data_fc();
        self.read_fc::<S, B>(bus, addr, fc)
    }

    #[inline(always)]
    pub(crate) fn read_fc<const S: u32, B: Bus>(
        &mut self,
        bus: &mut B,
        addr: u32,
        fc: FunctionCode,
    ) -> Res<u32> {
        match S {
            1 => self.read_byte_fc(bus, addr, fc).map(u32::from),
            2 => self.read_word_fc(bus, addr, fc).map(u32::from),
            _ => self.read_long_fc(bus, addr, fc),
        }
    }

    /// Sized data-space write (long: high word first).
    #[inline(always)]
    pub(crate) fn write<const S: u32, B: Bus>(
        &mut self,
        bus: &mut B,
        addr: u32,
        v: u32,
    ) -> Res<()> {
        let fc = self.data_fc();
        match S {
            1 => self.write_byte_fc(bus, addr, v as u8, fc),
            2 => self.write_word_fc(bus, addr, v as u16, fc),
            _ => {
                self.write_word_fc(bus, addr, (v >> 16) as u16, fc)?;
                self.write_word_fc(bus, addr.wrapping_add(2), v as u16, fc)
            }
        }
    }

    /// Write-back of a read-modify-write operand: longs go low word first, as the 68000 does.
    #[inline(always)]
    pub(crate) fn write_rmw<const S: u32, B: Bus>(
        &mut self,
        bus: &mut B,
        addr: u32,
        v: u32,
    ) -> Res<()> {
        if S == 4 {
            self.write_long_rev(bus, addr, v)
        } else {
            self.write::<S, B>(bus, addr, v)
        }
    }

    /// Long write, low word first (as `-(An)` destinations and pushes do).
    #[inline(always)]
    pub(crate) fn write_long_rev<B: Bus>(&mut self, bus: &mut B, addr: u32, v: u32) -> Res<()> {
        let fc = self.data_fc();
        self.write_word_fc(bus, addr.wrapping_add(2), v as u16, fc)?;
        self.write_word_fc(bus, addr, (v >> 16) as u16, fc)
    }

    /// Consumes the extension word in IRC and refills IRC from the next address.
    #[inline(always)]
    pub(crate) fn fetch_ext<B: Bus>(&mut self, bus: &mut B) -> Res<u16> {
        let w = self.irc;
        let pc = self.pc.wrapping_add(2);
        let fc = self.prog_fc();
        self.irc = self.read_word_fc(bus, pc, fc)?;
        self.pc = pc;
        Ok(w)
    }

    #[inline(always)]
    pub(crate) fn fetch_ext_long<B: Bus>(&mut self, bus: &mut B) -> Res<u32> {
        let hi = self.fetch_ext(bus)?;
        let lo = self.fetch_ext(bus)?;
        Ok(u32::from(hi) << 16 | u32::from(lo))
    }

    /// The prefetch that ends most instructions: IR <- IRC, IRC <- next word.
    #[inline(always)]
    pub(crate) fn prefetch<B: Bus>(&mut self, bus: &mut B) -> Res<()> {
        self.ir = self.irc;
        let pc = self.pc.wrapping_add(2);
        let fc = self.prog_fc();
        self.irc = self.read_word_fc(bus, pc, fc)?;
        self.pc = pc;
        Ok(())
    }

    /// Loads the prefetch queue from `target` (a taken branch).
    #[inline(always)]
    pub(crate) fn jump<B: Bus>(&mut self, bus: &mut B, target: u32) -> Res<()> {
        let fc = self.prog_fc();
        let w = self.read_word_fc(bus, target, fc)?;
        self.ir = w;
        self.pc = target;
        self.irc = self.read_word_fc(bus, target.wrapping_add(2), fc)?;
        self.pc = target.wrapping_add(2);
        Ok(())
    }

    #[inline(always)]
    pub(crate) fn set_d<const S: u32>(&mut self, r: usize, v: u32) {
        let m = mask(S);
        self.d[r] = (self.d[r] & !m) | (v & m);
    }

    /// Adds the index register and 8-bit displacement of a brief extension word to `base`.
    #[inline(always)]
    pub(crate) fn index(&self, base: u32, ext: u16) -> u32 {
        let r = ((ext >> 12) & 7) as usize;
        let x = if ext & 0x8000 != 0 {
            self.a[r]
        } else {
            self.d[r]
        };
        let x = if ext & 0x0800 != 0 {
            x
        } else {
            x as u16 as i16 as i32 as u32
        };
        base.wrapping_add(x)
            .wrapping_add(ext as u8 as i8 as i32 as u32)
    }

    /// Address of a memory operand (modes 2..=7 except immediate), with (An)+/-(An) side effects.
    #[inline(always)]
    pub(crate) fn ea_addr<const S: u32, B: Bus>(
        &mut self,
        bus: &mut B,
        m: u16,
        r: usize,
    ) -> Res<u32> {
        let step = if S == 1 && r == 7 { 2 } else { S };
        // Saved PC of a fault on this operand: -(An) word/byte operands +2; displacement and
        // index modes exclude their extension word.
        self.ae_adj = match m {
            4 if S != 4 => 2,
            5 | 6 => 2u32.wrapping_neg(),
            7 if r >= 2 => 2u32.wrapping_neg(),
            _ => 0,
        };
        match m {
            2 => Ok(self.a[r]),
            3 => {
                let a = self.a[r];
                // A long operand at an odd address faults before the increment.
                if S != 4 || a & 1 == 0 {
                    self.a[r] = a.wrapping_add(step);
                }
                Ok(a)
            }
            4 => {
                self.idle(2);
                let a = self.a[r].wrapping_sub(step);
                self.a[r] = a;
                Ok(a)
            }
            5 => {
                let d = self.fetch_ext(bus)? as i16 as i32 as u32;
                Ok(self.a[r].wrapping_add(d))
            }
            6 => {
                self.idle(2);
                let ext = self.fetch_ext(bus)?;
                Ok(self.index(self.a[r], ext))
            }
            _ => match r {
                0 => Ok(self.fetch_ext(bus)? as i16 as i32 as u32),
                1 => self.fetch_ext_long(bus),
                2 => {
                    let base = self.pc;
                    let d = self.fetch_ext(bus)? as i16 as i32 as u32;
                    Ok(base.wrapping_add(d))
                }
                _ => {
                    self.idle(2);
                    let base = self.pc;
                    let ext = self.fetch_ext(bus)?;
                    Ok(self.index(base, ext))
                }
            },
        }
    }

    /// Reads a source operand of any addressing mode.
    #[inline(always)]
    pub(crate) fn read_ea<const S: u32, B: Bus>(
        &mut self,
        bus: &mut B,
        m: u16,
        r: usize,
    ) -> Res<u32> {
        match m {
            0 => Ok(self.d[r] & mask(S)),
            1 => Ok(self.a[r] & mask(S)),
            7 if r == 4 => {
                if S == 4 {
                    self.fetch_ext_long(bus)
                } else {
                    Ok(u32::from(self.fetch_ext(bus)?) & mask(S))
                }
            }
            7 if r == 2 || r == 3 => {
                let a = self.ea_addr::<S, B>(bus, m, r)?;
                let fc = self.prog_fc();
                self.read_fc::<S, B>(bus, a, fc)
            }
            _ => {
                let a = self.ea_addr::<S, B>(bus, m, r)?;
                self.read::<S, B>(bus, a)
            }
        }
    }

    /// Pushes a long onto the active stack.
    #[inline(always)]
    pub(crate) fn push_long<B: Bus>(&mut self, bus: &mut B, v: u32) -> Res<()> {
        let sp = self.a[7].wrapping_sub(4);
        self.a[7] = sp;
        self.write::<4, B>(bus, sp, v)
    }

    #[inline(always)]
    pub(crate) fn pop_long<B: Bus>(&mut self, bus: &mut B) -> Res<u32> {
        let sp = self.a[7];
        let v = self.read::<4, B>(bus, sp)?;
        self.a[7] = sp.wrapping_add(4);
        Ok(v)
    }
}
