//! `macemu-cli disk`: blank SCSI device images, and what an image holds.

use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use macemu_core::scsi::partition::{self, driver_checksum, read_map, volume_at};
use macemu_core::storage::{Backing, FileBacking, OpenError};

#[derive(Args)]
pub struct DiskArgs {
    #[command(subcommand)]
    command: DiskCommand,
}

#[derive(Subcommand)]
enum DiskCommand {
    /// Create a blank SCSI disk image (all zeros) for the Mac to initialize with HD SC Setup.
    Create {
        /// Size in bytes, or with a K, M or G suffix (powers of 1024); a multiple of 512.
        #[arg(long, value_parser = parse_size)]
        size: u64,
        /// Replace an existing file (never one an emulator has open).
        #[arg(long)]
        force: bool,
        file: PathBuf,
    },
    /// Describe a SCSI disk image: driver descriptor map, partitions and volume names.
    Info { file: PathBuf },
}

/// The largest disk 32-bit block numbers reach: 2 TiB.
const MAX_SIZE: u64 = 512 << 32;

/// "40M", "512K", "1G", "20971520": bytes, a positive multiple of 512.
fn parse_size(s: &str) -> Result<u64, String> {
    let bytes = macemu::emulator::prefs::parse_size(s)
        .ok_or_else(|| format!("{s}: not a size (e.g. 40M, 512K, 1G, or bytes)"))?;
    if bytes > MAX_SIZE {
        return Err(format!(
            "{s}: larger than the 2 TiB a SCSI disk can address"
        ));
    }
    if bytes == 0 || bytes % 512 != 0 {
        return Err(format!(
            "{s}: a SCSI disk holds whole 512-byte blocks; {bytes} bytes is not a positive \
             multiple of 512"
        ));
    }
    Ok(bytes)
}

fn create(file: &Path, size: u64, force: bool) -> anyhow::Result<()> {
    let f = if force {
        // Never truncate an image an emulator is writing to.
        if let Err(e @ OpenError::Locked { .. }) = FileBacking::open(file, false) {
            bail!("{e}");
        }
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(file)
    } else {
        OpenOptions::new().write(true).create_new(true).open(file)
    };
    let f = f.map_err(|e| {
        if e.kind() == ErrorKind::AlreadyExists {
            anyhow::anyhow!(
                "{}: already exists (use --force to replace it)",
                file.display()
            )
        } else {
            anyhow::anyhow!("{}: {e}", file.display())
        }
    })?;
    f.set_len(size)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("{}: cannot size the image", file.display()))?;
    Ok(())
}

fn describe(file: &Path) -> anyhow::Result<String> {
    let mut b = FileBacking::open(file, true).with_context(|| "cannot open the image")?;
    let len = b.len();
    let mut out = String::new();
    writeln!(out, "{}: {len} bytes", file.display())?;
    if len == 0 || len % 512 != 0 {
        writeln!(
            out,
            "not a SCSI disk image: the size is not a positive multiple of 512 bytes"
        )?;
        return Ok(out);
    }
    writeln!(out, "{} blocks of 512 bytes", len / 512)?;
    let Some(map) = read_map(&mut b) else {
        match volume_at(&mut b, 0) {
            Some(v) => writeln!(
                out,
                "no partition map; a bare {} volume \"{}\" starts at block 0 (the Plus ROM \
                 boots SCSI disks only with a partition map and driver)",
                v.kind, v.name
            )?,
            None => writeln!(
                out,
                "blank: no partition map and no volume; initialize it on the Mac with HD SC \
                 Setup"
            )?,
        }
        return Ok(out);
    };
    let d = &map.ddm;
    writeln!(
        out,
        "driver descriptor map: block size {}, {} blocks, {} driver(s)",
        d.block_size,
        d.block_count,
        d.drivers.len()
    )?;
    for e in &d.drivers {
        let kind = if e.kind == 1 { " (Macintosh)" } else { "" };
        writeln!(
            out,
            "  driver at block {}, {} blocks, type {}{kind}",
            e.block, e.blocks, e.kind
        )?;
    }
    writeln!(out, "partition map: {} entries", map.partitions.len())?;
    for (i, p) in map.partitions.iter().enumerate() {
        write!(
            out,
            "  {:>2} {:<24} \"{}\" blocks {}+{} status ${:08X}",
            i + 1,
            p.kind,
            p.name,
            p.start,
            p.blocks,
            p.status
        )?;
        if p.kind.starts_with("Apple_Driver") && p.boot_size > 0 {
            // Drivers are small; a size beyond 1 MiB is not worth reading.
            let mut code = vec![0u8; p.boot_size.min(1 << 20) as usize];
            let sum = b
                .read_at(u64::from(p.start) * 512, &mut code)
                .ok()
                .map(|()| driver_checksum(&code));
            let stored = (p.boot_checksum & 0xFFFF) as u16;
            match sum {
                Some(s) if s == stored => {
                    write!(out, ", driver {} bytes, checksum ${s:04X} ok", p.boot_size)?
                }
                Some(s) => write!(
                    out,
                    ", driver {} bytes, checksum ${stored:04X} but the code sums to ${s:04X}",
                    p.boot_size
                )?,
                None => write!(out, ", driver {} bytes past the end", p.boot_size)?,
            }
        }
        if p.kind.eq_ignore_ascii_case("Apple_HFS") {
            match volume_at(&mut b, u64::from(p.start) * 512) {
                Some(v) => write!(out, ", {} volume \"{}\"", v.kind, v.name)?,
                None => write!(out, ", no volume")?,
            }
        }
        writeln!(out)?;
    }
    if let Some(name) = partition::volume_name(&mut b) {
        writeln!(out, "volume: {name}")?;
    }
    Ok(out)
}

pub fn run(args: DiskArgs) -> anyhow::Result<()> {
    match args.command {
        DiskCommand::Create { size, force, file } => {
            create(&file, size, force)?;
            println!(
                "{}: blank SCSI disk of {size} bytes ({} blocks); attach it and initialize it \
                 with HD SC Setup",
                file.display(),
                size / 512
            );
        }
        DiskCommand::Info { file } => print!("{}", describe(&file)?),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("macemu-cli-disk-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&p);
        p
    }

    #[test]
    fn sizes_take_suffixes_and_whole_blocks() {
        assert_eq!(parse_size("40M"), Ok(40 * 1024 * 1024));
        assert_eq!(parse_size("512k"), Ok(512 * 1024));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("1024"), Ok(1024));
        for bad in ["0", "1000", "12X", "M", "", "-5M", "99999999999G"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn create_makes_zeros_and_never_overwrites_without_force() {
        let p = temp("create");
        create(&p, 64 * 1024, false).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(bytes.len(), 64 * 1024);
        assert!(bytes.iter().all(|&b| b == 0));
        let err = create(&p, 1024, false).unwrap_err().to_string();
        assert!(err.contains("--force"), "{err}");
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 64 * 1024);
        create(&p, 1024, true).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 1024);
        // An image an emulator holds open for writing is never replaced.
        let held = FileBacking::open(&p, false).unwrap();
        assert!(create(&p, 2048, true).is_err());
        drop(held);
        assert!(describe(&p).unwrap().contains("blank"));
        std::fs::remove_file(&p).unwrap();
    }
}
