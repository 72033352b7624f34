//! `cpu-test`: run 68000 single-step vector files; `cpu-bench`: time the cpu68k workload.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use macemu_core::cpu::flat::{FlatBus, StopRun};
use macemu_core::cpu::vectors;
use macemu_core::cpu::{Cpu, CpuModel, RunState};

#[derive(Args)]
pub struct CpuTestArgs {
    /// Vector files (.json.bin[.gz] from the m68000 set, .json[.gz] in Tom Harte's format) or
    /// directories holding them.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Failing cases to show per file, with their first differences.
    #[arg(long, default_value_t = 3)]
    pub show: usize,
}

#[derive(Args)]
pub struct CpuBenchArgs {
    /// Raw memory image copied to address 0 (e.g. ../shared/bench/cpu68k/cpu68k.bin).
    pub image: PathBuf,
    /// Stop after this many 68000 clocks even without STOP.
    #[arg(long, default_value_t = 10_000_000_000)]
    pub max_cycles: u64,
}

pub fn run_test(args: CpuTestArgs) -> anyhow::Result<()> {
    let files = vectors::collect(&args.paths)?;
    if files.is_empty() {
        anyhow::bail!("no vector files under {:?}", args.paths);
    }
    let out = std::io::stdout();
    let mut out = out.lock();
    let (mut passed, mut failed, mut cycles_ok, mut bus_ok, mut excluded) =
        (0usize, 0usize, 0usize, 0usize, 0usize);
    let mut bad_files = 0usize;
    for file in &files {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let rep = match vectors::run_file(file, args.show) {
            Ok(r) => r,
            Err(e) => {
                writeln!(out, "ERROR {name}: {e}")?;
                bad_files += 1;
                continue;
            }
        };
        passed += rep.passed;
        failed += rep.failed;
        cycles_ok += rep.cycles_ok;
        bus_ok += rep.bus_ok;
        excluded += rep.excluded.len();
        let status = if rep.failed == 0 { "ok  " } else { "FAIL" };
        writeln!(
            out,
            "{status} {name}: {}/{} state, {} cycles, {} bus{}",
            rep.passed,
            rep.total,
            rep.cycles_ok,
            rep.bus_ok,
            if rep.excluded.is_empty() {
                String::new()
            } else {
                format!(", {} excluded", rep.excluded.len())
            }
        )?;
        for (case, why) in &rep.excluded {
            writeln!(out, "     excluded {case}: {why}")?;
        }
        for (case, diffs) in &rep.failures {
            writeln!(out, "     {case}: {}", diffs.join("; "))?;
        }
    }
    let total = passed + failed;
    writeln!(
        out,
        "cycle counts matched {cycles_ok}/{total}, bus cycles matched {bus_ok}/{total}, excluded {excluded}"
    )?;
    writeln!(out, "{passed} passed, {failed} failed")?;
    out.flush()?;
    if failed > 0 || bad_files > 0 {
        std::process::exit(1);
    }
    Ok(())
}

pub fn run_bench(args: CpuBenchArgs) -> anyhow::Result<()> {
    let image =
        std::fs::read(&args.image).map_err(|e| anyhow::anyhow!("{}: {e}", args.image.display()))?;
    if image.len() < 8 {
        anyhow::bail!("{}: too short for reset vectors", args.image.display());
    }
    let mut bus = FlatBus::new();
    bus.load(&image);
    let mut cpu = Cpu::new(CpuModel::M68000);
    let c0 = thread_cpu_seconds();
    let t0 = Instant::now();
    cpu.reset(&mut bus);
    let cycles = cpu.run(&mut bus, args.max_cycles);
    let secs = t0.elapsed().as_secs_f64();
    let cpu_secs = thread_cpu_seconds().zip(c0).map(|(b, a)| b - a);
    let r = StopRun {
        d0: cpu.regs().d[0],
        instructions: cpu.instructions(),
        cycles,
        state: cpu.run_state(),
    };
    println!("D0: {:#010X}", r.d0);
    println!("instructions: {}", group(r.instructions));
    println!("cycles: {}", group(r.cycles));
    println!("seconds: {secs:.3}");
    println!("MIPS: {:.1}", r.instructions as f64 / secs / 1e6);
    if let Some(c) = cpu_secs {
        // On a loaded machine wall time includes waiting for a core; CPU time does not.
        println!(
            "CPU seconds: {c:.3} ({:.1} MIPS of CPU time)",
            r.instructions as f64 / c / 1e6
        );
    }
    println!("emulated 68000 MHz: {:.1}", r.cycles as f64 / secs / 1e6);
    if r.state != RunState::Stopped {
        anyhow::bail!("the program did not reach STOP (state {:?})", r.state);
    }
    Ok(())
}

/// CPU time of the calling thread (Linux `schedstat`), if available.
fn thread_cpu_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e9)
}

fn group(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}
