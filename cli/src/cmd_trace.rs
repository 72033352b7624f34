//! `macemu-cli trace`: the first instructions of a ROM run on the Mac Plus, disassembled.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use macemu::emulator::{read_rom_file, DEMO_ROM};
use macemu_core::cpu::RunState;
use macemu_core::mac::MacPlus;
use macemu_core::machine::PLUS;

use crate::cmd_emulate::{parse_size, ram_for};

#[derive(Args, Debug)]
pub struct TraceArgs {
    /// ROM image (a Mac Plus's is 128 KiB). Without it the built-in demo ROM runs.
    #[arg(long, value_name = "PATH")]
    rom: Option<PathBuf>,
    /// Steps to show.
    #[arg(short = 'n', long = "count", default_value_t = 32)]
    count: u64,
    /// RAM size: 1M, 2M, 2.5M or 4M.
    #[arg(long, value_parser = parse_size)]
    ram: Option<usize>,
}

/// One line per step: the PC, the instruction's words, its disassembly, the clocks the step
/// took (bus wait states included) and the clock count at its end. A step that entered an
/// exception or an interrupt instead, or idled stopped or halted, says so.
pub fn run(args: TraceArgs) -> anyhow::Result<()> {
    let rom = match &args.rom {
        Some(path) => read_rom_file(path)?,
        None => DEMO_ROM.to_vec(),
    };
    let ram = ram_for(&PLUS, args.ram).map_err(|e| anyhow::anyhow!(e))?;
    let mut mac = MacPlus::new(&rom, ram).with_context(|| match &args.rom {
        Some(p) => p.display().to_string(),
        None => "demo ROM".into(),
    })?;
    let out = std::io::stdout();
    let mut out = out.lock();
    for _ in 0..args.count {
        let pc = mac.cpu().regs().pc;
        let state = mac.cpu().run_state();
        let done = mac.cpu().instructions();
        let ins = mac.disassemble(pc);
        let clocks = mac.step();
        let (words, text) = match ins {
            Some(ins) => {
                let words: Vec<String> = ins.words().iter().map(|w| format!("{w:04x}")).collect();
                (words.join(" "), ins.to_string())
            }
            None => (String::new(), "(not in RAM or ROM)".into()),
        };
        let text = match state {
            RunState::Stopped => "(stopped)".to_string(),
            RunState::Halted => "(halted)".to_string(),
            RunState::Running if mac.cpu().instructions() == done => format!(
                "(exception or interrupt instead of {text}; continues at {:06x})",
                mac.cpu().regs().pc
            ),
            RunState::Running => text,
        };
        writeln!(
            out,
            "{pc:06x}  {words:<24}  {text:<36}  {clocks:>3}  {:>10}",
            mac.cycles()
        )?;
    }
    out.flush()?;
    Ok(())
}
