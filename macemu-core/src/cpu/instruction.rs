//! A decoded instruction as data: mnemonic, size and operands with their extension words
//! resolved. `Display` prints Motorola syntax, so it is the disassembler's output
//! (`move.l (a0)+,-(sp)`, `bra.s $400120`, `movem.l d0-d2/a0,-(sp)`, `dc.w $ffff`).
//!
//! Numbers follow the usual Motorola listing style: hexadecimal with `$`, except 0 to 9, which
//! read the same in decimal; displacements are signed; a7 prints as `sp`.

use std::fmt;

/// Operand size of a sized instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Size {
    Byte,
    Word,
    Long,
}

impl Size {
    pub fn bytes(self) -> u32 {
        match self {
            Size::Byte => 1,
            Size::Word => 2,
            Size::Long => 4,
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Size::Byte => "b",
            Size::Word => "w",
            Size::Long => "l",
        }
    }
}

/// A condition code (bits 11..8 of Bcc, DBcc and Scc).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cond(pub u8);

impl Cond {
    pub fn name(self) -> &'static str {
        const NAMES: [&str; 16] = [
            "t", "f", "hi", "ls", "cc", "cs", "ne", "eq", "vc", "vs", "pl", "mi", "ge", "lt", "gt",
            "le",
        ];
        NAMES[usize::from(self.0 & 15)]
    }
}

/// The operation, without its size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mnemonic {
    Abcd,
    Add,
    Adda,
    Addi,
    Addq,
    Addx,
    And,
    Andi,
    Asl,
    Asr,
    /// `bra` for condition T, `bsr` for F (the encodings of those conditions).
    B(Cond),
    Bchg,
    Bclr,
    Bset,
    Btst,
    Chk,
    Clr,
    Cmp,
    Cmpa,
    Cmpi,
    Cmpm,
    /// `dbra` for condition F.
    Db(Cond),
    /// A word that is no instruction (shown as data); also line A and line F.
    Dc,
    Divs,
    Divu,
    Eor,
    Eori,
    Exg,
    Ext,
    Illegal,
    Jmp,
    Jsr,
    Lea,
    Link,
    Lsl,
    Lsr,
    Move,
    Movea,
    Movem,
    Movep,
    Moveq,
    Muls,
    Mulu,
    Nbcd,
    Neg,
    Negx,
    Nop,
    Not,
    Or,
    Ori,
    Pea,
    Reset,
    Rol,
    Ror,
    Roxl,
    Roxr,
    Rte,
    Rtr,
    Rts,
    S(Cond),
    Sbcd,
    Stop,
    Sub,
    Suba,
    Subi,
    Subq,
    Subx,
    Swap,
    Tas,
    Trap,
    Trapv,
    Tst,
    Unlk,
}

impl fmt::Display for Mnemonic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Mnemonic::*;
        let s = match *self {
            B(Cond(0)) => "bra",
            B(Cond(1)) => "bsr",
            B(c) => return write!(f, "b{}", c.name()),
            Db(Cond(1)) => "dbra",
            Db(c) => return write!(f, "db{}", c.name()),
            S(c) => return write!(f, "s{}", c.name()),
            Abcd => "abcd",
            Add => "add",
            Adda => "adda",
            Addi => "addi",
            Addq => "addq",
            Addx => "addx",
            And => "and",
            Andi => "andi",
            Asl => "asl",
            Asr => "asr",
            Bchg => "bchg",
            Bclr => "bclr",
            Bset => "bset",
            Btst => "btst",
            Chk => "chk",
            Clr => "clr",
            Cmp => "cmp",
            Cmpa => "cmpa",
            Cmpi => "cmpi",
            Cmpm => "cmpm",
            Dc => "dc",
            Divs => "divs",
            Divu => "divu",
            Eor => "eor",
            Eori => "eori",
            Exg => "exg",
            Ext => "ext",
            Illegal => "illegal",
            Jmp => "jmp",
            Jsr => "jsr",
            Lea => "lea",
            Link => "link",
            Lsl => "lsl",
            Lsr => "lsr",
            Move => "move",
            Movea => "movea",
            Movem => "movem",
            Movep => "movep",
            Moveq => "moveq",
            Muls => "muls",
            Mulu => "mulu",
            Nbcd => "nbcd",
            Neg => "neg",
            Negx => "negx",
            Nop => "nop",
            Not => "not",
            Or => "or",
            Ori => "ori",
            Pea => "pea",
            Reset => "reset",
            Rol => "rol",
            Ror => "ror",
            Roxl => "roxl",
            Roxr => "roxr",
            Rte => "rte",
            Rtr => "rtr",
            Rts => "rts",
            Sbcd => "sbcd",
            Stop => "stop",
            Sub => "sub",
            Suba => "suba",
            Subi => "subi",
            Subq => "subq",
            Subx => "subx",
            Swap => "swap",
            Tas => "tas",
            Trap => "trap",
            Trapv => "trapv",
            Tst => "tst",
            Unlk => "unlk",
        };
        f.write_str(s)
    }
}

/// The index register of an indexed mode: `reg` 0..=7 are d0..d7, 8..=15 a0..a7.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IndexReg {
    pub reg: u8,
    /// Long index (`.l`); otherwise the low word, sign-extended (`.w`).
    pub long: bool,
}

/// One operand, its extension words resolved. PC-relative forms and branch targets hold the
/// address they designate, not the displacement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operand {
    /// Dn
    Data(u8),
    /// An
    Addr(u8),
    /// (An)
    Ind(u8),
    /// (An)+
    PostInc(u8),
    /// -(An)
    PreDec(u8),
    /// d16(An)
    Disp(i16, u8),
    /// d8(An,Xn)
    Index(i8, u8, IndexReg),
    /// xxx.w: the address after sign extension.
    AbsW(u32),
    /// xxx.l
    AbsL(u32),
    /// d16(PC), as the address it designates.
    PcDisp(u32),
    /// d8(PC,Xn), as the address before the index is added.
    PcIndex(u32, IndexReg),
    /// #imm, shown in hexadecimal.
    Imm(u32),
    /// #n of the quick and count forms (and MOVEQ, LINK), shown signed.
    Quick(i32),
    /// A MOVEM register list: bit n set for d(n) (n < 8) or a(n - 8).
    RegList(u16),
    /// A branch target.
    Target(u32),
    Sr,
    Ccr,
    Usp,
}

/// Writes `v` as `$hex`, or in decimal below 10.
fn num(f: &mut fmt::Formatter<'_>, v: u32) -> fmt::Result {
    if v < 10 {
        write!(f, "{v}")
    } else {
        write!(f, "${v:x}")
    }
}

fn signed(f: &mut fmt::Formatter<'_>, v: i32) -> fmt::Result {
    if v < 0 {
        f.write_str("-")?;
    }
    num(f, v.unsigned_abs())
}

fn reg(f: &mut fmt::Formatter<'_>, r: u8) -> fmt::Result {
    match r {
        0..=7 => write!(f, "d{r}"),
        15 => f.write_str("sp"),
        _ => write!(f, "a{}", r - 8),
    }
}

fn index(f: &mut fmt::Formatter<'_>, x: IndexReg) -> fmt::Result {
    reg(f, x.reg)?;
    f.write_str(if x.long { ".l" } else { ".w" })
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Operand::Data(r) => reg(f, r),
            Operand::Addr(r) => reg(f, r + 8),
            Operand::Ind(r) => {
                f.write_str("(")?;
                reg(f, r + 8)?;
                f.write_str(")")
            }
            Operand::PostInc(r) => {
                f.write_str("(")?;
                reg(f, r + 8)?;
                f.write_str(")+")
            }
            Operand::PreDec(r) => {
                f.write_str("-(")?;
                reg(f, r + 8)?;
                f.write_str(")")
            }
            Operand::Disp(d, r) => {
                signed(f, d.into())?;
                f.write_str("(")?;
                reg(f, r + 8)?;
                f.write_str(")")
            }
            Operand::Index(d, r, x) => {
                signed(f, d.into())?;
                f.write_str("(")?;
                reg(f, r + 8)?;
                f.write_str(",")?;
                index(f, x)?;
                f.write_str(")")
            }
            Operand::AbsW(a) => write!(f, "${a:x}.w"),
            Operand::AbsL(a) => write!(f, "${a:x}.l"),
            Operand::PcDisp(a) => write!(f, "${a:x}(pc)"),
            Operand::PcIndex(a, x) => {
                write!(f, "${a:x}(pc,")?;
                index(f, x)?;
                f.write_str(")")
            }
            Operand::Imm(v) => {
                f.write_str("#")?;
                num(f, v)
            }
            Operand::Quick(v) => {
                f.write_str("#")?;
                signed(f, v)
            }
            Operand::RegList(mask) => reglist(f, mask),
            Operand::Target(a) => write!(f, "${a:x}"),
            Operand::Sr => f.write_str("sr"),
            Operand::Ccr => f.write_str("ccr"),
            Operand::Usp => f.write_str("usp"),
        }
    }
}

/// `d0-d2/a0/a5`: runs of two or more registers within a bank as ranges.
fn reglist(f: &mut fmt::Formatter<'_>, mask: u16) -> fmt::Result {
    let mut first = true;
    for bank in [0u8, 8] {
        let mut r = bank;
        while r < bank + 8 {
            if mask & (1 << r) == 0 {
                r += 1;
                continue;
            }
            let start = r;
            while r + 1 < bank + 8 && mask & (1 << (r + 1)) != 0 {
                r += 1;
            }
            if !first {
                f.write_str("/")?;
            }
            first = false;
            reg(f, start)?;
            if r > start {
                f.write_str("-")?;
                reg(f, r)?;
            }
            r += 1;
        }
    }
    Ok(())
}

/// A decoded instruction and the words it was decoded from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Instruction {
    /// Address of the opcode word.
    pub addr: u32,
    pub mnemonic: Mnemonic,
    /// The size suffix; for branches `Byte` prints as `.s`.
    pub size: Option<Size>,
    /// Source then destination; unused ones are `None`.
    pub operands: [Option<Operand>; 2],
    /// The opcode and extension words (`len` of them).
    pub words: [u16; 5],
    pub len: u8,
}

impl Instruction {
    /// The opcode and extension words.
    pub fn words(&self) -> &[u16] {
        &self.words[..usize::from(self.len)]
    }

    /// Length in bytes.
    pub fn byte_len(&self) -> u32 {
        2 * u32::from(self.len)
    }

    /// Address of the next instruction in memory.
    pub fn next_addr(&self) -> u32 {
        self.addr.wrapping_add(self.byte_len())
    }
}

impl fmt::Display for Instruction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mnemonic == Mnemonic::Dc {
            // Data, not an immediate operand: no `#`.
            return write!(f, "dc.w ${:04x}", self.words[0]);
        }
        write!(f, "{}", self.mnemonic)?;
        match (self.mnemonic, self.size) {
            (Mnemonic::B(_), Some(Size::Byte)) => f.write_str(".s")?,
            (_, Some(s)) => write!(f, ".{}", s.suffix())?,
            (_, None) => {}
        }
        let mut sep = " ";
        for op in self.operands.iter().flatten() {
            f.write_str(sep)?;
            write!(f, "{op}")?;
            sep = ",";
        }
        Ok(())
    }
}
