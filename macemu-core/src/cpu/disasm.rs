//! The disassembler: a pure decoder from a word source to an [`Instruction`].
//!
//! The instruction is classified by the same `decode` that builds the dispatch table, so what
//! is shown as an instruction is what the core executes, and everything it rejects shows as
//! `dc.w`. The operands come from the opcode's bit fields and the extension words that follow.

use super::decode::{decode, Op};
use super::instruction::{Cond, IndexReg, Instruction, Mnemonic, Operand, Size};

/// Where the decoder reads instruction words: `None` for an address with nothing readable.
pub trait WordSource {
    fn word(&mut self, addr: u32) -> Option<u16>;
}

impl<F: FnMut(u32) -> Option<u16>> WordSource for F {
    fn word(&mut self, addr: u32) -> Option<u16> {
        self(addr)
    }
}

/// Big-endian bytes loaded at `base`, as a word source (for images and tests).
#[derive(Clone, Copy, Debug)]
pub struct Bytes<'a> {
    pub base: u32,
    pub data: &'a [u8],
}

impl WordSource for Bytes<'_> {
    fn word(&mut self, addr: u32) -> Option<u16> {
        let i = addr.wrapping_sub(self.base) as usize;
        let b = self.data.get(i..i.checked_add(2)?)?;
        Some(u16::from_be_bytes([b[0], b[1]]))
    }
}

/// Decodes the 68000 instruction at `addr`. `None` when a word it needs cannot be read.
pub fn disassemble<S: WordSource + ?Sized>(src: &mut S, addr: u32) -> Option<Instruction> {
    let op = src.word(addr)?;
    let mut r = Reader {
        src,
        ins: Instruction {
            addr,
            mnemonic: Mnemonic::Dc,
            size: Some(Size::Word),
            operands: [None, None],
            words: [op, 0, 0, 0, 0],
            len: 1,
        },
    };
    r.decode(op)?;
    Some(r.ins)
}

struct Reader<'a, S: ?Sized> {
    src: &'a mut S,
    ins: Instruction,
}

const B: Option<Size> = Some(Size::Byte);
const W: Option<Size> = Some(Size::Word);
const L: Option<Size> = Some(Size::Long);

/// Bits 7..6 as a size (00 byte, 01 word, 10 long).
fn size67(op: u16) -> Option<Size> {
    match (op >> 6) & 3 {
        0 => B,
        1 => W,
        _ => L,
    }
}

fn reg9(op: u16) -> u8 {
    ((op >> 9) & 7) as u8
}

fn reg0(op: u16) -> u8 {
    (op & 7) as u8
}

/// The quick value of ADDQ/SUBQ and the shift count: 1..=8, 0 meaning 8.
fn quick(op: u16) -> Operand {
    match reg9(op) {
        0 => Operand::Quick(8),
        n => Operand::Quick(n.into()),
    }
}

impl<S: WordSource + ?Sized> Reader<'_, S> {
    /// Address of the next word to read (the PC base of a PC-relative extension word).
    fn pos(&self) -> u32 {
        self.ins.addr.wrapping_add(2 * u32::from(self.ins.len))
    }

    fn next(&mut self) -> Option<u16> {
        let w = self.src.word(self.pos())?;
        self.ins.words[usize::from(self.ins.len)] = w;
        self.ins.len += 1;
        Some(w)
    }

    fn long(&mut self) -> Option<u32> {
        let hi = self.next()?;
        let lo = self.next()?;
        Some(u32::from(hi) << 16 | u32::from(lo))
    }

    /// `#imm` of `size` (a byte immediate occupies the low half of a word).
    fn imm(&mut self, size: Option<Size>) -> Option<Operand> {
        Some(Operand::Imm(match size {
            Some(Size::Long) => self.long()?,
            Some(Size::Byte) => u32::from(self.next()? & 0xFF),
            _ => u32::from(self.next()?),
        }))
    }

    fn index(w: u16) -> IndexReg {
        IndexReg {
            reg: (w >> 12) as u8,
            long: w & 0x0800 != 0,
        }
    }

    /// The effective address of mode `m`, register `r`, reading its extension words.
    fn ea(&mut self, m: u16, r: u16, size: Option<Size>) -> Option<Operand> {
        let n = r as u8;
        Some(match (m, r) {
            (0, _) => Operand::Data(n),
            (1, _) => Operand::Addr(n),
            (2, _) => Operand::Ind(n),
            (3, _) => Operand::PostInc(n),
            (4, _) => Operand::PreDec(n),
            (5, _) => Operand::Disp(self.next()? as i16, n),
            (6, _) => {
                let w = self.next()?;
                Operand::Index(w as i8, n, Self::index(w))
            }
            (_, 0) => Operand::AbsW(self.next()? as i16 as u32),
            (_, 1) => Operand::AbsL(self.long()?),
            (_, 2) => {
                let base = self.pos();
                Operand::PcDisp(base.wrapping_add(self.next()? as i16 as u32))
            }
            (_, 3) => {
                let base = self.pos();
                let w = self.next()?;
                Operand::PcIndex(base.wrapping_add(w as i8 as u32), Self::index(w))
            }
            _ => return self.imm(size),
        })
    }

    /// The effective address in bits 5..0.
    fn ea0(&mut self, op: u16, size: Option<Size>) -> Option<Operand> {
        self.ea((op >> 3) & 7, op & 7, size)
    }

    fn set(
        &mut self,
        mnemonic: Mnemonic,
        size: Option<Size>,
        a: Option<Operand>,
        b: Option<Operand>,
    ) {
        self.ins.mnemonic = mnemonic;
        self.ins.size = size;
        self.ins.operands = [a, b];
    }

    /// `<ea>,Dn` (`to_reg`) or `Dn,<ea>`.
    fn ea_dn(&mut self, mn: Mnemonic, size: Option<Size>, op: u16, to_reg: bool) -> Option<()> {
        let ea = self.ea0(op, size)?;
        let dn = Operand::Data(reg9(op));
        if to_reg {
            self.set(mn, size, Some(ea), Some(dn));
        } else {
            self.set(mn, size, Some(dn), Some(ea));
        }
        Some(())
    }

    /// `<ea>,An`.
    fn ea_an(&mut self, mn: Mnemonic, size: Option<Size>, op: u16) -> Option<()> {
        let ea = self.ea0(op, size)?;
        self.set(mn, size, Some(ea), Some(Operand::Addr(reg9(op))));
        Some(())
    }

    /// `#imm,<ea>`: the immediate's words come first.
    fn imm_ea(&mut self, mn: Mnemonic, size: Option<Size>, op: u16) -> Option<()> {
        let imm = self.imm(size)?;
        let ea = self.ea0(op, size)?;
        self.set(mn, size, Some(imm), Some(ea));
        Some(())
    }

    fn one(&mut self, mn: Mnemonic, size: Option<Size>, op: u16) -> Option<()> {
        let ea = self.ea0(op, size)?;
        self.set(mn, size, Some(ea), None);
        Some(())
    }

    /// `Dy,Dx` or `-(Ay),-(Ax)` (ADDX, SUBX, ABCD, SBCD).
    fn extended(&mut self, mn: Mnemonic, size: Option<Size>, op: u16) -> Option<()> {
        let (y, x) = if op & 8 == 0 {
            (Operand::Data(reg0(op)), Operand::Data(reg9(op)))
        } else {
            (Operand::PreDec(reg0(op)), Operand::PreDec(reg9(op)))
        };
        self.set(mn, size, Some(y), Some(x));
        Some(())
    }

    fn shift_reg(&mut self, mn: Mnemonic, size: Option<Size>, op: u16) -> Option<()> {
        let count = if op & 0x20 == 0 {
            quick(op)
        } else {
            Operand::Data(reg9(op))
        };
        self.set(mn, size, Some(count), Some(Operand::Data(reg0(op))));
        Some(())
    }

    /// `btst Dn,<ea>` or `btst #n,<ea>` (the bit number in the low byte of the extension).
    fn bit(&mut self, mn: Mnemonic, op: u16, imm: bool) -> Option<()> {
        let bit = if imm {
            Operand::Imm(u32::from(self.next()? & 0xFF))
        } else {
            Operand::Data(reg9(op))
        };
        let ea = self.ea0(op, B)?;
        self.set(mn, None, Some(bit), Some(ea));
        Some(())
    }

    fn movem(&mut self, size: Option<Size>, op: u16, to_mem: bool) -> Option<()> {
        let mut mask = self.next()?;
        // With -(An) the mask runs from a7 (bit 0) to d0 (bit 15).
        if (op >> 3) & 7 == 4 {
            mask = mask.reverse_bits();
        }
        let ea = self.ea0(op, size)?;
        let list = Operand::RegList(mask);
        if to_mem {
            self.set(Mnemonic::Movem, size, Some(list), Some(ea));
        } else {
            self.set(Mnemonic::Movem, size, Some(ea), Some(list));
        }
        Some(())
    }

    fn branch(&mut self, mn: Mnemonic, op: u16) -> Option<()> {
        let base = self.pos();
        let (size, disp) = match op as u8 {
            0 => (W, self.next()? as i16 as u32),
            d => (B, d as i8 as u32),
        };
        self.set(
            mn,
            size,
            Some(Operand::Target(base.wrapping_add(disp))),
            None,
        );
        Some(())
    }

    fn decode(&mut self, op: u16) -> Option<()> {
        use Mnemonic as M;
        let cc = Cond(((op >> 8) & 15) as u8);
        match decode(op) {
            Op::Illegal if op == 0x4AFC => self.set(M::Illegal, None, None, None),
            Op::Illegal | Op::LineA | Op::LineF => {}
            Op::AddB | Op::AddW | Op::AddL => self.ea_dn(M::Add, size67(op), op, true)?,
            Op::SubB | Op::SubW | Op::SubL => self.ea_dn(M::Sub, size67(op), op, true)?,
            Op::AndB | Op::AndW | Op::AndL => self.ea_dn(M::And, size67(op), op, true)?,
            Op::OrB | Op::OrW | Op::OrL => self.ea_dn(M::Or, size67(op), op, true)?,
            Op::CmpB | Op::CmpW | Op::CmpL => self.ea_dn(M::Cmp, size67(op), op, true)?,
            Op::AddMB | Op::AddMW | Op::AddML => self.ea_dn(M::Add, size67(op), op, false)?,
            Op::SubMB | Op::SubMW | Op::SubML => self.ea_dn(M::Sub, size67(op), op, false)?,
            Op::AndMB | Op::AndMW | Op::AndML => self.ea_dn(M::And, size67(op), op, false)?,
            Op::OrMB | Op::OrMW | Op::OrML => self.ea_dn(M::Or, size67(op), op, false)?,
            Op::EorMB | Op::EorMW | Op::EorML | Op::EorRB | Op::EorRW | Op::EorRL => {
                self.ea_dn(M::Eor, size67(op), op, false)?
            }
            Op::AddaW => self.ea_an(M::Adda, W, op)?,
            Op::AddaL => self.ea_an(M::Adda, L, op)?,
            Op::SubaW => self.ea_an(M::Suba, W, op)?,
            Op::SubaL => self.ea_an(M::Suba, L, op)?,
            Op::CmpaW => self.ea_an(M::Cmpa, W, op)?,
            Op::CmpaL => self.ea_an(M::Cmpa, L, op)?,
            Op::AddiB | Op::AddiW | Op::AddiL => self.imm_ea(M::Addi, size67(op), op)?,
            Op::SubiB | Op::SubiW | Op::SubiL => self.imm_ea(M::Subi, size67(op), op)?,
            Op::AndiB | Op::AndiW | Op::AndiL => self.imm_ea(M::Andi, size67(op), op)?,
            Op::OriB | Op::OriW | Op::OriL => self.imm_ea(M::Ori, size67(op), op)?,
            Op::EoriB | Op::EoriW | Op::EoriL => self.imm_ea(M::Eori, size67(op), op)?,
            Op::CmpiB | Op::CmpiW | Op::CmpiL => self.imm_ea(M::Cmpi, size67(op), op)?,
            Op::AddqB | Op::AddqW | Op::AddqL | Op::AddqA => {
                let ea = self.ea0(op, size67(op))?;
                self.set(M::Addq, size67(op), Some(quick(op)), Some(ea));
            }
            Op::SubqB | Op::SubqW | Op::SubqL | Op::SubqA => {
                let ea = self.ea0(op, size67(op))?;
                self.set(M::Subq, size67(op), Some(quick(op)), Some(ea));
            }
            Op::AddxB | Op::AddxW | Op::AddxL => self.extended(M::Addx, size67(op), op)?,
            Op::SubxB | Op::SubxW | Op::SubxL => self.extended(M::Subx, size67(op), op)?,
            Op::CmpmB | Op::CmpmW | Op::CmpmL => self.set(
                M::Cmpm,
                size67(op),
                Some(Operand::PostInc(reg0(op))),
                Some(Operand::PostInc(reg9(op))),
            ),
            Op::NegB | Op::NegW | Op::NegL => self.one(M::Neg, size67(op), op)?,
            Op::NegxB | Op::NegxW | Op::NegxL => self.one(M::Negx, size67(op), op)?,
            Op::NotB | Op::NotW | Op::NotL => self.one(M::Not, size67(op), op)?,
            Op::ClrB | Op::ClrW | Op::ClrL => self.one(M::Clr, size67(op), op)?,
            Op::TstB | Op::TstW | Op::TstL => self.one(M::Tst, size67(op), op)?,
            Op::ExtW => self.set(M::Ext, W, Some(Operand::Data(reg0(op))), None),
            Op::ExtL => self.set(M::Ext, L, Some(Operand::Data(reg0(op))), None),
            Op::Swap => self.set(M::Swap, None, Some(Operand::Data(reg0(op))), None),
            Op::Exg => {
                let (x, y) = match op & 0xF8 {
                    0x40 => (Operand::Data(reg9(op)), Operand::Data(reg0(op))),
                    0x48 => (Operand::Addr(reg9(op)), Operand::Addr(reg0(op))),
                    _ => (Operand::Data(reg9(op)), Operand::Addr(reg0(op))),
                };
                self.set(M::Exg, None, Some(x), Some(y));
            }
            Op::Moveq => self.set(
                M::Moveq,
                None,
                Some(Operand::Quick((op as u8 as i8).into())),
                Some(Operand::Data(reg9(op))),
            ),
            Op::Scc => self.one(M::S(cc), None, op)?,
            Op::Tas => self.one(M::Tas, None, op)?,
            Op::Nbcd => self.one(M::Nbcd, None, op)?,
            Op::Chk => self.ea_dn(M::Chk, W, op, true)?,
            Op::Abcd => self.extended(M::Abcd, None, op)?,
            Op::Sbcd => self.extended(M::Sbcd, None, op)?,
            Op::Btst => self.bit(M::Btst, op, false)?,
            Op::Bchg => self.bit(M::Bchg, op, false)?,
            Op::Bclr => self.bit(M::Bclr, op, false)?,
            Op::Bset => self.bit(M::Bset, op, false)?,
            Op::BtstI => self.bit(M::Btst, op, true)?,
            Op::BchgI => self.bit(M::Bchg, op, true)?,
            Op::BclrI => self.bit(M::Bclr, op, true)?,
            Op::BsetI => self.bit(M::Bset, op, true)?,
            Op::Mulu => self.ea_dn(M::Mulu, W, op, true)?,
            Op::Muls => self.ea_dn(M::Muls, W, op, true)?,
            Op::Divu => self.ea_dn(M::Divu, W, op, true)?,
            Op::Divs => self.ea_dn(M::Divs, W, op, true)?,
            Op::AslB | Op::AslW | Op::AslL => self.shift_reg(M::Asl, size67(op), op)?,
            Op::AsrB | Op::AsrW | Op::AsrL => self.shift_reg(M::Asr, size67(op), op)?,
            Op::LslB | Op::LslW | Op::LslL => self.shift_reg(M::Lsl, size67(op), op)?,
            Op::LsrB | Op::LsrW | Op::LsrL => self.shift_reg(M::Lsr, size67(op), op)?,
            Op::RoxlB | Op::RoxlW | Op::RoxlL => self.shift_reg(M::Roxl, size67(op), op)?,
            Op::RoxrB | Op::RoxrW | Op::RoxrL => self.shift_reg(M::Roxr, size67(op), op)?,
            Op::RolB | Op::RolW | Op::RolL => self.shift_reg(M::Rol, size67(op), op)?,
            Op::RorB | Op::RorW | Op::RorL => self.shift_reg(M::Ror, size67(op), op)?,
            Op::AslM => self.one(M::Asl, W, op)?,
            Op::AsrM => self.one(M::Asr, W, op)?,
            Op::LslM => self.one(M::Lsl, W, op)?,
            Op::LsrM => self.one(M::Lsr, W, op)?,
            Op::RoxlM => self.one(M::Roxl, W, op)?,
            Op::RoxrM => self.one(M::Roxr, W, op)?,
            Op::RolM => self.one(M::Rol, W, op)?,
            Op::RorM => self.one(M::Ror, W, op)?,
            Op::MoveB | Op::MoveW | Op::MoveL => {
                let size = match op >> 12 {
                    1 => B,
                    3 => W,
                    _ => L,
                };
                let src = self.ea0(op, size)?;
                let dst = self.ea((op >> 6) & 7, (op >> 9) & 7, size)?;
                self.set(M::Move, size, Some(src), Some(dst));
            }
            Op::MoveaW => self.ea_an(M::Movea, W, op)?,
            Op::MoveaL => self.ea_an(M::Movea, L, op)?,
            Op::Lea => self.ea_an(M::Lea, None, op)?,
            Op::Pea => self.one(M::Pea, None, op)?,
            Op::Link => {
                let d = self.next()? as i16;
                self.set(
                    M::Link,
                    None,
                    Some(Operand::Addr(reg0(op))),
                    Some(Operand::Quick(d.into())),
                );
            }
            Op::Unlk => self.set(M::Unlk, None, Some(Operand::Addr(reg0(op))), None),
            Op::MoveUsp => {
                let an = Some(Operand::Addr(reg0(op)));
                let usp = Some(Operand::Usp);
                if op & 8 == 0 {
                    self.set(M::Move, L, an, usp);
                } else {
                    self.set(M::Move, L, usp, an);
                }
            }
            Op::MoveFromSr => {
                let ea = self.ea0(op, W)?;
                self.set(M::Move, W, Some(Operand::Sr), Some(ea));
            }
            Op::MoveToCcr | Op::MoveToSr => {
                let ea = self.ea0(op, W)?;
                let dst = if decode(op) == Op::MoveToSr {
                    Operand::Sr
                } else {
                    Operand::Ccr
                };
                self.set(M::Move, W, Some(ea), Some(dst));
            }
            Op::AndiCcr | Op::OriCcr | Op::EoriCcr | Op::AndiSr | Op::OriSr | Op::EoriSr => {
                let mn = match (op >> 9) & 7 {
                    0 => M::Ori,
                    1 => M::Andi,
                    _ => M::Eori,
                };
                let (size, reg) = if op & 0x40 == 0 {
                    (B, Operand::Ccr)
                } else {
                    (W, Operand::Sr)
                };
                let imm = self.imm(size)?;
                self.set(mn, size, Some(imm), Some(reg));
            }
            Op::MovemMW => self.movem(W, op, true)?,
            Op::MovemML => self.movem(L, op, true)?,
            Op::MovemRW => self.movem(W, op, false)?,
            Op::MovemRL => self.movem(L, op, false)?,
            Op::MovepRW | Op::MovepRL | Op::MovepMW | Op::MovepML => {
                let size = if op & 0x40 == 0 { W } else { L };
                let mem = Operand::Disp(self.next()? as i16, reg0(op));
                let dn = Operand::Data(reg9(op));
                if op & 0x80 == 0 {
                    self.set(M::Movep, size, Some(mem), Some(dn));
                } else {
                    self.set(M::Movep, size, Some(dn), Some(mem));
                }
            }
            Op::Bcc | Op::Bsr => self.branch(M::B(cc), op)?,
            Op::Dbcc => {
                let base = self.pos();
                let disp = self.next()? as i16 as u32;
                self.set(
                    M::Db(cc),
                    None,
                    Some(Operand::Data(reg0(op))),
                    Some(Operand::Target(base.wrapping_add(disp))),
                );
            }
            Op::Jmp => self.one(M::Jmp, None, op)?,
            Op::Jsr => self.one(M::Jsr, None, op)?,
            Op::Rts => self.set(M::Rts, None, None, None),
            Op::Rte => self.set(M::Rte, None, None, None),
            Op::Rtr => self.set(M::Rtr, None, None, None),
            Op::Trapv => self.set(M::Trapv, None, None, None),
            Op::Nop => self.set(M::Nop, None, None, None),
            Op::Reset => self.set(M::Reset, None, None, None),
            Op::Trap => self.set(M::Trap, None, Some(Operand::Quick((op & 15).into())), None),
            Op::Stop => {
                let imm = self.imm(W)?;
                self.set(M::Stop, None, Some(imm), None);
            }
        }
        Some(())
    }
}
