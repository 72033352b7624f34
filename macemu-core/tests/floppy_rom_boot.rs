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

use macemu_core::floppy::FloppyImage;
use macemu_core::mac::MacPlus;
use macemu_core::storage::FileBacking;

const ROW_BYTES: usize = 64;
/// Two emulated minutes: a Plus boots System 6 from floppy in well under one.
const MAX_FRAMES: u64 = 60 * 120;

fn black_fraction(screen: &[u8], row: usize) -> f64 {
    let r = &screen[row * ROW_BYTES..(row + 1) * ROW_BYTES];
    f64::from(r.iter().map(|b| b.count_ones()).sum::<u32>()) / 512.0
}

fn menu_bar_shown(screen: &[u8]) -> bool {
    (2..18).all(|y| black_fraction(screen, y) < 0.35) && black_fraction(screen, 19) > 0.95
}

fn write_pbm(path: &std::path::Path, screen: &[u8]) {
    let mut out = b"P4\n512 342\n".to_vec();
    out.extend_from_slice(screen);
    let _ = std::fs::write(path, out);
}

#[test]
fn real_rom_boots_a_system_floppy() {
    let (Ok(rom), Ok(floppy)) = (
        std::env::var("MACEMU_TEST_ROM"),
        std::env::var("MACEMU_TEST_FLOPPY"),
    ) else {
        println!("skipped: set MACEMU_TEST_ROM and MACEMU_TEST_FLOPPY to boot a real ROM");
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
    let mut shown = None;
    for _ in 0..MAX_FRAMES {
        let r = mac.run_frame();
        if r.frame.is_multiple_of(60) && menu_bar_shown(mac.screen()) {
            shown = Some(r.frame);
            break;
        }
    }
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
    println!(
        "menu bar after {:.1} s of emulated time (screen: {})",
        frame as f64 / 60.15,
        shot.display()
    );
}
