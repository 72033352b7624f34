//! Side-effect-free reads of the Mac Plus's memory: `peek_byte`/`peek_word` show RAM and ROM
//! as the CPU sees them (the memory map of the Guide to the Macintosh Family Hardware, with the
//! ROM overlay at 0 after reset) and refuse the device windows, whose reads change the devices.

use macemu_core::mac::MacPlus;

const DEMO_ROM: &[u8] = include_bytes!("../../roms/demo.rom");
const MIB: usize = 1 << 20;

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[test]
fn peek_shows_rom_and_overlay_and_refuses_devices() {
    let mac = MacPlus::new(DEMO_ROM, 4 * MIB).unwrap();
    assert!(mac.overlay(), "reset turns the overlay on");
    for (i, &b) in DEMO_ROM.iter().enumerate() {
        // The ROM at 0x400000, and mirrored at 0 under the overlay.
        assert_eq!(mac.peek_byte(0x40_0000 + i as u32), Some(b));
        assert_eq!(mac.peek_byte(i as u32), Some(b));
    }
    let pc = be32(DEMO_ROM, 4);
    let at = (pc - 0x40_0000) as usize;
    assert_eq!(
        mac.peek_word(pc),
        Some(u16::from_be_bytes([DEMO_ROM[at], DEMO_ROM[at + 1]]))
    );
    // NCR 5380, SCC read and write, IWM, VIA; open bus above the ROM window.
    for addr in [
        0x58_0000, 0x9F_FFF8, 0xBF_FFF9, 0xDF_E1FF, 0xEF_E1FE, 0xEF_FFFE, 0x44_0000,
    ] {
        assert_eq!(mac.peek_byte(addr), None, "{addr:#x}");
        assert_eq!(mac.peek_word(addr), None, "{addr:#x}");
    }
}

#[test]
fn peek_matches_ram_once_the_overlay_is_off() {
    let mut mac = MacPlus::new(DEMO_ROM, MIB).unwrap();
    // The demo ROM switches the overlay off and clears the screen within its first frames.
    for _ in 0..60 {
        mac.run_frame();
    }
    assert!(!mac.overlay());
    let ram = mac.ram().to_vec();
    for (i, &b) in ram.iter().enumerate() {
        assert_eq!(mac.peek_byte(i as u32), Some(b));
    }
    // 1 MiB repeats through the 4 MiB RAM window.
    assert_eq!(mac.peek_byte(0x30_0000 + 17), Some(ram[17]));
}

/// Peeking every address of the 24-bit space between frames leaves the run exactly as it
/// would have been: same RAM, screen, clock and registers as a twin that never peeked. Real
/// reads of the same addresses would acknowledge VIA interrupts and move the SCC's pointer.
#[test]
fn peeking_everywhere_changes_nothing() {
    let mut a = MacPlus::new(DEMO_ROM, MIB).unwrap();
    let mut b = MacPlus::new(DEMO_ROM, MIB).unwrap();
    let mut seen = 0u64;
    for frame in 0..90 {
        if frame % 30 == 29 {
            for addr in 0..1u32 << 24 {
                seen += u64::from(a.peek_byte(addr).is_some());
            }
        }
        a.run_frame();
        b.run_frame();
        a.key(0x00, frame % 2 == 0);
        b.key(0x00, frame % 2 == 0);
    }
    assert!(seen > 0);
    assert_eq!(a.cycles(), b.cycles());
    assert_eq!(a.cpu().regs(), b.cpu().regs());
    assert_eq!(a.ram(), b.ram());
    assert_eq!(a.screen(), b.screen());
}

/// `step` runs one instruction and `disassemble` shows it: from reset, the instructions the
/// demo ROM's start-up code begins with, each at the address the previous one ends.
#[test]
fn step_and_disassemble_follow_the_reset_code() {
    let mut mac = MacPlus::new(DEMO_ROM, MIB).unwrap();
    let mut pc = be32(DEMO_ROM, 4);
    for _ in 0..4 {
        assert_eq!(mac.cpu().regs().pc, pc);
        let ins = mac.disassemble(pc).expect("the reset code is in ROM");
        let before = (mac.cycles(), mac.cpu().instructions());
        let clocks = mac.step();
        assert!(clocks >= 4);
        assert_eq!(mac.cycles(), before.0 + clocks);
        assert_eq!(mac.cpu().instructions(), before.1 + 1);
        // No branch among the first instructions (roms/demo/start.S).
        pc = ins.next_addr();
    }
    assert_eq!(mac.cpu().regs().pc, pc);
}
