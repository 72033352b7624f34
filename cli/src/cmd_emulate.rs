//! `macemu-cli emulate`: the emulator process of the v4 architecture.

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use macemu::emulator::{mac_time_now, read_rom_file, Emulator, EmulatorConfig, Speed, DEMO_ROM};
use macemu_core::machine::{Model, MODELS};
use macemu_core::rom::RomKind;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct EmulateArgs {
    /// The machine: `plus` (Macintosh Plus).
    #[arg(long, default_value = "plus", value_parser = parse_model)]
    model: &'static Model,
    /// ROM image of the model (a Mac Plus's is 128 KiB). Without it the built-in demo ROM runs.
    #[arg(long, value_name = "PATH")]
    rom: Option<PathBuf>,
    /// RAM size the model takes: 1M, 2M or 4M on a Plus (bytes are accepted too); default the
    /// model's largest.
    #[arg(long, value_parser = parse_size)]
    ram: Option<usize>,
    /// File keeping the 256 bytes of parameter RAM between runs (created when missing).
    #[arg(long, value_name = "PATH")]
    xpram: Option<PathBuf>,
    /// `real`: the model's own clock and frame rate (a Plus: 7.8336 MHz, 60.15 frames a second);
    /// `max`: as fast as the host allows.
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

fn parse_model(s: &str) -> Result<&'static Model, String> {
    Model::by_name(s).ok_or_else(|| {
        let names: Vec<&str> = MODELS.iter().map(|m| m.name).collect();
        format!("no model {s:?}; known: {}", names.join(", "))
    })
}

fn parse_size(s: &str) -> Result<usize, String> {
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
    if !(v.is_finite() && v > 0.0) {
        return Err(format!("not a size: {s:?} (try 4M)"));
    }
    Ok((v * mult as f64) as usize)
}

/// The RAM size to build `model` with: `requested` when the model takes it, else its default.
fn ram_for(model: &Model, requested: Option<usize>) -> Result<usize, String> {
    let Some(bytes) = requested else {
        return Ok(model.default_ram());
    };
    if model.ram_sizes.contains(&bytes) {
        return Ok(bytes);
    }
    let mut sizes: Vec<String> = model
        .ram_sizes
        .iter()
        .map(|b| format!("{}M", b >> 20))
        .collect();
    sizes.sort();
    Err(format!(
        "the {} takes {} of RAM, not {} bytes",
        model.description,
        sizes.join(", "),
        bytes
    ))
}

pub fn run(args: EmulateArgs) -> anyhow::Result<()> {
    let rom = match &args.rom {
        Some(path) => read_rom_file(path)?,
        None => DEMO_ROM.to_vec(),
    };
    let ram_size = ram_for(args.model, args.ram).map_err(|e| anyhow::anyhow!(e))?;
    let config = EmulatorConfig {
        model: args.model,
        rom,
        ram_size,
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
        "macemu emulator running: {}, {rom_desc}, {} KiB RAM",
        args.model.name,
        ram_size >> 10
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
    use super::*;

    #[test]
    fn ram_sizes() {
        let plus = parse_model("plus").unwrap();
        let ram = |s: &str| parse_size(s).and_then(|b| ram_for(plus, Some(b)));
        assert_eq!(ram("4M"), Ok(4 << 20));
        assert_eq!(ram("2M"), Ok(2 << 20));
        assert!(ram("2.5M").is_err());
        assert_eq!(ram("1048576"), Ok(1 << 20));
        assert!(ram("3M").unwrap_err().contains("1M, 2M, 4M"));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("-1M").is_err());
        assert_eq!(ram_for(plus, None), Ok(4 << 20));
    }

    #[test]
    fn models_by_name() {
        assert_eq!(parse_model("Plus").unwrap().name, "plus");
        assert!(parse_model("lisa").unwrap_err().contains("known: plus"));
    }
}
