//! Single-step test vectors for the 68000: reader and runner for both formats in use.
//!
//! * Binary `*.json.bin(.gz)` (MAME-generated m68000 set): `pc` is the address of the next
//!   prefetch, i.e. the instruction address + 4; RAM is stored as words.
//! * Tom Harte's gzip JSON (`680x0` set): `pc` is the instruction address; RAM as byte pairs.
//!
//! Each case is run for one [`Cpu::step`] on a sparse RAM bus; the runner reports whether the
//! final registers, SR, PC, prefetch queue and RAM match, plus (separately) whether the cycle
//! count and the sequence of bus cycles match.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::bus::{Bus, BusError, FunctionCode};
use crate::cpu::{Cpu, CpuModel};

#[derive(Debug, thiserror::Error)]
pub enum VectorError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: malformed test file: {msg}")]
    Format { path: PathBuf, msg: String },
    #[error("{path}: not a known vector file (expected .json.bin[.gz] or .json[.gz])")]
    UnknownKind { path: PathBuf },
}

/// How `pc` in a vector relates to the instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PcConvention {
    /// Address of the next prefetch (instruction + 4): the binary m68000 set.
    NextPrefetch,
    /// Address of the instruction: Tom Harte's JSON.
    Instruction,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    pub d: [u32; 8],
    pub a: [u32; 7],
    pub usp: u32,
    pub ssp: u32,
    pub sr: u16,
    pub pc: u32,
    pub prefetch: [u16; 2],
    /// Bytes of RAM (24-bit addresses).
    pub ram: Vec<(u32, u8)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// One bus cycle, normalised: even address with byte-lane strobes, data on the lanes used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transaction {
    pub access: Access,
    pub fc: u8,
    pub addr: u32,
    pub uds: bool,
    pub lds: bool,
    pub data: u16,
}

#[derive(Clone, Debug)]
pub struct Case {
    pub name: String,
    pub initial: State,
    pub expected: State,
    pub cycles: u32,
    /// Completed bus cycles in order (idle cycles and aborted address-error cycles omitted).
    pub transactions: Vec<Transaction>,
    pub pc: PcConvention,
}

/// Loads every case of one file, choosing the format from its name.
pub fn load(path: &Path) -> Result<Vec<Case>, VectorError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    let io = |source| VectorError::Io {
        path: path.to_path_buf(),
        source,
    };
    let raw = std::fs::read(path).map_err(io)?;
    let bytes = if name.ends_with(".gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(io)?;
        out
    } else {
        raw
    };
    let stem = name.trim_end_matches(".gz");
    let fmt = |msg: String| VectorError::Format {
        path: path.to_path_buf(),
        msg,
    };
    if stem.ends_with(".json.bin") {
        parse_binary(&bytes).map_err(fmt)
    } else if stem.ends_with(".json") {
        parse_json(&bytes).map_err(fmt)
    } else {
        Err(VectorError::UnknownKind {
            path: path.to_path_buf(),
        })
    }
}

/// True for file names the runner understands.
pub fn is_vector_file(path: &Path) -> bool {
    let n = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let n = n.trim_end_matches(".gz");
    n.ends_with(".json.bin") || n.ends_with(".json")
}

struct Reader<'a> {
    b: &'a [u8],
    o: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.o.checked_add(n).filter(|&e| e <= self.b.len());
        let end = end.ok_or_else(|| format!("truncated at byte {}", self.o))?;
        let s = &self.b[self.o..end];
        self.o = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        let s = self.take(2)?;
        Ok(u16::from_le_bytes([s[0], s[1]]))
    }
    fn u32(&mut self) -> Result<u32, String> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn magic(&mut self, want: u32, what: &str) -> Result<(), String> {
        let got = self.u32()?;
        if got != want {
            return Err(format!("bad {what} magic {got:#x} at byte {}", self.o - 4));
        }
        Ok(())
    }
}

fn parse_binary(b: &[u8]) -> Result<Vec<Case>, String> {
    let mut r = Reader { b, o: 0 };
    r.magic(0x1A3F_5D71, "file")?;
    let n = r.u32()? as usize;
    let mut out = Vec::with_capacity(n.min(100_000));
    for _ in 0..n {
        r.u32()?;
        r.magic(0xABC1_2367, "test")?;
        r.u32()?;
        r.magic(0x89AB_CDEF, "name")?;
        let len = r.u32()? as usize;
        let name = String::from_utf8_lossy(r.take(len)?).into_owned();
        let initial = binary_state(&mut r)?;
        let expected = binary_state(&mut r)?;
        r.u32()?;
        r.magic(0x4567_89AB, "transactions")?;
        let cycles = r.u32()?;
        let count = r.u32()? as usize;
        let mut transactions = Vec::with_capacity(count.min(1024));
        for _ in 0..count {
            let kind = r.u8()?;
            r.u32()?;
            if kind == 0 {
                continue;
            }
            let fc = r.u32()? as u8;
            let addr = r.u32()?;
            let data = r.u32()? as u16;
            let uds = r.u32()? != 0;
            let lds = r.u32()? != 0;
            let access = match kind {
                1 => Access::Write,
                2 | 3 => Access::Read,
                4 | 5 => continue,
                k => return Err(format!("unknown transaction kind {k}")),
            };
            transactions.push(Transaction {
                access,
                fc,
                addr: addr & 0xFF_FFFE,
                uds,
                lds,
                data,
            });
        }
        out.push(Case {
            name,
            initial,
            expected,
            cycles,
            transactions,
            pc: PcConvention::NextPrefetch,
        });
    }
    Ok(out)
}

fn binary_state(r: &mut Reader<'_>) -> Result<State, String> {
    r.u32()?;
    r.magic(0x0123_4567, "state")?;
    let mut regs = [0u32; 19];
    for v in regs.iter_mut() {
        *v = r.u32()?;
    }
    let p0 = r.u32()? as u16;
    let p1 = r.u32()? as u16;
    let count = r.u32()? as usize;
    let mut ram = Vec::with_capacity(count.min(4096) * 2);
    for _ in 0..count {
        let addr = r.u32()?;
        let w = r.u16()?;
        ram.push((addr & 0xFF_FFFF, (w >> 8) as u8));
        ram.push((addr.wrapping_add(1) & 0xFF_FFFF, w as u8));
    }
    let mut d = [0; 8];
    d.copy_from_slice(&regs[0..8]);
    let mut a = [0; 7];
    a.copy_from_slice(&regs[8..15]);
    Ok(State {
        d,
        a,
        usp: regs[15],
        ssp: regs[16],
        sr: regs[17] as u16,
        pc: regs[18],
        prefetch: [p0, p1],
        ram,
    })
}

fn parse_json(b: &[u8]) -> Result<Vec<Case>, String> {
    let v: serde_json::Value = serde_json::from_slice(b).map_err(|e| e.to_string())?;
    let list = v.as_array().ok_or("top level is not an array")?;
    list.iter().map(json_case).collect()
}

fn json_u32(v: &serde_json::Value, key: &str) -> Result<u32, String> {
    v.get(key)
        .and_then(|x| x.as_u64())
        .map(|x| x as u32)
        .ok_or_else(|| format!("missing number {key}"))
}

fn json_state(v: &serde_json::Value) -> Result<State, String> {
    let mut s = State::default();
    for i in 0..8 {
        s.d[i] = json_u32(v, &format!("d{i}"))?;
    }
    for i in 0..7 {
        s.a[i] = json_u32(v, &format!("a{i}"))?;
    }
    s.usp = json_u32(v, "usp")?;
    s.ssp = json_u32(v, "ssp")?;
    s.sr = json_u32(v, "sr")? as u16;
    s.pc = json_u32(v, "pc")?;
    let pf = v
        .get("prefetch")
        .and_then(|p| p.as_array())
        .ok_or("missing prefetch")?;
    for (i, w) in pf.iter().take(2).enumerate() {
        s.prefetch[i] = w.as_u64().ok_or("bad prefetch")? as u16;
    }
    let ram = v
        .get("ram")
        .and_then(|p| p.as_array())
        .ok_or("missing ram")?;
    for e in ram {
        let pair = e
            .as_array()
            .filter(|p| p.len() == 2)
            .ok_or("bad ram entry")?;
        let addr = pair[0].as_u64().ok_or("bad ram address")? as u32;
        let val = pair[1].as_u64().ok_or("bad ram value")? as u8;
        s.ram.push((addr & 0xFF_FFFF, val));
    }
    Ok(s)
}

fn json_case(v: &serde_json::Value) -> Result<Case, String> {
    let name = v
        .get("name")
        .and_then(|n| n.as_str())
        .unwrap_or_default()
        .to_string();
    let initial = json_state(v.get("initial").ok_or("missing initial")?)?;
    let expected = json_state(v.get("final").ok_or("missing final")?)?;
    let cycles = json_u32(v, "length")?;
    let mut transactions = Vec::new();
    if let Some(list) = v.get("transactions").and_then(|t| t.as_array()) {
        for t in list {
            let t = t.as_array().ok_or("bad transaction")?;
            let kind = t.first().and_then(|k| k.as_str()).unwrap_or("n");
            let access = match kind {
                "r" | "t" => Access::Read,
                "w" => Access::Write,
                _ => continue,
            };
            let num = |i: usize| t.get(i).and_then(|x| x.as_u64()).unwrap_or(0) as u32;
            let fc = num(2) as u8;
            let addr = num(3);
            let size = t.get(4).and_then(|x| x.as_str()).unwrap_or(".w");
            let value = num(5);
            let (uds, lds, data) = if size == ".b" {
                if addr & 1 == 0 {
                    (true, false, (value as u16 & 0xFF) << 8)
                } else {
                    (false, true, value as u16 & 0xFF)
                }
            } else {
                (true, true, value as u16)
            };
            transactions.push(Transaction {
                access,
                fc,
                addr: addr & 0xFF_FFFE,
                uds,
                lds,
                data,
            });
        }
    }
    Ok(Case {
        name,
        initial,
        expected,
        cycles,
        transactions,
        pc: PcConvention::Instruction,
    })
}

/// Sparse 16 MiB RAM that records every bus cycle.
#[derive(Default)]
pub struct TestBus {
    pub mem: HashMap<u32, u8>,
    pub log: Vec<Transaction>,
    pub resets: u32,
}

impl TestBus {
    fn peek(&self, a: u32) -> u8 {
        self.mem.get(&(a & 0xFF_FFFF)).copied().unwrap_or(0)
    }
}

impl Bus for TestBus {
    fn read_byte(&mut self, fc: FunctionCode, addr: u32) -> Result<u8, BusError> {
        let v = self.peek(addr);
        let odd = addr & 1 != 0;
        let data = if odd { u16::from(v) } else { u16::from(v) << 8 };
        self.log.push(Transaction {
            access: Access::Read,
            fc: fc as u8,
            addr: addr & !1,
            uds: !odd,
            lds: odd,
            data,
        });
        Ok(v)
    }
    fn read_word(&mut self, fc: FunctionCode, addr: u32) -> Result<u16, BusError> {
        let v = u16::from(self.peek(addr)) << 8 | u16::from(self.peek(addr + 1));
        self.log.push(Transaction {
            access: Access::Read,
            fc: fc as u8,
            addr,
            uds: true,
            lds: true,
            data: v,
        });
        Ok(v)
    }
    fn write_byte(&mut self, fc: FunctionCode, addr: u32, value: u8) -> Result<(), BusError> {
        self.mem.insert(addr & 0xFF_FFFF, value);
        let odd = addr & 1 != 0;
        let data = if odd {
            u16::from(value)
        } else {
            u16::from(value) << 8
        };
        self.log.push(Transaction {
            access: Access::Write,
            fc: fc as u8,
            addr: addr & !1,
            uds: !odd,
            lds: odd,
            data,
        });
        Ok(())
    }
    fn write_word(&mut self, fc: FunctionCode, addr: u32, value: u16) -> Result<(), BusError> {
        self.mem.insert(addr & 0xFF_FFFF, (value >> 8) as u8);
        self.mem.insert((addr + 1) & 0xFF_FFFF, value as u8);
        self.log.push(Transaction {
            access: Access::Write,
            fc: fc as u8,
            addr,
            uds: true,
            lds: true,
            data: value,
        });
        Ok(())
    }
    fn reset_devices(&mut self) {
        self.resets += 1;
    }
}

/// Outcome of one case.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Registers, SR, PC, prefetch queue and RAM all match.
    pub state_ok: bool,
    pub cycles_ok: bool,
    pub bus_ok: bool,
    /// Human-readable differences (state first).
    pub diffs: Vec<String>,
}

fn state_of(cpu: &Cpu, conv: PcConvention) -> State {
    let r = cpu.regs();
    let mut a = [0; 7];
    a.copy_from_slice(&r.a[..7]);
    let pc = match conv {
        PcConvention::NextPrefetch => cpu.pc.wrapping_add(2),
        PcConvention::Instruction => cpu.pc.wrapping_sub(2),
    };
    State {
        d: r.d,
        a,
        usp: r.usp,
        ssp: r.ssp,
        sr: r.sr,
        pc,
        prefetch: [cpu.ir, cpu.irc],
        ram: Vec::new(),
    }
}

/// Runs one case on a fresh CPU and bus.
pub fn run_case(case: &Case) -> Outcome {
    let mut bus = TestBus::default();
    let mut cpu = Cpu::new(CpuModel::M68000);
    run_case_with(case, &mut cpu, &mut bus)
}

/// Runs one case reusing `cpu` and `bus` (cleared first) to avoid reallocation.
pub fn run_case_with(case: &Case, cpu: &mut Cpu, bus: &mut TestBus) -> Outcome {
    bus.mem.clear();
    bus.log.clear();
    let i = &case.initial;
    for &(a, v) in &i.ram {
        bus.mem.insert(a, v);
    }
    *cpu = Cpu::new(cpu.model());
    cpu.d = i.d;
    cpu.a[..7].copy_from_slice(&i.a);
    cpu.set_sr(0x2700);
    cpu.a[7] = i.ssp;
    cpu.other_sp = i.usp;
    cpu.set_sr(i.sr);
    cpu.pc = match case.pc {
        PcConvention::NextPrefetch => i.pc.wrapping_sub(2),
        PcConvention::Instruction => i.pc.wrapping_add(2),
    };
    cpu.ir = i.prefetch[0];
    cpu.irc = i.prefetch[1];
    cpu.refill = false;
    let clocks = cpu.step(bus);

    let mut out = Outcome::default();
    let got = state_of(cpu, case.pc);
    let e = &case.expected;
    let mut diff = |what: String, g: u32, w: u32| {
        if g != w {
            out.diffs.push(format!("{what}: got {g:#x}, want {w:#x}"));
        }
    };
    for k in 0..8 {
        diff(format!("d{k}"), got.d[k], e.d[k]);
    }
    for k in 0..7 {
        diff(format!("a{k}"), got.a[k], e.a[k]);
    }
    diff("usp".into(), got.usp, e.usp);
    diff("ssp".into(), got.ssp, e.ssp);
    diff("sr".into(), got.sr.into(), e.sr.into());
    diff("pc".into(), got.pc, e.pc);
    diff("ir".into(), got.prefetch[0].into(), e.prefetch[0].into());
    diff("irc".into(), got.prefetch[1].into(), e.prefetch[1].into());
    for &(a, v) in &e.ram {
        let g = bus.peek(a);
        if g != v {
            out.diffs
                .push(format!("ram[{a:#08x}]: got {g:#04x}, want {v:#04x}"));
        }
    }
    out.state_ok = out.diffs.is_empty();
    out.cycles_ok = clocks == case.cycles;
    if !out.cycles_ok {
        out.diffs
            .push(format!("cycles: got {clocks}, want {}", case.cycles));
    }
    out.bus_ok = bus.log.len() == case.transactions.len()
        && bus
            .log
            .iter()
            .zip(&case.transactions)
            .all(|(g, w)| same_cycle(g, w));
    if !out.bus_ok {
        let first = bus
            .log
            .iter()
            .zip(&case.transactions)
            .position(|(g, w)| !same_cycle(g, w))
            .unwrap_or(bus.log.len().min(case.transactions.len()));
        out.diffs.push(format!(
            "bus: {} cycles, want {}; first difference at #{first}: got {:?}, want {:?}",
            bus.log.len(),
            case.transactions.len(),
            bus.log.get(first),
            case.transactions.get(first)
        ));
    }
    out
}

fn same_cycle(g: &Transaction, w: &Transaction) -> bool {
    let lanes = (if w.uds { 0xFF00 } else { 0 }) | (if w.lds { 0x00FF } else { 0 });
    g.access == w.access
        && g.fc == w.fc
        && (g.addr & 0xFF_FFFE) == w.addr
        && g.uds == w.uds
        && g.lds == w.lds
        && (g.data & lanes) == (w.data & lanes)
}

/// Cases judged wrong upstream, skipped with the reason printed by the runner:
/// (file-name prefix, case name, reason).
pub const EXCLUSIONS: &[(&str, &str, &str)] = &[];

/// Per-file summary.
#[derive(Clone, Debug, Default)]
pub struct FileReport {
    pub path: PathBuf,
    pub total: usize,
    pub passed: usize,
    pub cycles_ok: usize,
    pub bus_ok: usize,
    pub excluded: Vec<(String, &'static str)>,
    /// (case name, differences) of the first failures (up to `max_failures`).
    pub failures: Vec<(String, Vec<String>)>,
    pub failed: usize,
}

/// Runs every case of one file.
pub fn run_file(path: &Path, max_failures: usize) -> Result<FileReport, VectorError> {
    let cases = load(path)?;
    let fname = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let mut rep = FileReport {
        path: path.to_path_buf(),
        ..Default::default()
    };
    let mut cpu = Cpu::new(CpuModel::M68000);
    let mut bus = TestBus::default();
    for case in &cases {
        if let Some((_, _, why)) = EXCLUSIONS
            .iter()
            .find(|(f, n, _)| fname.starts_with(f) && *n == case.name)
        {
            rep.excluded.push((case.name.clone(), why));
            continue;
        }
        rep.total += 1;
        let o = run_case_with(case, &mut cpu, &mut bus);
        rep.cycles_ok += usize::from(o.cycles_ok);
        rep.bus_ok += usize::from(o.bus_ok);
        if o.state_ok {
            rep.passed += 1;
        } else {
            rep.failed += 1;
            if rep.failures.len() < max_failures {
                rep.failures.push((case.name.clone(), o.diffs));
            }
        }
    }
    Ok(rep)
}

/// Expands files and directories into the sorted list of vector files.
pub fn collect(paths: &[PathBuf]) -> Result<Vec<PathBuf>, VectorError> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let rd = std::fs::read_dir(p).map_err(|source| VectorError::Io {
                path: p.clone(),
                source,
            })?;
            let mut v: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| is_vector_file(f))
                .collect();
            v.sort();
            out.extend(v);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}
