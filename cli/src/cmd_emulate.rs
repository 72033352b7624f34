//! `macemu-cli emulate`: the emulator process of the v4 architecture.

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use macemu::emulator::{mac_time_now, read_rom_file, Emulator, EmulatorConfig, Speed, DEMO_ROM};
use macemu_core::rom::RomKind;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct EmulateArgs {
    /// Mac Plus ROM image (128 KiB). Without it the built-in demo ROM runs.
    #[arg(long, value_name = "PATH")]
    rom: Option<PathBuf>,
    /// RAM size: 1M, 2M or 4M (bytes are accepted too).
    #[arg(long, default_value = "4M", value_parser = parse_ram)]
    ram: usize,
    /// File keeping the 256 bytes of parameter RAM between runs (created when missing).
    #[arg(long, value_name = "PATH")]
    xpram: Option<PathBuf>,
    /// `real`: 7.8336 MHz and 60.15 frames a second; `max`: as fast as the host allows.
    #[arg(long, value_enum, default_value_t = SpeedArg::Real)]
    speed: SpeedArg,
    /// Write this process's pid to PATH (removed at exit).
    #[arg(long, value_name = "PATH")]
    pid_file: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum SpeedArg {
    Real,
    Max,
}

fn parse_ram(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let (num, mult) = match t.strip_suffix(['M', 'm']) {
        Some(n) => (n, 1u64 << 20),
        None => match t.strip_suffix(['K', 'k']) {
            Some(n) => (n, 1u64 << 10),
            None => (t, 1),
        },
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("not a size: {s:?} (try 4M)"))?;
    let bytes = (v * mult as f64) as usize;
    const ALLOWED: [usize; 3] = [1 << 20, 2 << 20, 4 << 20];
    if ALLOWED.contains(&bytes) {
        Ok(bytes)
    } else {
        Err(format!(
            "macemu's Mac Plus has 1M, 2M or 4M of RAM, not {s}"
        ))
    }
}

pub fn run(args: EmulateArgs) -> anyhow::Result<()> {
    let rom = match &args.rom {
        Some(path) => read_rom_file(path)?,
        None => DEMO_ROM.to_vec(),
    };
    let config = EmulatorConfig {
        rom,
        ram_size: args.ram,
        xpram_path: args.xpram.clone(),
        speed: match args.speed {
            SpeedArg::Real => Speed::Real,
            SpeedArg::Max => Speed::Max,
        },
        pid: std::process::id(),
        rtc_seconds: mac_time_now(),
    };

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handlers")?;
    }

    let emu = Emulator::start(config).map_err(|e| match &args.rom {
        Some(p) => anyhow::anyhow!("{}: {e}", p.display()),
        None => anyhow::anyhow!("{e}"),
    })?;
    if let Some(path) = &args.pid_file {
        std::fs::write(path, format!("{}\n", emu.pid()))
            .with_context(|| format!("writing pid file {}", path.display()))?;
    }
    let rom_desc = match emu.rom_kind() {
        RomKind::MacPlus { revision, checksum } => {
            format!("Mac Plus ROM v{revision} ({checksum:08X})")
        }
        RomKind::Custom { checksum } if args.rom.is_none() => {
            format!("built-in demo ROM ({checksum:08X})")
        }
        RomKind::Custom { checksum } => format!("custom ROM ({checksum:08X})"),
    };
    println!(
        "macemu emulator running: {rom_desc}, {} KiB RAM",
        args.ram >> 10
    );
    println!("pid:    {}", emu.pid());
    println!("shm:    {}", emu.shm_name());
    println!("socket: {}", emu.socket_path().display());
    tracing::info!(pid = emu.pid(), "emulator started; stop with Ctrl-C");

    let mut failed = false;
    while !stop.load(Ordering::Relaxed) {
        if !emu.is_running() {
            failed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    tracing::info!("stopping");
    emu.stop();
    if let Some(path) = &args.pid_file {
        let _ = std::fs::remove_file(path);
    }
    if failed {
        bail!("an emulator thread ended unexpectedly");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_ram;

    #[test]
    fn ram_sizes() {
        assert_eq!(parse_ram("4M"), Ok(4 << 20));
        assert_eq!(parse_ram("2M"), Ok(2 << 20));
        assert!(parse_ram("2.5M").is_err());
        assert_eq!(parse_ram("1048576"), Ok(1 << 20));
        assert!(parse_ram("3M").is_err());
        assert!(parse_ram("lots").is_err());
    }
}
