//! The checked-in demo ROM (`roms/demo.rom`): a well-formed Mac Plus ROM image, and exactly what
//! `scripts/build-demo-rom.sh` builds from `roms/demo/` when the m68k toolchain is installed.

use std::path::{Path, PathBuf};
use std::process::Command;

const ROM_SIZE: usize = 128 * 1024;
const ROM_BASE: u32 = 0x40_0000;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("macemu-core lives in the workspace root")
        .to_path_buf()
}

fn checked_in_rom() -> Vec<u8> {
    let path = repo_root().join("roms/demo.rom");
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[test]
fn demo_rom_is_a_mac_plus_rom_image() {
    let rom = checked_in_rom();
    assert_eq!(rom.len(), ROM_SIZE, "a Mac Plus ROM is 128 KiB");

    // Apple's ROM checksum: the sum of the big-endian words after the first long.
    let sum = rom[4..].chunks_exact(2).fold(0u32, |s, w| {
        s.wrapping_add(u32::from(u16::from_be_bytes([w[0], w[1]])))
    });
    assert_eq!(
        be32(&rom, 0),
        sum,
        "stored checksum must match the contents"
    );

    // The reset PC (read through the overlay at address 4) must already point into the
    // 0x400000 image, at an even address inside the ROM.
    let pc = be32(&rom, 4);
    assert!(
        (ROM_BASE + 8..ROM_BASE + ROM_SIZE as u32).contains(&pc) && pc & 1 == 0,
        "reset PC {pc:#x} is not inside the ROM"
    );
    // Its first instruction masks interrupts: MOVE.W #$2700,SR.
    let at = (pc - ROM_BASE) as usize;
    assert_eq!(&rom[at..at + 4], &[0x46, 0xFC, 0x27, 0x00]);
}

fn prefix() -> String {
    std::env::var("M68K_PREFIX").unwrap_or_else(|_| "m68k-linux-gnu-".into())
}

/// First line of `<prefix><tool> --version`, or None when the tool cannot be run.
fn tool_version(tool: &str) -> Option<String> {
    let out = Command::new(format!("{}{tool}", prefix()))
        .arg("--version")
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()?
            .to_string(),
    )
}

/// Says why the byte-for-byte check cannot run; fails instead when MACEMU_REQUIRE_M68K or
/// MACEMU_REQUIRE_ALL is set (`.ci/run` sets them: CI installs the toolchain, so there a skip
/// would hide a stale ROM).
fn not_checked(why: &str) {
    let msg = format!("SKIPPED demo_rom_matches_its_source (NOT CHECKED): {why}");
    if ["MACEMU_REQUIRE_M68K", "MACEMU_REQUIRE_ALL"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty() && x != "0"))
    {
        panic!("{msg}");
    }
    eprintln!("{msg}");
}

#[test]
fn demo_rom_matches_its_source() {
    let (Some(gcc), Some(gas)) = (tool_version("gcc"), tool_version("as")) else {
        not_checked(&format!(
            "{}gcc is not installed (apt-get install gcc-m68k-linux-gnu binutils-m68k-linux-gnu)",
            prefix()
        ));
        return;
    };
    // Another compiler version legitimately emits other code: only the recorded one can
    // reproduce the checked-in image.
    let recorded = std::fs::read_to_string(repo_root().join("roms/demo/TOOLCHAIN"))
        .expect("roms/demo/TOOLCHAIN records the toolchain of roms/demo.rom");
    let installed = format!("{gcc}\n{gas}\n");
    if recorded != installed {
        not_checked(&format!(
            "roms/demo.rom was built with\n{recorded}but this machine has\n{installed}"
        ));
        return;
    }
    let out = std::env::temp_dir().join(format!("macemu-demo-rom-{}.rom", std::process::id()));
    let status = Command::new("sh")
        .arg(repo_root().join("scripts/build-demo-rom.sh"))
        .arg(&out)
        .status()
        .expect("running scripts/build-demo-rom.sh");
    assert!(
        status.success(),
        "scripts/build-demo-rom.sh failed: {status}"
    );
    let built = std::fs::read(&out).expect("reading the rebuilt ROM");
    let _ = std::fs::remove_file(&out);
    let checked_in = checked_in_rom();
    assert_eq!(
        built.len(),
        checked_in.len(),
        "rebuilt ROM has another size"
    );
    if let Some(i) = built.iter().zip(&checked_in).position(|(a, b)| a != b) {
        panic!(
            "roms/demo.rom is stale: first difference at offset {i:#x} (rebuilt {:#04x}, \
             checked in {:#04x}); run scripts/build-demo-rom.sh and commit roms/demo.rom",
            built[i], checked_in[i]
        );
    }
}
