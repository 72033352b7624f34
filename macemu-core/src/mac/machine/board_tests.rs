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
    for ram in RAM_SIZES {
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
    for ram in RAM_SIZES {
        let mut b = board(ram);
        // The last byte of the 2 MiB window is RAM offset 0x1FFFFF, mirrored into smaller RAM.
        b.write_byte(FC, 0x7F_FFFF, 0xA5).unwrap();
        overlay_off(&mut b);
        // 2 MiB and more (2.5 MiB's bank A too) hold the whole window.
        let at = if ram >= 2 << 20 {
            0x1F_FFFF
        } else {
            0x1F_FFFF & (ram - 1)
        };
        assert_eq!(b.ram[at], 0xA5, "{ram:#x}");
    }
}

#[test]
fn ram_sizes_other_than_the_plus_simm_sets_are_refused() {
    for ram in [128usize << 10, 512 << 10, 3 << 20, 8 << 20] {
        assert_eq!(
            Board::new(&[0u8; 128 * 1024], ram).err(),
            Some(MachineError::RamSize { bytes: ram })
        );
    }
}

/// 2.5 MiB: bank A (1 MiB SIMMs) holds 0x000000-0x1FFFFF; bank B's 256 KiB SIMMs decode 19
/// address bits, so its 512 KiB answer at 0x200000 and repeat every 512 KiB up to 0x3FFFFF.
#[test]
fn two_and_a_half_mib_repeat_bank_b_every_512_kib() {
    let mut b = board(5 << 19);
    overlay_off(&mut b);
    assert_eq!(b.ram.len(), 0x28_0000);
    b.write_word(FC, 0x1F_FFFE, 0xA1A2).unwrap();
    for (i, base) in [0x20_0000u32, 0x28_0000, 0x30_0000, 0x38_0000]
        .into_iter()
        .enumerate()
    {
        let v = 0x1000 + i as u16;
        b.write_word(FC, base + 0x100, v).unwrap();
        b.write_byte(FC, base + 0x7_FFFF, i as u8).unwrap();
        // Every repeat reads what was written through any of them: one bank B.
        for other in [0x20_0000u32, 0x28_0000, 0x30_0000, 0x38_0000] {
            assert_eq!(b.read_word(FC, other + 0x100).unwrap(), v, "{base:#x}");
            assert_eq!(b.read_byte(FC, other + 0x7_FFFF).unwrap(), i as u8);
            assert_eq!(b.peek8(other + 0x100), Some((v >> 8) as u8));
        }
        assert_eq!(b.ram[0x20_0100..0x20_0102], v.to_be_bytes());
    }
    // Bank A is untouched by bank B's repeats.
    assert_eq!(b.read_word(FC, 0x1F_FFFE).unwrap(), 0xA1A2);
    assert_eq!(b.ram[0x1F_FFFE..0x20_0000], [0xA1, 0xA2]);

    // The screen the video circuit shows sits at the top of the 4 MiB window (0x3FA700),
    // which is RAM offset 0x27A700: MemTop 0x280000 - 0x5900, as the ROM computes ScrnBase.
    b.write_word(FC, 0x3F_A700, 0xF00F).unwrap();
    assert_eq!(b.ram_size() - 0x5900, 0x27_A700);
    let base = video::screen_base(b.ram_size(), true) as usize;
    assert_eq!(b.ram[base..base + 2], [0xF0, 0x0F]);
    assert_eq!(b.read_word(FC, 0x27_A700).unwrap(), 0xF00F);
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

// ---- RAM shared with the video circuitry ---------------------------------------------------

use crate::cpu::flat::FlatBus;
use crate::cpu::{Cpu, CpuModel};

const NOP: [u8; 2] = [0x4E, 0x71];
/// Where the tests put code in RAM (below every screen and sound buffer).
const CODE: u32 = 0x1000;

/// A ROM of NOPs whose reset vector points into it (0x400100).
fn nop_rom() -> Vec<u8> {
    let mut rom = NOP.repeat(64 * 1024);
    rom[..8].copy_from_slice(&[0, 0, 0x80, 0, 0, 0x40, 0x01, 0]);
    rom
}

/// A machine with the overlay off, `code` at [`CODE`] and the CPU about to run from `pc`.
fn running(code: &[u8], pc: u32) -> MacPlus {
    let mut mac = MacPlus::new(&nop_rom(), 1 << 20).unwrap();
    overlay_off(&mut mac.board);
    let at = CODE as usize;
    mac.board.ram[at..at + code.len()].copy_from_slice(code);
    mac.cpu.regs_mut().pc = pc;
    // The first step refills the prefetch queue from `pc`; measurements start after it.
    step(&mut mac);
    mac
}

/// One instruction with the board's events, as `MacPlus::run_until` runs it. Returns its clocks.
fn step(mac: &mut MacPlus) -> u64 {
    let b = &mut mac.board;
    if b.now >= b.next_event {
        b.process_events();
    }
    let c = u64::from(mac.cpu.step(b));
    b.now += c;
    c
}

/// Moves the machine to `cycle` (the CPU idle meanwhile) and runs `n` instructions there.
fn clocks_of(mac: &mut MacPlus, cycle: u64, n: usize) -> u64 {
    mac.board.now = cycle;
    mac.board.process_events();
    (0..n).map(|_| step(mac)).sum()
}

fn at_line(line: u64, clock: u64) -> u64 {
    // A few frames in, so the board has handled lines before.
    3 * CYCLES_PER_FRAME + line * CYCLES_PER_LINE + clock
}

/// The 68000's NOP: one 4-clock bus cycle (its prefetch) and nothing else.
const NOP_CLOCKS: u64 = 4;
const HALF_SLOT: u64 = video::RAM_SLOT_CYCLES / 2;

#[test]
fn ram_cycles_get_every_other_slot_during_the_visible_part_of_a_line() {
    let sled = NOP.repeat(4096);
    let mut mac = running(&sled, CODE);
    // NOPs fetched from RAM across the 256 visible clocks of line 100: the CPU's cycles fall
    // only in its four clocks of every eight, so each NOP takes a whole slot pair.
    let n = (video::VISIBLE_CYCLES / video::RAM_SLOT_CYCLES) as usize;
    assert_eq!(
        clocks_of(&mut mac, at_line(100, 0), n),
        n as u64 * video::RAM_SLOT_CYCLES
    );
    // In vertical blanking the same NOPs run at full speed.
    let vbl = video::HEIGHT as u64 + 5;
    assert_eq!(
        clocks_of(&mut mac, at_line(vbl, 0), n),
        n as u64 * NOP_CLOCKS
    );
    // And in the horizontal blanking of a visible line, before the sound fetch.
    let hbl = ((video::SOUND_FETCH_CLOCK - video::VISIBLE_CYCLES) / NOP_CLOCKS) as usize;
    assert_eq!(
        clocks_of(&mut mac, at_line(100, video::VISIBLE_CYCLES), hbl),
        hbl as u64 * NOP_CLOCKS
    );
}

#[test]
fn rom_is_not_shared_with_the_video_circuitry() {
    let mut mac = running(&[], 0x40_0100);
    let n = 64;
    assert_eq!(
        clocks_of(&mut mac, at_line(100, 0), n),
        n as u64 * NOP_CLOCKS
    );
}

#[test]
fn data_writes_to_ram_wait_too() {
    // MOVE.W D0,(A0) from RAM, writing RAM: two 4-clock RAM cycles per 8-clock instruction,
    // so two slot pairs each on a visible line and its plain 8 clocks in vertical blanking.
    let code = [0x30, 0x80].repeat(1024);
    let mut mac = running(&code, CODE);
    mac.cpu.regs_mut().a[0] = 0x8000;
    step(&mut mac);
    let n = 16;
    assert_eq!(
        clocks_of(&mut mac, at_line(20, 0), n),
        n as u64 * 2 * video::RAM_SLOT_CYCLES
    );
    let vbl = video::HEIGHT as u64;
    assert_eq!(clocks_of(&mut mac, at_line(vbl, 0), n), n as u64 * 8);
}

#[test]
fn the_sound_fetch_takes_one_slot_at_the_end_of_every_lines_blanking() {
    let sled = NOP.repeat(4096);
    let mut mac = running(&sled, CODE);
    // Vertical blanking, two NOPs before the fetch: those two run free, the third waits for
    // the fetch's half slot, the fourth (next line, still blanking) runs free.
    let vbl = video::HEIGHT as u64 + 10;
    let start = video::SOUND_FETCH_CLOCK - 2 * NOP_CLOCKS;
    assert_eq!(
        clocks_of(&mut mac, at_line(vbl, start), 4),
        4 * NOP_CLOCKS + HALF_SLOT
    );
}

/// NOPs fetched from RAM in one frame, from the interleave rules: on a visible line the CPU gets
/// one 4-clock cycle per slot pair of the visible part, then full speed in horizontal blanking
/// but for the half slot of the sound fetch; blanking lines lose only that half slot.
fn bus_bound_nops_per_frame() -> u64 {
    let hblank = video::CYCLES_PER_LINE - video::VISIBLE_CYCLES;
    let blank_line = (video::CYCLES_PER_LINE - HALF_SLOT) / NOP_CLOCKS;
    let visible_line =
        video::VISIBLE_CYCLES / video::RAM_SLOT_CYCLES + (hblank - HALF_SLOT) / NOP_CLOCKS;
    let visible = video::HEIGHT as u64;
    visible * visible_line + (video::LINES_PER_FRAME - visible) * blank_line
}

#[test]
fn a_frame_of_bus_bound_code_loses_about_a_third_of_its_instructions() {
    // A frame's worth of NOPs in RAM, run from the start of a frame to its end.
    let sled = NOP.repeat((CYCLES_PER_FRAME / NOP_CLOCKS) as usize + 64);
    let mut mac = running(&sled, CODE);
    let start = 3 * CYCLES_PER_FRAME;
    mac.board.now = start;
    mac.board.process_events();
    let mut n = 0u64;
    while mac.board.now < start + CYCLES_PER_FRAME {
        step(&mut mac);
        n += 1;
    }
    assert_eq!(n, bus_bound_nops_per_frame());
    // "As much as 35 %" slower than the uncontended 68000 (Macintosh 128K/512K technical
    // details): bus-bound code is the worst case.
    let free = CYCLES_PER_FRAME / NOP_CLOCKS;
    let loss = 1.0 - n as f64 / free as f64;
    assert!((0.33..=0.36).contains(&loss), "{loss}");
}

/// Where [`per_second`] puts a loop in ROM (ROM offset 0x100).
const ROM_CODE: u32 = 0x40_0100;

/// Instructions of the loop `code` (at [`CODE`] in RAM, or at [`ROM_CODE`] if `in_rom`, registers
/// from `setup`) in one emulated second, on the Plus and on a bus without video (the bare 68000).
fn per_second(code: &[u8], setup: fn(&mut Cpu), in_rom: bool) -> (u64, u64) {
    let mut mac = if in_rom {
        let mut rom = nop_rom();
        let at = (ROM_CODE & 0xFFFF) as usize;
        rom[at..at + code.len()].copy_from_slice(code);
        let mut mac = MacPlus::new(&rom, 1 << 20).unwrap();
        overlay_off(&mut mac.board);
        mac.cpu.regs_mut().pc = ROM_CODE;
        step(&mut mac);
        mac
    } else {
        running(code, CODE)
    };
    setup(&mut mac.cpu);
    let before = mac.cpu.instructions();
    mac.run_cycles(CPU_HZ);
    let plus = mac.cpu.instructions() - before;

    let mut image = vec![0u8; CODE as usize + code.len()];
    image[..8].copy_from_slice(&[0, 0, 0x80, 0, 0, 0, 0x10, 0]);
    image[CODE as usize..].copy_from_slice(code);
    let mut bus = FlatBus::new();
    bus.load(&image);
    let mut cpu = Cpu::new(CpuModel::M68000);
    cpu.reset(&mut bus);
    setup(&mut cpu);
    cpu.step(&mut bus);
    let before = cpu.instructions();
    cpu.run(&mut bus, CPU_HZ);
    (plus, cpu.instructions() - before)
}

/// A named loop and the register setup it needs.
type Loop = (&'static str, Vec<u8>, fn(&mut Cpu));

#[test]
fn effective_speed_of_fixed_loops() {
    fn none(_: &mut Cpu) {}
    fn pointers(cpu: &mut Cpu) {
        let mut r = cpu.regs_mut();
        r.a[0] = 0x8000;
        r.a[1] = 0x9000;
        r.d[1] = 0xFFFF;
    }
    let loops: [Loop; 4] = [
        // loop: NOP; BRA.S loop
        ("NOP; BRA.S", vec![0x4E, 0x71, 0x60, 0xFC], none),
        // loop: MOVE.L (A0),(A1); ADDQ.W #1,D0; BRA.S loop
        (
            "MOVE.L (A0),(A1); ADDQ.W; BRA.S",
            vec![0x22, 0x90, 0x52, 0x40, 0x60, 0xFA],
            pointers,
        ),
        // loop: MULU D1,D0; ADD.L D0,D2; LSL.L #4,D3; BRA.S loop
        (
            "MULU; ADD.L; LSL.L #4; BRA.S",
            vec![0xC0, 0xC1, 0xD4, 0x80, 0xE9, 0x8B, 0x60, 0xF8],
            pointers,
        ),
        // The board benchmark's loop: MOVE.L (A0)+,D1; ADD.L D1,D2; MOVE.L D1,(A1)+;
        // DBRA D0,loop; LEA $4000.W,A0; LEA $6000.W,A1; BRA.S loop
        (
            "bench: MOVE.L (A0)+,D1; ADD.L; MOVE.L D1,(A1)+; DBRA",
            [
                0x2218u16, 0xD481, 0x22C1, 0x51C8, 0xFFF8, 0x41F8, 0x4000, 0x43F8, 0x6000, 0x60EC,
            ]
            .iter()
            .flat_map(|w| w.to_be_bytes())
            .collect(),
            pointers,
        ),
    ];
    // The same data loop fetched from ROM, as Toolbox code is: only its data cycles wait.
    let rom_loop: Loop = (
        "in ROM: MOVE.L (A0),(A1); ADDQ.W; BRA.S",
        vec![0x22, 0x90, 0x52, 0x40, 0x60, 0xFA],
        pointers,
    );
    let runs = loops
        .into_iter()
        .map(|l| (l, false))
        .chain([(rom_loop, true)]);
    for ((name, code, setup), in_rom) in runs {
        let (plus, bare) = per_second(&code, setup, in_rom);
        let ratio = plus as f64 / bare as f64;
        println!(
            "{name}: {plus} instructions per emulated second on the Plus, {bare} on a bare \
             68000 at the same clock: {ratio:.3}, {:.2} MHz effective",
            ratio * CPU_HZ as f64 / 1e6
        );
        // Never faster than the bare chip; never worse than bus-bound code (about 35 % lost).
        assert!((0.6..=1.0).contains(&ratio), "{name}: {ratio}");
    }
}
