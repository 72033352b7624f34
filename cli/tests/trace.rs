//! `macemu-cli trace`: the first instruction of the demo ROM is the one at its reset vector, and
//! `--rom` runs the given image. Expected text: the demo ROM's source (`roms/demo/start.S`) and
//! encodings hand-assembled from the M68000 Programmer's Reference Manual.

use std::process::Command;

fn trace(args: &[&str]) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_macemu-cli"))
        .arg("trace")
        .args(args)
        .output()
        .expect("run macemu-cli");
    assert!(
        out.status.success(),
        "trace failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(str::to_string)
        .collect()
}

/// (pc, words, text, clocks) of one line.
fn fields(line: &str) -> (u32, String, String, u64) {
    let mut cols = line.split("  ").map(str::trim).filter(|c| !c.is_empty());
    let pc = u32::from_str_radix(cols.next().expect("pc"), 16).expect("hex pc");
    let words = cols.next().expect("words").to_string();
    let text = cols.next().expect("text").to_string();
    let clocks = cols.next().expect("clocks").parse().expect("clocks");
    (pc, words, text, clocks)
}

#[test]
fn demo_rom_starts_at_its_reset_vector() {
    let rom = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../roms/demo.rom")).unwrap();
    let lines = trace(&["-n", "3"]);
    assert_eq!(lines.len(), 3);
    let (pc, words, text, clocks) = fields(&lines[0]);
    // Reset PC: the second long of the ROM (mapped at 0 by the overlay).
    assert_eq!(pc, u32::from_be_bytes([rom[4], rom[5], rom[6], rom[7]]));
    let at = (pc & 0x1_FFFF) as usize;
    let rom_words: Vec<String> = rom[at..at + 4]
        .chunks(2)
        .map(|w| format!("{:02x}{:02x}", w[0], w[1]))
        .collect();
    assert_eq!(words, rom_words.join(" "));
    // start.S: `move.w #0x2700,%sr` then `lea VIA_BASE,%a0` (0xEFE1FE).
    assert_eq!(text, "move.w #$2700,sr");
    // MOVE to SR, immediate: 16 clocks (PRM / Yacht timing tables).
    assert_eq!(clocks, 16);
    let (pc2, _, text2, _) = fields(&lines[1]);
    assert_eq!(pc2, pc + 4);
    assert_eq!(text2, "lea $efe1fe.l,a0");
}

#[test]
fn rom_option_runs_the_given_image() {
    // 4 KiB image: SSP, PC = 0x400008, then moveq #5,d0; nop; bra.s to itself.
    let mut rom = vec![0u8; 4096];
    rom[..8].copy_from_slice(&[0, 0, 0x10, 0, 0, 0x40, 0, 8]);
    rom[8..14].copy_from_slice(&[0x70, 0x05, 0x4E, 0x71, 0x60, 0xFE]);
    let path = std::env::temp_dir().join(format!("macemu-trace-{}.rom", std::process::id()));
    std::fs::write(&path, &rom).unwrap();
    let lines = trace(&["--rom", path.to_str().unwrap(), "-n", "4", "--ram", "1M"]);
    std::fs::remove_file(&path).ok();
    let got: Vec<(u32, String, String, u64)> = lines.iter().map(|l| fields(l)).collect();
    let want = [
        (0x40_0008, "7005", "moveq #5,d0", 4),
        (0x40_000A, "4e71", "nop", 4),
        (0x40_000C, "60fe", "bra.s $40000c", 10),
        (0x40_000C, "60fe", "bra.s $40000c", 10),
    ];
    for (g, w) in got.iter().zip(want) {
        assert_eq!((g.0, g.1.as_str(), g.2.as_str(), g.3), w);
    }
    assert_eq!(got.len(), 4);
}
