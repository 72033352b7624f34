//! Opt-in: a real Mac Plus ROM finds a SCSI disk at boot and reads its block 0.
//!
//! Set MACEMU_TEST_ROM to a Mac Plus ROM image and MACEMU_TEST_SCSI to a SCSI device image (a
//! disk initialized by HD SC Setup, with its partition map and driver). Apple's ROMs and disks
//! are copyrighted and never part of this repository; without both variables the test only says
//! that it skipped. The image is opened read-only: the test never changes it.

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use macemu_core::mac::MacPlus;
use macemu_core::scsi::partition::Ddm;
use macemu_core::scsi::ScsiDisk;
use macemu_core::storage::{Backing, FileBacking};

/// Passes reads through and records their offsets.
struct Recording {
    inner: FileBacking,
    reads: Arc<Mutex<Vec<(u64, usize)>>>,
}

impl Backing for Recording {
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.reads.lock().unwrap().push((offset, buf.len()));
        self.inner.read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.inner.write_at(offset, data)
    }
    fn read_only(&self) -> bool {
        self.inner.read_only()
    }
    fn name(&self) -> String {
        self.inner.name()
    }
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

mod real_rom;

#[test]
fn plus_rom_reads_block_0_of_the_scsi_disk_at_boot() {
    let (Some(rom_path), Some(disk_path)) =
        (env_path("MACEMU_TEST_ROM"), env_path("MACEMU_TEST_SCSI"))
    else {
        eprintln!(
            "SKIPPED: set MACEMU_TEST_ROM (a Mac Plus ROM) and MACEMU_TEST_SCSI (a SCSI device \
             image) to check that the ROM reads block 0 of the disk at boot"
        );
        return;
    };
    let rom = std::fs::read(&rom_path).expect("MACEMU_TEST_ROM is readable");
    let reads = Arc::new(Mutex::new(Vec::new()));
    let backing = Recording {
        inner: FileBacking::open(&disk_path, true).expect("MACEMU_TEST_SCSI opens"),
        reads: reads.clone(),
    };
    let disk = ScsiDisk::new(Box::new(backing)).expect("a SCSI device image");
    let mut mac = MacPlus::new(&rom, 4 << 20).expect("a Mac Plus ROM");
    mac.attach_scsi(0, disk).unwrap();
    // Opening the disk looked at its partition map; only the Mac's reads count from here.
    reads.lock().unwrap().clear();

    // The ROM tests memory, then looks for SCSI boot disks; allow 30 emulated seconds.
    let mut frames = 0;
    while frames < 60 * 30 {
        mac.run_frame();
        frames += 1;
        if reads.lock().unwrap().iter().any(|&(off, _)| off == 0) {
            break;
        }
    }
    let seen = |off: u64| reads.lock().unwrap().iter().any(|&(o, _)| o == off);
    assert!(
        seen(0),
        "the ROM never read block 0 of the SCSI disk in {frames} frames"
    );
    eprintln!(
        "block 0 read after {frames} frames ({:.1} emulated seconds)",
        frames as f64 / 60.15
    );
    // With a Macintosh driver in the DDM, the ROM reads it next and jumps into it.
    let mut block0 = vec![0u8; 512];
    FileBacking::open(&disk_path, true)
        .unwrap()
        .read_at(0, &mut block0)
        .unwrap();
    let driver = Ddm::parse(&block0).and_then(|d| d.drivers.into_iter().find(|e| e.kind == 1));
    if let Some(driver) = driver {
        let at = u64::from(driver.block) * 512;
        for _ in 0..60 * 5 {
            if seen(at) {
                break;
            }
            mac.run_frame();
        }
        assert!(
            seen(at),
            "the ROM did not load the driver at block {}",
            driver.block
        );
        eprintln!("driver at block {} loaded", driver.block);
    }
}

/// The whole boot from the SCSI disk to the Finder (System 6 or 7 on a device image the way HD SC
/// Setup writes it), timed: the boot benchmark. The image is copied first, so the Mac may write
/// to it without touching the original.
#[test]
fn real_rom_boots_a_scsi_system_disk() {
    let (Some(rom_path), Some(disk_path)) =
        (env_path("MACEMU_TEST_ROM"), env_path("MACEMU_TEST_SCSI"))
    else {
        eprintln!(
            "SKIPPED: set MACEMU_TEST_ROM (a Mac Plus ROM) and MACEMU_TEST_SCSI (a bootable SCSI \
             device image) to boot it to the Finder"
        );
        return;
    };
    let rom = std::fs::read(&rom_path).expect("MACEMU_TEST_ROM is readable");
    let copy = std::env::temp_dir().join(format!("macemu-scsi-boot-{}.hda", std::process::id()));
    std::fs::copy(&disk_path, &copy).expect("copy MACEMU_TEST_SCSI");
    let disk = ScsiDisk::new(Box::new(FileBacking::open(&copy, false).unwrap()))
        .expect("a SCSI device image");
    let mut mac = MacPlus::new(&rom, 4 << 20).expect("a Mac Plus ROM");
    mac.attach_scsi(0, disk).unwrap();
    let (shown, wall) = real_rom::boot_to_finder(&mut mac);
    let shot = std::env::temp_dir().join(format!("macemu-scsi-boot-{}.pbm", std::process::id()));
    real_rom::write_pbm(&shot, mac.screen());
    drop(mac);
    let _ = std::fs::remove_file(&copy);
    let frame = shown.unwrap_or_else(|| {
        panic!(
            "no menu bar within {} s of emulated time; last screen in {}",
            real_rom::MAX_FRAMES / 60,
            shot.display()
        )
    });
    real_rom::report("SCSI boot", frame, wall);
}
