//! `macemu-cli emulate`: the emulator process of the v4 architecture.

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use macemu::emulator::drives::{place_disks, DiskSpec};
use macemu::emulator::prefs::{self, Prefs};
use macemu::emulator::{mac_time_now, read_rom_file, Emulator, EmulatorConfig, Speed, DEMO_ROM};
use macemu_core::machine::{Model, MODELS};
use macemu_core::rom::RomKind;
use macemu_core::storage::DriveSlot;
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
    /// RAM size the model takes: 1M, 2M, 2.5M or 4M on a Plus (bytes are accepted too); default the
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
    /// A floppy image (raw 400K/800K, raw with tags, DiskCopy 4.2). Repeatable: the internal
    /// drive first, then the external one.
    #[arg(long, value_name = "PATH")]
    floppy: Vec<PathBuf>,
    /// A SCSI device image (with a partition map and driver, as HD SC Setup writes them; see
    /// `macemu-cli disk create`). Repeatable; `ID=PATH` picks the SCSI ID (0-6), else the next
    /// free one from 0.
    #[arg(long, value_name = "[ID=]PATH")]
    scsi: Vec<String>,
    /// Open every disk read-only (the Mac sees it write-protected).
    #[arg(long)]
    read_only: bool,
    /// BasiliskII-style prefs file: `rom`, `ramsize`, `floppy`, `disk`, `scsi0`..`scsi6` lines
    /// (a path starting with `*` is read-only). Command-line flags come first.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// Drives for the command line's and the prefs file's disks, in that order.
fn disk_specs(args: &EmulateArgs, prefs: &Prefs) -> anyhow::Result<Vec<DiskSpec>> {
    let mut specs: Vec<DiskSpec> = Vec::new();
    let taken = |specs: &[DiskSpec], s: DriveSlot| specs.iter().any(|d| d.slot == s);
    let floppies = args.floppy.iter().map(|p| (p.clone(), args.read_only));
    let pref_floppies = prefs
        .floppies
        .iter()
        .map(|d| (d.path.clone(), d.read_only || args.read_only));
    for (path, read_only) in floppies.chain(pref_floppies) {
        let slot = (0..2)
            .map(DriveSlot::Floppy)
            .find(|s| !taken(&specs, *s))
            .with_context(|| format!("{}: both floppy drives are taken", path.display()))?;
        specs.push(DiskSpec {
            slot,
            path,
            read_only,
        });
    }
    let mut scsi: Vec<(Option<u8>, PathBuf, bool)> = Vec::new();
    for s in &args.scsi {
        let (id, path) = parse_scsi(s).map_err(|e| anyhow::anyhow!(e))?;
        scsi.push((id, path, args.read_only));
    }
    for (id, d) in prefs.scsi.iter().enumerate() {
        if let Some(d) = d {
            scsi.push((
                Some(id as u8),
                d.path.clone(),
                d.read_only || args.read_only,
            ));
        }
    }
    // Explicit IDs first, so that `ID=` entries are never displaced by automatic ones.
    scsi.sort_by_key(|(id, _, _)| id.is_none());
    for (id, path, read_only) in scsi {
        let slot = match id {
            Some(id) if taken(&specs, DriveSlot::Scsi(id)) => {
                bail!("{}: SCSI ID {id} is given twice", path.display())
            }
            Some(id) => DriveSlot::Scsi(id),
            None => (0..7)
                .map(DriveSlot::Scsi)
                .find(|s| !taken(&specs, *s))
                .with_context(|| format!("{}: all seven SCSI IDs are taken", path.display()))?,
        };
        specs.push(DiskSpec {
            slot,
            path,
            read_only,
        });
    }
    let disks = prefs
        .disks
        .iter()
        .map(|d| (d.path.clone(), d.read_only || args.read_only));
    place_disks(&mut specs, disks).map_err(|e| anyhow::anyhow!(e))?;
    Ok(specs)
}

/// `ID=PATH` or `PATH`.
fn parse_scsi(s: &str) -> Result<(Option<u8>, PathBuf), String> {
    if let Some((id, path)) = s.split_once('=') {
        if let Ok(id) = id.parse::<u8>() {
            if id > 6 {
                return Err(format!("--scsi {s}: SCSI IDs are 0 to 6 (7 is the Mac)"));
            }
            return Ok((Some(id), PathBuf::from(path)));
        }
    }
    Ok((None, PathBuf::from(s)))
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

pub(crate) fn parse_size(s: &str) -> Result<usize, String> {
    prefs::parse_size(s)
        .filter(|&b| b > 0)
        .and_then(|b| usize::try_from(b).ok())
        .ok_or_else(|| format!("not a size: {s:?} (try 4M, 2.5M or bytes)"))
}

/// The RAM size to build `model` with: `requested` when the model takes it, else its default.
pub(crate) fn ram_for(model: &Model, requested: Option<usize>) -> Result<usize, String> {
    let Some(bytes) = requested else {
        return Ok(model.default_ram());
    };
    if model.ram_sizes.contains(&bytes) {
        return Ok(bytes);
    }
    let mut sorted = model.ram_sizes.to_vec();
    sorted.sort();
    let sizes: Vec<String> = sorted
        .iter()
        .map(|&b| format!("{}M", b as f64 / f64::from(1 << 20)))
        .collect();
    Err(format!(
        "the {} takes {} of RAM, not {} bytes",
        model.description,
        sizes.join(", "),
        bytes
    ))
}

pub fn run(mut args: EmulateArgs) -> anyhow::Result<()> {
    let prefs = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading prefs {}", path.display()))?;
            let p = Prefs::parse(&text).with_context(|| format!("prefs {}", path.display()))?;
            if !p.ignored.is_empty() {
                tracing::debug!(keys = ?p.ignored, "prefs keys this machine does not use");
            }
            p
        }
        None => Prefs::default(),
    };
    if args.rom.is_none() {
        args.rom = prefs.rom.clone();
    }
    if args.ram.is_none() {
        args.ram = prefs.ram_size.map(|b| b as usize);
    }
    let disks = disk_specs(&args, &prefs)?;
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
        disks,
    };

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handlers")?;
    }

    let emu_disks = config.disks.clone();
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
    for d in &emu_disks {
        let ro = if d.read_only { " (read-only)" } else { "" };
        println!("{}: {}{ro}", d.slot, d.path.display());
    }
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
        assert_eq!(ram("2.5M"), Ok(5 << 19));
        assert_eq!(ram("1048576"), Ok(1 << 20));
        assert!(ram("3M").unwrap_err().contains("1M, 2M, 2.5M, 4M"));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("-1M").is_err());
        assert_eq!(ram_for(plus, None), Ok(4 << 20));
    }

    fn args(cli: &[&str]) -> EmulateArgs {
        use clap::Parser;
        #[derive(Parser)]
        struct T {
            #[command(flatten)]
            a: EmulateArgs,
        }
        let mut v = vec!["t"];
        v.extend_from_slice(cli);
        T::parse_from(v).a
    }

    #[test]
    fn disks_from_flags_and_prefs_fill_the_drives() {
        let dir = std::env::temp_dir().join(format!("macemu-emulate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fl = dir.join("f.image");
        let hd = dir.join("hd.img");
        std::fs::write(&fl, vec![0u8; 819_200]).unwrap();
        std::fs::write(&hd, vec![0u8; 1 << 20]).unwrap();
        let (f, h) = (fl.to_str().unwrap(), hd.to_str().unwrap());
        let a = args(&["--floppy", f, "--scsi", h, "--scsi", &format!("0={h}")]);
        let prefs = Prefs::parse(&format!("floppy *{f}\ndisk {h}\nscsi5 {h}\n")).unwrap();
        let got: Vec<(DriveSlot, bool)> = disk_specs(&a, &prefs)
            .unwrap()
            .iter()
            .map(|d| (d.slot, d.read_only))
            .collect();
        assert_eq!(
            got,
            [
                (DriveSlot::Floppy(0), false),
                (DriveSlot::Floppy(1), true),
                (DriveSlot::Scsi(0), false),
                (DriveSlot::Scsi(5), false),
                (DriveSlot::Scsi(1), false),
                (DriveSlot::Scsi(2), false),
            ]
        );
        let ro = args(&["--read-only", "--floppy", f]);
        assert!(disk_specs(&ro, &Prefs::default()).unwrap()[0].read_only);
        let three = args(&["--floppy", f, "--floppy", f, "--floppy", f]);
        assert!(disk_specs(&three, &Prefs::default()).is_err());
        let twice = args(&["--scsi", &format!("2={h}"), "--scsi", &format!("2={h}")]);
        assert!(disk_specs(&twice, &Prefs::default()).is_err());
        assert!(parse_scsi("7=/x").is_err());
        assert_eq!(parse_scsi("/a=b").unwrap(), (None, PathBuf::from("/a=b")));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn models_by_name() {
        assert_eq!(parse_model("Plus").unwrap().name, "plus");
        assert!(parse_model("lisa").unwrap_err().contains("known: plus"));
    }
}
