//! Opt-in: a real Mac Plus ROM boots a real system floppy through the IWM.
//!
//! `MACEMU_TEST_ROM=<Plus ROM> MACEMU_TEST_FLOPPY=<System 800K/400K image>` runs it; without
//! them the test says it was skipped. Apple's ROMs and disks are copyrighted and never part of
//! the repository. The floppy is copied to a temporary file first, so the Mac may write to it
//! (the Finder does) without touching the original.
//!
//! Proof of reading: the ROM shows a flashing "?" disk until it has read a bootable disk; the
//! Finder's menu bar (rows 0–18 white, row 19 a black line across the screen) can only appear
//! after the boot blocks, the System file and the Finder were read from the floppy.

mod real_rom;

use macemu_core::floppy::FloppyImage;
use macemu_core::mac::MacPlus;
use macemu_core::storage::FileBacking;
use real_rom::{boot_to_finder, report, write_pbm, MAX_FRAMES};

#[test]
fn real_rom_boots_a_system_floppy() {
    let (Ok(rom), Ok(floppy)) = (
        std::env::var("MACEMU_TEST_ROM"),
        std::env::var("MACEMU_TEST_FLOPPY"),
    ) else {
        println!("SKIPPED: set MACEMU_TEST_ROM and MACEMU_TEST_FLOPPY to boot a real ROM");
        return;
    };
    let rom = std::fs::read(&rom).expect("read MACEMU_TEST_ROM");
    let copy = std::env::temp_dir().join(format!("macemu-boot-{}.image", std::process::id()));
    std::fs::copy(&floppy, &copy).expect("copy MACEMU_TEST_FLOPPY");
    let image = FloppyImage::open(Box::new(FileBacking::open(&copy, false).unwrap()))
        .expect("a floppy image we take");
    println!("floppy: {:?}", image.info());

    let mut mac = MacPlus::new(&rom, 4 << 20).expect("a Plus ROM");
    mac.insert_floppy(0, image).unwrap();
    let (shown, wall) = boot_to_finder(&mut mac);
    let shot = std::env::temp_dir().join(format!("macemu-boot-{}.pbm", std::process::id()));
    write_pbm(&shot, mac.screen());
    let _ = std::fs::remove_file(&copy);
    let frame = shown.unwrap_or_else(|| {
        panic!(
            "no menu bar within {} s of emulated time; last screen in {}",
            MAX_FRAMES / 60,
            shot.display()
        )
    });
    report("floppy boot", frame, wall);
    println!("screen: {}", shot.display());
}
