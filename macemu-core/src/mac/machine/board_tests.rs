//! The board's memory map and bus timing, driven through the `Bus` trait as the 68000 drives it.

use super::*;
use crate::bus::{Bus, FunctionCode};

const FC: FunctionCode = FunctionCode::SupervisorData;

/// VIA register `r` as the ROM addresses it.
fn via_reg(r: u8) -> u32 {
    0xEF_E1FE + u32::from(r) * 0x200
}

/// Turns the overlay off the way the ROM does: PA4 made an output and driven low.
fn overlay_off(b: &mut Board) {
    b.write_byte(FC, via_reg(via::reg::DDRA), 0x10).unwrap();
    b.write_byte(FC, via_reg(via::reg::ORA), 0x00).unwrap();
    assert!(!b.overlay);
}

fn board(ram: usize) -> Board {
    // A ROM of 0xFF so nothing read from it can pass for the RAM written below.
    Board::new(&[0xFFu8; 128 * 1024], ram).unwrap()
}

#[test]
fn overlay_ram_window_starts_at_ram_offset_0_for_every_ram_size() {
    for ram in [1usize << 20, 2 << 20, 4 << 20] {
        let mut b = board(ram);
        assert!(b.overlay, "overlay is on after power-on");
        b.write_word(FC, 0x60_0000, 0x1234).unwrap();
        b.write_byte(FC, 0x60_0002, 0x56).unwrap();
        b.write_byte(FC, 0x60_0003, 0x78).unwrap();
        // Read back through the window (word and byte paths) while the overlay is on.
        assert_eq!(b.read_word(FC, 0x60_0000).unwrap(), 0x1234, "{ram:#x}");
        assert_eq!(b.read_byte(FC, 0x60_0003).unwrap(), 0x78, "{ram:#x}");
        // Address 0 still shows the ROM.
        assert_eq!(b.read_word(FC, 0).unwrap(), 0xFFFF, "{ram:#x}");

        overlay_off(&mut b);
        assert_eq!(b.ram[..4], [0x12, 0x34, 0x56, 0x78], "{ram:#x}");
        assert_eq!(b.read_word(FC, 0).unwrap(), 0x1234, "{ram:#x}");
        assert_eq!(b.read_word(FC, 2).unwrap(), 0x5678, "{ram:#x}");
        // Nothing landed where A21 would have put it on a 4 MiB machine.
        if ram > 0x20_0000 {
            assert_eq!(b.ram[0x20_0000..0x20_0004], [0; 4], "{ram:#x}");
        }
    }
}

#[test]
fn overlay_ram_window_mirrors_with_the_ram_size() {
    for ram in [1usize << 20, 2 << 20, 4 << 20] {
        let mut b = board(ram);
        // The last byte of the 2 MiB window is RAM offset 0x1FFFFF, mirrored into smaller RAM.
        b.write_byte(FC, 0x7F_FFFF, 0xA5).unwrap();
        overlay_off(&mut b);
        assert_eq!(b.ram[0x1F_FFFF & (ram - 1)], 0xA5, "{ram:#x}");
    }
}

#[test]
fn ram_sizes_other_than_the_plus_simm_sets_are_refused() {
    for ram in [128usize << 10, 512 << 10, 5 << 19] {
        assert_eq!(
            Board::new(&[0u8; 128 * 1024], ram).err(),
            Some(MachineError::RamSize { bytes: ram })
        );
    }
}

/// Runs the board's events up to cycle `t` with no CPU.
fn advance_to(b: &mut Board, t: u64) {
    b.now = t;
    b.process_events();
}

/// Puts the VIA's shift register into shift-in under the keyboard's clock (ACR mode 3).
fn listen(b: &mut Board) {
    b.write_byte(FC, via_reg(via::reg::ACR), via::SR_MODE_IN_EXTERNAL << 2)
        .unwrap();
}

fn sr_flag(b: &Board) -> bool {
    b.via.ifr() & via::irq::SR != 0
}

#[test]
fn keyboard_byte_takes_eight_bits_from_when_the_via_starts_listening() {
    let mut b = board(1 << 20);
    b.keyboard.command(keyboard::CMD_TEST, 0);
    // The answer is ready long before the VIA listens: the eight bits start with the mode.
    let since = 40 * keyboard::RESPONSE_CYCLES;
    advance_to(&mut b, since);
    listen(&mut b);
    advance_to(&mut b, since + keyboard::BYTE_TO_MAC_CYCLES - 1);
    assert!(
        !sr_flag(&b),
        "byte arrived before its eight bits were clocked"
    );
    advance_to(&mut b, since + keyboard::BYTE_TO_MAC_CYCLES);
    assert!(sr_flag(&b), "byte late");
    assert_eq!(
        b.read_byte(FC, via_reg(via::reg::SR)).unwrap(),
        keyboard::ACK
    );
}

#[test]
fn keyboard_byte_takes_eight_bits_from_the_answer_when_the_via_already_listens() {
    let mut b = board(1 << 20);
    listen(&mut b);
    let sent = 1000;
    advance_to(&mut b, sent);
    b.keyboard.command(keyboard::CMD_TEST, sent);
    let done = sent + keyboard::RESPONSE_CYCLES + keyboard::BYTE_TO_MAC_CYCLES;
    advance_to(&mut b, done - 1);
    assert!(!sr_flag(&b));
    advance_to(&mut b, done);
    assert!(sr_flag(&b));
    // Eight bits at 330 µs are 2.64 ms.
    let ms = keyboard::BYTE_TO_MAC_CYCLES as f64 * 1000.0 / CPU_HZ as f64;
    assert!((ms - 2.64).abs() < 0.001, "{ms}");
}

#[test]
fn keyboard_byte_restarts_when_the_via_stops_listening_mid_byte() {
    let mut b = board(1 << 20);
    listen(&mut b);
    b.keyboard.command(keyboard::CMD_TEST, 0);
    let half = keyboard::RESPONSE_CYCLES + keyboard::BYTE_TO_MAC_CYCLES / 2;
    advance_to(&mut b, half);
    // Shift register off (mode 0), then listening again a little later.
    b.write_byte(FC, via_reg(via::reg::ACR), 0).unwrap();
    let again = half + 5000;
    advance_to(&mut b, again);
    listen(&mut b);
    advance_to(&mut b, again + keyboard::BYTE_TO_MAC_CYCLES - 1);
    assert!(
        !sr_flag(&b),
        "the interrupted byte must be clocked again in full"
    );
    advance_to(&mut b, again + keyboard::BYTE_TO_MAC_CYCLES);
    assert!(sr_flag(&b));
    assert_eq!(
        b.read_byte(FC, via_reg(via::reg::SR)).unwrap(),
        keyboard::ACK
    );
}
