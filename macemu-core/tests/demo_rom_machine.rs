//! The demo ROM (`roms/demo.rom`) running in the emulated Mac Plus: it boots, draws its desk,
//! echoes typed keys in its own font, follows the mouse through the low-memory globals and the
//! SCC quadrature, plays a tone into the sound buffer and shows the RTC's time.
//!
//! Independent truth: the glyphs come from `roms/demo/font.txt` (the ROM's font source), the
//! layout constants from `roms/demo/desk.c`, the globals from Inside Macintosh.

use macemu_core::mac::MacPlus;
use std::collections::HashMap;
use std::path::Path;

const MIB: usize = 1 << 20;

// Layout of roms/demo/desk.c.
const ECHO_X: usize = 56 + 10 + 4; // TB_X + 4
const ECHO_Y: usize = 52 + 58 + 4; // line_y(0)
const CLOCK_X: usize = 440 + 8;
const CLOCK_Y: usize = 6;
const BEEP: (i16, i16) = (56 + 400 - 64 - 16 + 20, 52 + 248 - 22 - 14 + 10); // inside the button

// Low-memory globals (Inside Macintosh).
const MEM_TOP: usize = 0x108;
const TICKS: usize = 0x16A;
const MB_STATE: usize = 0x172;
const KEY_MAP: usize = 0x174;
const TIME: usize = 0x20C;
const KBD_TYPE: usize = 0x21E;
const SCRN_BASE: usize = 0x824;
const MTEMP: usize = 0x828;
const RAW_MOUSE: usize = 0x82C;
const MOUSE: usize = 0x830;

fn rom() -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../roms/demo.rom");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// roms/demo/font.txt: character -> rows of '#' and '.'.
fn font() -> HashMap<char, Vec<String>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../roms/demo/font.txt");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut glyphs = HashMap::new();
    let mut cur: Option<(char, Vec<String>)> = None;
    for line in text.lines() {
        if line.starts_with(';') || line.trim().is_empty() {
            continue;
        }
        if let Some(hex) = line.strip_prefix(": ") {
            if let Some((c, rows)) = cur.take() {
                glyphs.insert(c, rows);
            }
            let code = u32::from_str_radix(hex.trim(), 16).unwrap();
            cur = Some((char::from_u32(code).unwrap(), Vec::new()));
        } else if let Some((_, rows)) = cur.as_mut() {
            rows.push(line.to_string());
        }
    }
    let (c, rows) = cur.unwrap();
    glyphs.insert(c, rows);
    assert_eq!(glyphs.len(), 95);
    glyphs
}

fn pixel(mac: &MacPlus, x: usize, y: usize) -> bool {
    mac.screen()[y * 64 + x / 8] & (0x80 >> (x % 8)) != 0
}

fn g16(mac: &MacPlus, a: usize) -> i16 {
    i16::from_be_bytes([mac.ram()[a], mac.ram()[a + 1]])
}

fn g32(mac: &MacPlus, a: usize) -> u32 {
    let r = mac.ram();
    u32::from_be_bytes([r[a], r[a + 1], r[a + 2], r[a + 3]])
}

/// (h, v) of a Point global.
fn point(mac: &MacPlus, a: usize) -> (i16, i16) {
    (g16(mac, a + 2), g16(mac, a))
}

fn frames(mac: &mut MacPlus, n: usize) {
    for _ in 0..n {
        mac.run_frame();
    }
}

fn booted(ram: usize) -> MacPlus {
    let mut mac = MacPlus::new(&rom(), ram).expect("the demo ROM is accepted");
    mac.set_rtc_seconds(3_000_000_000);
    frames(&mut mac, 30);
    mac
}

/// Draws `text` the way the ROM does and compares every glyph pixel with the screen. Returns
/// the x after the text.
fn assert_text(
    mac: &MacPlus,
    font: &HashMap<char, Vec<String>>,
    x0: usize,
    y0: usize,
    text: &str,
    bold: bool,
) -> usize {
    let mut x = x0;
    for c in text.chars() {
        let rows = &font[&c];
        let w = rows[0].len();
        for (r, row) in rows.iter().enumerate() {
            let bits: Vec<bool> = row.chars().map(|p| p == '#').collect();
            for col in 0..w + usize::from(bold) {
                let ink =
                    bits.get(col).copied().unwrap_or(false) || (bold && col > 0 && bits[col - 1]);
                assert_eq!(
                    pixel(mac, x + col, y0 + r),
                    ink,
                    "{text:?}: glyph {c:?} pixel ({col}, {r}) at screen ({}, {})",
                    x + col,
                    y0 + r
                );
            }
        }
        x += w + 1 + usize::from(bold);
    }
    x
}

#[test]
fn boots_on_every_plus_ram_size_and_keeps_the_globals() {
    for ram in [MIB, 2 * MIB, 5 * MIB / 2, 4 * MIB] {
        let mut mac = booted(ram);
        assert!(!mac.overlay(), "the ROM clears the overlay");
        assert_eq!(g32(&mac, MEM_TOP) as usize, ram, "MemTop");
        assert_eq!(g32(&mac, SCRN_BASE) as usize, ram - 0x5900, "ScrnBase");
        assert_eq!(
            mac.ram()[KBD_TYPE],
            0x0B,
            "KbdType holds the M0110A's answer to Model"
        );
        assert_eq!(mac.ram()[MB_STATE] & 0x80, 0x80, "button up");
        let t0 = g32(&mac, TICKS);
        frames(&mut mac, 60);
        assert_eq!(g32(&mac, TICKS) - t0, 60, "Ticks counts VBL interrupts");
        // Menu bar: white, then a black line at row 19; gray desktop below.
        assert!(!pixel(&mac, 300, 10) && pixel(&mac, 300, 19));
        let row = 30 * 64;
        assert_eq!(&mac.screen()[row..row + 4], &[0xAA; 4]);
        assert_eq!(&mac.screen()[row + 64..row + 68], &[0x55; 4]);
    }
}

#[test]
fn typed_keys_are_echoed_in_the_roms_font() {
    let font = font();
    let mut mac = booted(4 * MIB);
    // Shift-H, i, Shift-1, space, q.
    let strokes: [(u8, bool); 5] = [
        (0x04, true),
        (0x22, false),
        (0x12, true),
        (0x31, false),
        (0x0C, false),
    ];
    for (code, shift) in strokes {
        if shift {
            mac.key(0x38, true);
            frames(&mut mac, 2);
        }
        mac.key(code, true);
        frames(&mut mac, 2);
        assert_ne!(
            mac.ram()[KEY_MAP + usize::from(code >> 3)] & (1 << (code & 7)),
            0,
            "KeyMap bit of a held key"
        );
        mac.key(code, false);
        frames(&mut mac, 2);
        if shift {
            mac.key(0x38, false);
            frames(&mut mac, 2);
        }
    }
    assert!(
        mac.ram()[KEY_MAP..KEY_MAP + 16].iter().all(|&b| b == 0),
        "all keys released"
    );
    assert_text(&mac, &font, ECHO_X, ECHO_Y, "Hi! q", false);
}

#[test]
fn cursor_follows_absolute_and_relative_mouse() {
    let mut mac = booted(4 * MIB);
    // Absolute positions go through the OS's mouse globals: off until asked for.
    assert!(!mac.mouse_move_absolute(20, 200));
    mac.enable_os_helpers();
    // Over the desktop, left of the window.
    assert!(mac.mouse_move_absolute(20, 200));
    frames(&mut mac, 3);
    assert_eq!(point(&mac, MOUSE), (20, 200));
    assert_eq!(point(&mac, RAW_MOUSE), (20, 200));
    // The arrow's tip is its hot spot (1, 1): black there, white mask around it.
    assert!(pixel(&mac, 20, 200) && !pixel(&mac, 19, 199) && !pixel(&mac, 19, 200));
    // Quadrature through the SCC: right 25, up 12.
    mac.mouse_move_relative(25, -12);
    frames(&mut mac, 10);
    assert_eq!(point(&mac, MOUSE), (45, 188));
    assert_eq!(point(&mac, MTEMP), (45, 188));
    assert!(pixel(&mac, 45, 188) && !pixel(&mac, 44, 187));
    // The old position shows the 50 % gray desktop again (save-under restored).
    for (x, y) in [(19, 199), (20, 200), (21, 200), (22, 205)] {
        assert_eq!(pixel(&mac, x, y), (x + y) % 2 == 0, "desktop at ({x}, {y})");
    }
    // Pinned to the screen.
    mac.mouse_move_relative(-600, 600);
    frames(&mut mac, 120);
    assert_eq!(point(&mac, MOUSE), (0, 341));
}

#[test]
fn clicking_beep_plays_a_half_second_tone() {
    let mut mac = booted(4 * MIB);
    let silent = |mac: &MacPlus| mac.audio_frame().iter().all(|&s| s == mac.audio_frame()[0]);
    assert!(silent(&mac), "no sound before the click");
    mac.enable_os_helpers();
    assert!(mac.mouse_move_absolute(BEEP.0, BEEP.1));
    frames(&mut mac, 3);
    let inside_before = pixel(&mac, BEEP.0 as usize + 20, BEEP.1 as usize - 6);
    mac.mouse_button(true);
    frames(&mut mac, 3);
    assert_ne!(
        pixel(&mac, BEEP.0 as usize + 20, BEEP.1 as usize - 6),
        inside_before,
        "button inverted"
    );
    // 370 samples a frame holding 10 periods of the 37-sample sine: 20 sign changes.
    let a = mac.audio_frame();
    let mean = a.iter().map(|&s| i64::from(s)).sum::<i64>() / a.len() as i64;
    let crossings = a
        .windows(2)
        .filter(|w| (i64::from(w[0]) < mean) != (i64::from(w[1]) < mean))
        .count();
    assert!(
        (19..=21).contains(&crossings),
        "{crossings} sign changes in a frame"
    );
    let peak = a
        .iter()
        .map(|&s| (i64::from(s) - mean).abs())
        .max()
        .unwrap();
    assert!(peak > 1000, "tone amplitude {peak}");
    mac.mouse_button(false);
    frames(&mut mac, 40);
    assert!(silent(&mac), "the tone stops after half a second");
    assert_eq!(
        pixel(&mac, BEEP.0 as usize + 20, BEEP.1 as usize - 6),
        inside_before
    );
}

#[test]
fn menu_bar_clock_shows_the_rtc() {
    let font = font();
    let mut mac = MacPlus::new(&rom(), 4 * MIB).unwrap();
    // 12:34:56 on some day: the clock shows seconds modulo a day.
    let day = 3_000_000_000u32 / 86_400 * 86_400;
    mac.set_rtc_seconds(day + 86_400 + 12 * 3600 + 34 * 60 + 56);
    frames(&mut mac, 30);
    assert_eq!(
        g32(&mac, TIME),
        mac.rtc_seconds(),
        "Time holds the RTC seconds"
    );
    assert_text(&mac, &font, CLOCK_X, CLOCK_Y, "12:34:56", true);
    frames(&mut mac, 61);
    assert_text(&mac, &font, CLOCK_X, CLOCK_Y, "12:34:57", true);
}

#[test]
fn same_inputs_give_the_same_frames() {
    let run = || {
        let mut mac = booted(2 * MIB);
        mac.key(0x00, true);
        frames(&mut mac, 1);
        mac.mouse_move_relative(7, 3);
        frames(&mut mac, 2);
        mac.key(0x00, false);
        frames(&mut mac, 5);
        mac.screen().to_vec()
    };
    assert_eq!(run(), run());
}

/// Relative motion is counted whole whatever the point of the frame at which it starts. A move
/// starting in vertical blanking, while the ROM's VBL handler runs, used to lose two steps: the
/// board's quadrature slots (every 8th line of the frame) came only 2 lines apart across the
/// frame's end (370 lines), and the ROM, which reads Y2 on the VIA after resetting the SCC's
/// ext/status latch, read it after the next edge had already moved it.
#[test]
fn relative_mouse_moves_are_counted_whole_at_every_phase_of_the_frame() {
    for (dx, dy) in [(26, 17), (-17, -26), (13, -21)] {
        let mut bad = Vec::new();
        for k in 0..60u64 {
            let mut mac = booted(4 * MIB);
            mac.enable_os_helpers();
            assert!(mac.mouse_move_absolute(200, 150));
            frames(&mut mac, 3);
            // Start the move at phase k/20 of a frame (130,240 clocks), over three frames.
            mac.run_cycles(k * 130_240 / 20);
            mac.mouse_move_relative(dx, dy);
            frames(&mut mac, 10);
            let want = (200 + dx as i16, 150 + dy as i16);
            for (name, at) in [("Mouse", MOUSE), ("MTemp", MTEMP)] {
                let p = point(&mac, at);
                if p != want {
                    bad.push((k, name, p));
                }
            }
        }
        assert!(bad.is_empty(), "move ({dx}, {dy}) from (200, 150): {bad:?}");
    }
}

/// A cursor moved before a frame is in that frame's picture: the position is applied at the
/// vertical blank and the VBL handler draws it before the frame ends (the next scan shows it).
#[test]
fn a_cursor_moved_before_a_frame_is_in_its_picture() {
    let mut mac = booted(4 * MIB);
    mac.enable_os_helpers();
    for i in 0..20 {
        let (x, y) = (40 + 20 * i, 220);
        assert!(mac.mouse_move_absolute(x, y));
        mac.run_frame();
        // The arrow's tip at its hot spot, with its white mask beside it.
        assert!(
            pixel(&mac, x as usize, y as usize) && !pixel(&mac, x as usize - 1, y as usize),
            "the cursor moved to ({x}, {y}) is not drawn in that frame (move {i})"
        );
    }
}
