//! Opcode decoding. [`decode`] maps an opcode word to its instruction ([`Op`]); [`dispatch`]
//! turns that into a 65,536-entry table of handler pointers per CPU model and bus type, built
//! once, so dispatch is one load and an indirect call. Handlers are specialised by const generics: operand
//! size, operation, and for most instructions the effective-address class (see
//! [`ea_class`](super::execute::ea_class)) and condition code, so a handler runs no mode or
//! condition switch of its own.

use std::any::Any;
use std::marker::PhantomData;
use std::sync::Mutex;

use super::ea::{BYTE, LONG, WORD};
use super::execute::{
    alu, bcd, bits, ea_class, flow, moves, muldiv, shift, ADD, AND, CMP, EOR, OR, SUB,
};
use super::{Cpu, CpuModel, Res};
use crate::bus::Bus;

pub(crate) type Handler<B> = fn(&mut Cpu, &mut B, u16) -> Res<()>;

/// One handler pointer per opcode word.
pub(crate) type Dispatch<B> = [Handler<B>; 65536];

/// `module::handler<generics..., n>` for the `n` of the list equal to `$v`.
macro_rules! fan {
    ($v:expr; $m:ident::$f:ident; [$($g:tt)*]; $n:literal $($rest:literal)*) => {
        if $v == $n {
            $m::$f::<B, $($g)* $n> as Handler<B>
        } else {
            fan!($v; $m::$f; [$($g)*]; $($rest)*)
        }
    };
    ($v:expr; $m:ident::$f:ident; [$($g:tt)*];) => {
        flow::illegal::<B> as Handler<B>
    };
}

/// MOVE: specialised by destination class, then by source class.
macro_rules! fan_move {
    ($d:expr; $s:expr; $m:ident::$f:ident; [$($g:tt)*]; $n:literal $($rest:literal)*) => {
        if $d == $n {
            fan!($s; $m::$f; [$($g)* $n,]; 0 1 2 3 4 5 6 7 8 9 10 11)
        } else {
            fan_move!($d; $s; $m::$f; [$($g)*]; $($rest)*)
        }
    };
    ($d:expr; $s:expr; $m:ident::$f:ident; [$($g:tt)*];) => {
        flow::illegal::<B> as Handler<B>
    };
}

/// Picks the handler of one entry: plain, by source class (`ea`), by MOVE's two classes
/// (`mv`) or by condition code (`cc`).
macro_rules! pick {
    ($op:ident; ; $m:ident::$f:ident [$($g:tt)*]) => {
        $m::$f::<B, $($g)*> as Handler<B>
    };
    ($op:ident; ea; $m:ident::$f:ident [$($g:tt)*]) => {
        fan!(ea_class(($op >> 3) & 7, $op & 7); $m::$f; [$($g)*]; 0 1 2 3 4 5 6 7 8 9 10 11)
    };
    ($op:ident; mv; $m:ident::$f:ident [$($g:tt)*]) => {
        fan_move!(ea_class(($op >> 6) & 7, ($op >> 9) & 7); ea_class(($op >> 3) & 7, $op & 7);
            $m::$f; [$($g)*]; 0 2 3 4 5 6 7 8)
    };
    ($op:ident; cc; $m:ident::$f:ident [$($g:tt)*]) => {
        fan!(($op >> 8) & 15; $m::$f; [$($g)*]; 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15)
    };
}

macro_rules! handlers {
    ($($name:ident => $m:ident::$f:ident $(<$($g:tt),*>)? $([$spec:ident])?;)*) => {
        /// The instruction an opcode word decodes to.
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub(crate) enum Op { $($name,)* }

        /// The specialised handler for opcode `op`, which decodes to `kind`.
        fn select<B: Bus>(kind: Op, op: u16) -> Handler<B> {
            match kind {
                $(Op::$name => pick!(op; $($spec)?; $m::$f [$($($g,)*)?]),)*
            }
        }
    };
}

handlers! {
    Illegal => flow::illegal;
    LineA => flow::line_a;
    LineF => flow::line_f;
    // ALU <ea>,Dn
    AddB => alu::to_reg<BYTE, ADD> [ea]; AddW => alu::to_reg<WORD, ADD> [ea]; AddL => alu::to_reg<LONG, ADD> [ea];
    SubB => alu::to_reg<BYTE, SUB> [ea]; SubW => alu::to_reg<WORD, SUB> [ea]; SubL => alu::to_reg<LONG, SUB> [ea];
    AndB => alu::to_reg<BYTE, AND> [ea]; AndW => alu::to_reg<WORD, AND> [ea]; AndL => alu::to_reg<LONG, AND> [ea];
    OrB => alu::to_reg<BYTE, OR> [ea]; OrW => alu::to_reg<WORD, OR> [ea]; OrL => alu::to_reg<LONG, OR> [ea];
    CmpB => alu::to_reg<BYTE, CMP> [ea]; CmpW => alu::to_reg<WORD, CMP> [ea]; CmpL => alu::to_reg<LONG, CMP> [ea];
    // ALU Dn,<ea>
    AddMB => alu::to_mem<BYTE, ADD> [ea]; AddMW => alu::to_mem<WORD, ADD> [ea]; AddML => alu::to_mem<LONG, ADD> [ea];
    SubMB => alu::to_mem<BYTE, SUB> [ea]; SubMW => alu::to_mem<WORD, SUB> [ea]; SubML => alu::to_mem<LONG, SUB> [ea];
    AndMB => alu::to_mem<BYTE, AND> [ea]; AndMW => alu::to_mem<WORD, AND> [ea]; AndML => alu::to_mem<LONG, AND> [ea];
    OrMB => alu::to_mem<BYTE, OR> [ea]; OrMW => alu::to_mem<WORD, OR> [ea]; OrML => alu::to_mem<LONG, OR> [ea];
    EorMB => alu::to_mem<BYTE, EOR> [ea]; EorMW => alu::to_mem<WORD, EOR> [ea]; EorML => alu::to_mem<LONG, EOR> [ea];
    EorRB => alu::eor_reg<BYTE>; EorRW => alu::eor_reg<WORD>; EorRL => alu::eor_reg<LONG>;
    AddaW => alu::addr_op<WORD, ADD> [ea]; AddaL => alu::addr_op<LONG, ADD> [ea];
    SubaW => alu::addr_op<WORD, SUB> [ea]; SubaL => alu::addr_op<LONG, SUB> [ea];
    CmpaW => alu::addr_op<WORD, CMP> [ea]; CmpaL => alu::addr_op<LONG, CMP> [ea];
    AddiB => alu::imm<BYTE, ADD> [ea]; AddiW => alu::imm<WORD, ADD> [ea]; AddiL => alu::imm<LONG, ADD> [ea];
    SubiB => alu::imm<BYTE, SUB> [ea]; SubiW => alu::imm<WORD, SUB> [ea]; SubiL => alu::imm<LONG, SUB> [ea];
    AndiB => alu::imm<BYTE, AND> [ea]; AndiW => alu::imm<WORD, AND> [ea]; AndiL => alu::imm<LONG, AND> [ea];
    OriB => alu::imm<BYTE, OR> [ea]; OriW => alu::imm<WORD, OR> [ea]; OriL => alu::imm<LONG, OR> [ea];
    EoriB => alu::imm<BYTE, EOR> [ea]; EoriW => alu::imm<WORD, EOR> [ea]; EoriL => alu::imm<LONG, EOR> [ea];
    CmpiB => alu::imm<BYTE, CMP> [ea]; CmpiW => alu::imm<WORD, CMP> [ea]; CmpiL => alu::imm<LONG, CMP> [ea];
    AddqB => alu::quick<BYTE, ADD> [ea]; AddqW => alu::quick<WORD, ADD> [ea]; AddqL => alu::quick<LONG, ADD> [ea];
    SubqB => alu::quick<BYTE, SUB> [ea]; SubqW => alu::quick<WORD, SUB> [ea]; SubqL => alu::quick<LONG, SUB> [ea];
    AddqA => alu::quick_an<ADD>; SubqA => alu::quick_an<SUB>;
    AddxB => alu::extend<BYTE, ADD>; AddxW => alu::extend<WORD, ADD>; AddxL => alu::extend<LONG, ADD>;
    SubxB => alu::extend<BYTE, SUB>; SubxW => alu::extend<WORD, SUB>; SubxL => alu::extend<LONG, SUB>;
    CmpmB => alu::cmpm<BYTE>; CmpmW => alu::cmpm<WORD>; CmpmL => alu::cmpm<LONG>;
    NegB => alu::unary<BYTE, {alu::NEG}> [ea]; NegW => alu::unary<WORD, {alu::NEG}> [ea]; NegL => alu::unary<LONG, {alu::NEG}> [ea];
    NegxB => alu::unary<BYTE, {alu::NEGX}> [ea]; NegxW => alu::unary<WORD, {alu::NEGX}> [ea]; NegxL => alu::unary<LONG, {alu::NEGX}> [ea];
    NotB => alu::unary<BYTE, {alu::NOT}> [ea]; NotW => alu::unary<WORD, {alu::NOT}> [ea]; NotL => alu::unary<LONG, {alu::NOT}> [ea];
    ClrB => alu::unary<BYTE, {alu::CLR}> [ea]; ClrW => alu::unary<WORD, {alu::CLR}> [ea]; ClrL => alu::unary<LONG, {alu::CLR}> [ea];
    TstB => alu::tst<BYTE> [ea]; TstW => alu::tst<WORD> [ea]; TstL => alu::tst<LONG> [ea];
    ExtW => alu::ext<WORD>; ExtL => alu::ext<LONG>;
    Swap => alu::swap;
    Exg => alu::exg;
    Moveq => alu::moveq;
    Scc => alu::scc [ea];
    Tas => alu::tas [ea];
    Chk => alu::chk [ea];
    Abcd => bcd::abcd_sbcd<false>; Sbcd => bcd::abcd_sbcd<true>; Nbcd => bcd::nbcd [ea];
    Btst => bits::bit_op<{bits::BTST}, false> [ea]; Bchg => bits::bit_op<{bits::BCHG}, false> [ea];
    Bclr => bits::bit_op<{bits::BCLR}, false> [ea]; Bset => bits::bit_op<{bits::BSET}, false> [ea];
    BtstI => bits::bit_op<{bits::BTST}, true> [ea]; BchgI => bits::bit_op<{bits::BCHG}, true> [ea];
    BclrI => bits::bit_op<{bits::BCLR}, true> [ea]; BsetI => bits::bit_op<{bits::BSET}, true> [ea];
    Mulu => muldiv::mul<false> [ea]; Muls => muldiv::mul<true> [ea];
    Divu => muldiv::div<false> [ea]; Divs => muldiv::div<true> [ea];
    AslB => shift::shift_reg<BYTE, {shift::AS}, true>; AslW => shift::shift_reg<WORD, {shift::AS}, true>; AslL => shift::shift_reg<LONG, {shift::AS}, true>;
    AsrB => shift::shift_reg<BYTE, {shift::AS}, false>; AsrW => shift::shift_reg<WORD, {shift::AS}, false>; AsrL => shift::shift_reg<LONG, {shift::AS}, false>;
    LslB => shift::shift_reg<BYTE, {shift::LS}, true>; LslW => shift::shift_reg<WORD, {shift::LS}, true>; LslL => shift::shift_reg<LONG, {shift::LS}, true>;
    LsrB => shift::shift_reg<BYTE, {shift::LS}, false>; LsrW => shift::shift_reg<WORD, {shift::LS}, false>; LsrL => shift::shift_reg<LONG, {shift::LS}, false>;
    RoxlB => shift::shift_reg<BYTE, {shift::ROX}, true>; RoxlW => shift::shift_reg<WORD, {shift::ROX}, true>; RoxlL => shift::shift_reg<LONG, {shift::ROX}, true>;
    RoxrB => shift::shift_reg<BYTE, {shift::ROX}, false>; RoxrW => shift::shift_reg<WORD, {shift::ROX}, false>; RoxrL => shift::shift_reg<LONG, {shift::ROX}, false>;
    RolB => shift::shift_reg<BYTE, {shift::RO}, true>; RolW => shift::shift_reg<WORD, {shift::RO}, true>; RolL => shift::shift_reg<LONG, {shift::RO}, true>;
    RorB => shift::shift_reg<BYTE, {shift::RO}, false>; RorW => shift::shift_reg<WORD, {shift::RO}, false>; RorL => shift::shift_reg<LONG, {shift::RO}, false>;
    AslM => shift::shift_mem<{shift::AS}, true> [ea]; AsrM => shift::shift_mem<{shift::AS}, false> [ea];
    LslM => shift::shift_mem<{shift::LS}, true> [ea]; LsrM => shift::shift_mem<{shift::LS}, false> [ea];
    RoxlM => shift::shift_mem<{shift::ROX}, true> [ea]; RoxrM => shift::shift_mem<{shift::ROX}, false> [ea];
    RolM => shift::shift_mem<{shift::RO}, true> [ea]; RorM => shift::shift_mem<{shift::RO}, false> [ea];
    MoveB => moves::move_<BYTE> [mv]; MoveW => moves::move_<WORD> [mv]; MoveL => moves::move_<LONG> [mv];
    MoveaW => moves::movea<WORD> [ea]; MoveaL => moves::movea<LONG> [ea];
    Lea => moves::lea [ea]; Pea => moves::pea [ea]; Link => moves::link; Unlk => moves::unlk;
    MoveUsp => moves::move_usp;
    MoveFromSr => moves::move_from_sr [ea];
    MoveToCcr => moves::move_to_sr<false> [ea]; MoveToSr => moves::move_to_sr<true> [ea];
    AndiCcr => moves::logic_sr<AND, false>; OriCcr => moves::logic_sr<OR, false>; EoriCcr => moves::logic_sr<EOR, false>;
    AndiSr => moves::logic_sr<AND, true>; OriSr => moves::logic_sr<OR, true>; EoriSr => moves::logic_sr<EOR, true>;
    MovemMW => moves::movem_to_mem<WORD> [ea]; MovemML => moves::movem_to_mem<LONG> [ea];
    MovemRW => moves::movem_to_reg<WORD> [ea]; MovemRL => moves::movem_to_reg<LONG> [ea];
    MovepRW => moves::movep<WORD, false>; MovepRL => moves::movep<LONG, false>;
    MovepMW => moves::movep<WORD, true>; MovepML => moves::movep<LONG, true>;
    Bcc => flow::bcc [cc]; Bsr => flow::bsr; Dbcc => flow::dbcc [cc];
    Jmp => flow::jmp [ea]; Jsr => flow::jsr [ea]; Rts => flow::rts; Rte => flow::rte; Rtr => flow::rtr;
    Trap => flow::trap; Trapv => flow::trapv; Nop => flow::nop; Reset => flow::reset; Stop => flow::stop;
}

/// An instruction set: the handler of every opcode word, for any bus. One zero-sized type per
/// CPU model; [`dispatch`] turns it into that model's table.
pub(crate) trait InstructionSet: 'static {
    fn handler<B: Bus>(op: u16) -> Handler<B>;
}

/// The MC68000's instruction set ([`decode`], then the handler specialised for the opcode).
pub(crate) struct Mc68000;

impl InstructionSet for Mc68000 {
    fn handler<B: Bus>(op: u16) -> Handler<B> {
        select::<B>(decode(op), op)
    }
}

/// The table of instruction set `I` on bus `B`; the type pair is the key of [`TABLES`].
struct Table<B: Bus, I> {
    handlers: Box<Dispatch<B>>,
    _set: PhantomData<fn() -> I>,
}

/// Dispatch tables already built, one per model and bus type (each 512 KiB, kept for the
/// process's life).
static TABLES: Mutex<Vec<&'static (dyn Any + Send + Sync)>> = Mutex::new(Vec::new());

/// The dispatch table of `model` for bus type `B`, built on first use. The only place that
/// looks at the model: the CPU caches the table, so its hot loop never does.
pub(crate) fn dispatch<B: Bus + 'static>(model: CpuModel) -> &'static Dispatch<B> {
    match model {
        CpuModel::M68000 => table::<B, Mc68000>(),
    }
}

fn table<B: Bus + 'static, I: InstructionSet>() -> &'static Dispatch<B> {
    let mut tables = TABLES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(t) = tables.iter().find_map(|t| t.downcast_ref::<Table<B, I>>()) {
        return &t.handlers;
    }
    let handlers: Box<Dispatch<B>> = (0..=u16::MAX)
        .map(I::handler::<B>)
        .collect::<Vec<_>>()
        .into_boxed_slice()
        .try_into()
        .unwrap_or_else(|_| unreachable!("65,536 opcodes"));
    let table: &'static Table<B, I> = Box::leak(Box::new(Table {
        handlers,
        _set: PhantomData,
    }));
    tables.push(table);
    &table.handlers
}

/// Addressing-mode classes; `r` matters only for mode 7.
fn valid(m: u16, r: u16) -> bool {
    m != 7 || r <= 4
}
fn data(m: u16, r: u16) -> bool {
    m != 1 && valid(m, r)
}
fn alterable(m: u16, r: u16) -> bool {
    m != 7 || r <= 1
}
fn data_alterable(m: u16, r: u16) -> bool {
    m != 1 && alterable(m, r)
}
fn mem_alterable(m: u16, r: u16) -> bool {
    m >= 2 && alterable(m, r)
}
fn control(m: u16, r: u16) -> bool {
    matches!(m, 2 | 5 | 6) || (m == 7 && r <= 3)
}

fn sized(size: u16, b: Op, w: Op, l: Op) -> Op {
    match size {
        0 => b,
        1 => w,
        2 => l,
        _ => Op::Illegal,
    }
}

/// Maps one opcode word to its handler (68000 instruction set).
pub(crate) fn decode(op: u16) -> Op {
    let m = (op >> 3) & 7;
    let r = op & 7;
    let size = (op >> 6) & 3;
    let any = valid(m, r);
    match op >> 12 {
        0x0 => {
            if op & 0x0100 != 0 {
                if m == 1 {
                    return match size {
                        0 => Op::MovepRW,
                        1 => Op::MovepRL,
                        2 => Op::MovepMW,
                        _ => Op::MovepML,
                    };
                }
                return match size {
                    0 if data(m, r) => Op::Btst,
                    1 if data_alterable(m, r) => Op::Bchg,
                    2 if data_alterable(m, r) => Op::Bclr,
                    3 if data_alterable(m, r) => Op::Bset,
                    _ => Op::Illegal,
                };
            }
            let kind = (op >> 9) & 7;
            if kind == 4 {
                return match size {
                    0 if data(m, r) && !(m == 7 && r == 4) => Op::BtstI,
                    1 if data_alterable(m, r) => Op::BchgI,
                    2 if data_alterable(m, r) => Op::BclrI,
                    3 if data_alterable(m, r) => Op::BsetI,
                    _ => Op::Illegal,
                };
            }
            match op & 0xFF {
                0x3C => {
                    return match kind {
                        0 => Op::OriCcr,
                        1 => Op::AndiCcr,
                        5 => Op::EoriCcr,
                        _ => Op::Illegal,
                    }
                }
                0x7C => {
                    return match kind {
                        0 => Op::OriSr,
                        1 => Op::AndiSr,
                        5 => Op::EoriSr,
                        _ => Op::Illegal,
                    }
                }
                _ => {}
            }
            if !data_alterable(m, r) {
                return Op::Illegal;
            }
            match kind {
                0 => sized(size, Op::OriB, Op::OriW, Op::OriL),
                1 => sized(size, Op::AndiB, Op::AndiW, Op::AndiL),
                2 => sized(size, Op::SubiB, Op::SubiW, Op::SubiL),
                3 => sized(size, Op::AddiB, Op::AddiW, Op::AddiL),
                5 => sized(size, Op::EoriB, Op::EoriW, Op::EoriL),
                6 => sized(size, Op::CmpiB, Op::CmpiW, Op::CmpiL),
                _ => Op::Illegal,
            }
        }
        0x1..=0x3 => {
            let dm = (op >> 6) & 7;
            let dr = (op >> 9) & 7;
            let sz = op >> 12;
            if !any || (sz == 1 && m == 1) {
                return Op::Illegal;
            }
            if dm == 1 {
                return match sz {
                    3 => Op::MoveaW,
                    2 => Op::MoveaL,
                    _ => Op::Illegal,
                };
            }
            if !data_alterable(dm, dr) {
                return Op::Illegal;
            }
            match sz {
                1 => Op::MoveB,
                3 => Op::MoveW,
                _ => Op::MoveL,
            }
        }
        0x4 => decode_misc(op, m, r, size),
        0x5 => {
            if size == 3 {
                if m == 1 {
                    return Op::Dbcc;
                }
                return if data_alterable(m, r) {
                    Op::Scc
                } else {
                    Op::Illegal
                };
            }
            if !alterable(m, r) || (m == 1 && size == 0) {
                return Op::Illegal;
            }
            let sub = op & 0x0100 != 0;
            if m == 1 {
                return if sub { Op::SubqA } else { Op::AddqA };
            }
            if sub {
                sized(size, Op::SubqB, Op::SubqW, Op::SubqL)
            } else {
                sized(size, Op::AddqB, Op::AddqW, Op::AddqL)
            }
        }
        0x6 => match (op >> 8) & 15 {
            1 => Op::Bsr,
            _ => Op::Bcc,
        },
        0x7 => {
            if op & 0x0100 == 0 {
                Op::Moveq
            } else {
                Op::Illegal
            }
        }
        0x8 | 0xC => {
            let or = op >> 12 == 8;
            match op & 0x1C0 {
                0x0C0 => {
                    return if !data(m, r) {
                        Op::Illegal
                    } else if or {
                        Op::Divu
                    } else {
                        Op::Mulu
                    }
                }
                0x1C0 => {
                    return if !data(m, r) {
                        Op::Illegal
                    } else if or {
                        Op::Divs
                    } else {
                        Op::Muls
                    }
                }
                _ => {}
            }
            if op & 0x1F0 == 0x100 {
                return if or { Op::Sbcd } else { Op::Abcd };
            }
            if !or && matches!(op & 0x1F8, 0x140 | 0x148 | 0x188) {
                return Op::Exg;
            }
            if op & 0x100 == 0 {
                if !data(m, r) {
                    return Op::Illegal;
                }
                if or {
                    sized(size, Op::OrB, Op::OrW, Op::OrL)
                } else {
                    sized(size, Op::AndB, Op::AndW, Op::AndL)
                }
            } else {
                if !mem_alterable(m, r) {
                    return Op::Illegal;
                }
                if or {
                    sized(size, Op::OrMB, Op::OrMW, Op::OrML)
                } else {
                    sized(size, Op::AndMB, Op::AndMW, Op::AndML)
                }
            }
        }
        0x9 | 0xD => {
            let add = op >> 12 == 0xD;
            if size == 3 {
                if !any {
                    return Op::Illegal;
                }
                return match (add, op & 0x100 != 0) {
                    (true, false) => Op::AddaW,
                    (true, true) => Op::AddaL,
                    (false, false) => Op::SubaW,
                    (false, true) => Op::SubaL,
                };
            }
            if op & 0x100 != 0 && m <= 1 {
                return if add {
                    sized(size, Op::AddxB, Op::AddxW, Op::AddxL)
                } else {
                    sized(size, Op::SubxB, Op::SubxW, Op::SubxL)
                };
            }
            if op & 0x100 == 0 {
                if !any || (m == 1 && size == 0) {
                    return Op::Illegal;
                }
                if add {
                    sized(size, Op::AddB, Op::AddW, Op::AddL)
                } else {
                    sized(size, Op::SubB, Op::SubW, Op::SubL)
                }
            } else {
                if !mem_alterable(m, r) {
                    return Op::Illegal;
                }
                if add {
                    sized(size, Op::AddMB, Op::AddMW, Op::AddML)
                } else {
                    sized(size, Op::SubMB, Op::SubMW, Op::SubML)
                }
            }
        }
        0xB => {
            if size == 3 {
                if !any {
                    return Op::Illegal;
                }
                return if op & 0x100 != 0 {
                    Op::CmpaL
                } else {
                    Op::CmpaW
                };
            }
            if op & 0x100 == 0 {
                if !any || (m == 1 && size == 0) {
                    return Op::Illegal;
                }
                return sized(size, Op::CmpB, Op::CmpW, Op::CmpL);
            }
            if m == 1 {
                return sized(size, Op::CmpmB, Op::CmpmW, Op::CmpmL);
            }
            if m == 0 {
                return sized(size, Op::EorRB, Op::EorRW, Op::EorRL);
            }
            if !data_alterable(m, r) {
                return Op::Illegal;
            }
            sized(size, Op::EorMB, Op::EorMW, Op::EorML)
        }
        0xE => {
            let left = op & 0x100 != 0;
            if size == 3 {
                if !mem_alterable(m, r) {
                    return Op::Illegal;
                }
                return match ((op >> 9) & 7, left) {
                    (0, true) => Op::AslM,
                    (0, false) => Op::AsrM,
                    (1, true) => Op::LslM,
                    (1, false) => Op::LsrM,
                    (2, true) => Op::RoxlM,
                    (2, false) => Op::RoxrM,
                    (3, true) => Op::RolM,
                    (3, false) => Op::RorM,
                    _ => Op::Illegal,
                };
            }
            let ops = match ((op >> 3) & 3, left) {
                (0, true) => [Op::AslB, Op::AslW, Op::AslL],
                (0, false) => [Op::AsrB, Op::AsrW, Op::AsrL],
                (1, true) => [Op::LslB, Op::LslW, Op::LslL],
                (1, false) => [Op::LsrB, Op::LsrW, Op::LsrL],
                (2, true) => [Op::RoxlB, Op::RoxlW, Op::RoxlL],
                (2, false) => [Op::RoxrB, Op::RoxrW, Op::RoxrL],
                (3, true) => [Op::RolB, Op::RolW, Op::RolL],
                _ => [Op::RorB, Op::RorW, Op::RorL],
            };
            ops[size as usize]
        }
        0xA => Op::LineA,
        _ => Op::LineF,
    }
}

fn decode_misc(op: u16, m: u16, r: u16, size: u16) -> Op {
    match op {
        0x4AFC => return Op::Illegal,
        0x4E70 => return Op::Reset,
        0x4E71 => return Op::Nop,
        0x4E72 => return Op::Stop,
        0x4E73 => return Op::Rte,
        0x4E75 => return Op::Rts,
        0x4E76 => return Op::Trapv,
        0x4E77 => return Op::Rtr,
        _ => {}
    }
    match op & 0xFFF0 {
        0x4E40 => return Op::Trap,
        0x4E50 => return if op & 8 == 0 { Op::Link } else { Op::Unlk },
        0x4E60 => return Op::MoveUsp,
        _ => {}
    }
    if op & 0xF1C0 == 0x41C0 {
        return if control(m, r) { Op::Lea } else { Op::Illegal };
    }
    if op & 0xF1C0 == 0x4180 {
        return if data(m, r) { Op::Chk } else { Op::Illegal };
    }
    match op & 0xFFC0 {
        0x40C0 => {
            return if data_alterable(m, r) {
                Op::MoveFromSr
            } else {
                Op::Illegal
            }
        }
        0x44C0 => {
            return if data(m, r) {
                Op::MoveToCcr
            } else {
                Op::Illegal
            }
        }
        0x46C0 => {
            return if data(m, r) {
                Op::MoveToSr
            } else {
                Op::Illegal
            }
        }
        0x4800 => {
            return if data_alterable(m, r) {
                Op::Nbcd
            } else {
                Op::Illegal
            }
        }
        0x4840 => {
            return if m == 0 {
                Op::Swap
            } else if control(m, r) {
                Op::Pea
            } else {
                Op::Illegal
            }
        }
        0x4880 | 0x48C0 => {
            let long = op & 0x40 != 0;
            return if m == 0 {
                if long {
                    Op::ExtL
                } else {
                    Op::ExtW
                }
            } else if (control(m, r) && alterable(m, r)) || m == 4 {
                if long {
                    Op::MovemML
                } else {
                    Op::MovemMW
                }
            } else {
                Op::Illegal
            };
        }
        0x4C80 | 0x4CC0 => {
            let long = op & 0x40 != 0;
            return if control(m, r) || m == 3 {
                if long {
                    Op::MovemRL
                } else {
                    Op::MovemRW
                }
            } else {
                Op::Illegal
            };
        }
        0x4AC0 => {
            return if data_alterable(m, r) {
                Op::Tas
            } else {
                Op::Illegal
            }
        }
        0x4E80 => return if control(m, r) { Op::Jsr } else { Op::Illegal },
        0x4EC0 => return if control(m, r) { Op::Jmp } else { Op::Illegal },
        _ => {}
    }
    let ok = data_alterable(m, r);
    match op & 0xFF00 {
        0x4000 if ok => sized(size, Op::NegxB, Op::NegxW, Op::NegxL),
        0x4200 if ok => sized(size, Op::ClrB, Op::ClrW, Op::ClrL),
        0x4400 if ok => sized(size, Op::NegB, Op::NegW, Op::NegL),
        0x4600 if ok => sized(size, Op::NotB, Op::NotW, Op::NotL),
        0x4A00 if ok => sized(size, Op::TstB, Op::TstW, Op::TstL),
        _ => Op::Illegal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::{BusError, FunctionCode};
    use crate::cpu::flat::FlatBus;

    /// A second bus type, to get a second table.
    struct NoBus;

    impl Bus for NoBus {
        fn read_byte(&mut self, _: FunctionCode, _: u32) -> Result<u8, BusError> {
            Err(BusError)
        }
        fn read_word(&mut self, _: FunctionCode, _: u32) -> Result<u16, BusError> {
            Err(BusError)
        }
        fn write_byte(&mut self, _: FunctionCode, _: u32, _: u8) -> Result<(), BusError> {
            Err(BusError)
        }
        fn write_word(&mut self, _: FunctionCode, _: u32, _: u16) -> Result<(), BusError> {
            Err(BusError)
        }
    }

    #[test]
    fn one_table_per_model_and_bus_type_built_once() {
        let flat = dispatch::<FlatBus>(CpuModel::M68000);
        assert!(std::ptr::eq(flat, dispatch::<FlatBus>(CpuModel::M68000)));
        let other = dispatch::<NoBus>(CpuModel::M68000);
        assert!(std::ptr::eq(other, dispatch::<NoBus>(CpuModel::M68000)));
        assert_ne!(flat.as_ptr().cast::<u8>(), other.as_ptr().cast::<u8>());
    }
}
