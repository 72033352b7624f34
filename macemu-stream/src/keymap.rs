//! Browser `KeyboardEvent.keyCode` → Macintosh (ADB) key code.
//!
//! The browser client sends the legacy `keyCode` (stable across layouts in every browser), and the emulator
//! wants the raw ADB key code of an Apple Extended Keyboard (US layout) — the codes BasiliskII's
//! `ADBKeyDown` takes. Right-hand modifiers map to the left-hand codes, as classic Mac OS expects.

/// Mac key codes of the modifier keys.
pub mod mac {
    pub const COMMAND: u8 = 0x37;
    pub const SHIFT: u8 = 0x38;
    pub const CAPS_LOCK: u8 = 0x39;
    pub const OPTION: u8 = 0x3A;
    pub const CONTROL: u8 = 0x36;
}

/// Bits of the `modifiers` byte sent with every key message: the modifier keys held after this event.
pub mod modifier_bits {
    pub const SHIFT: u8 = 0x01;
    pub const CONTROL: u8 = 0x02;
    pub const OPTION: u8 = 0x04;
    pub const COMMAND: u8 = 0x08;
    pub const CAPS_LOCK: u8 = 0x10;
}

/// The modifier bit a Mac key code stands for, if it is a modifier.
pub fn modifier_bit(mac_code: u8) -> Option<u8> {
    match mac_code {
        mac::SHIFT => Some(modifier_bits::SHIFT),
        mac::CONTROL => Some(modifier_bits::CONTROL),
        mac::OPTION => Some(modifier_bits::OPTION),
        mac::COMMAND => Some(modifier_bits::COMMAND),
        mac::CAPS_LOCK => Some(modifier_bits::CAPS_LOCK),
        _ => None,
    }
}

/// Maps a browser `keyCode` to a Mac key code; `None` for keys a Mac keyboard does not have.
pub fn browser_to_mac(key_code: u16) -> Option<u8> {
    let code = match key_code {
        // Letters A–Z (keyCode 65–90).
        65 => 0x00, // A
        66 => 0x0B, // B
        67 => 0x08, // C
        68 => 0x02, // D
        69 => 0x0E, // E
        70 => 0x03, // F
        71 => 0x05, // G
        72 => 0x04, // H
        73 => 0x22, // I
        74 => 0x26, // J
        75 => 0x28, // K
        76 => 0x25, // L
        77 => 0x2E, // M
        78 => 0x2D, // N
        79 => 0x1F, // O
        80 => 0x23, // P
        81 => 0x0C, // Q
        82 => 0x0F, // R
        83 => 0x01, // S
        84 => 0x11, // T
        85 => 0x20, // U
        86 => 0x09, // V
        87 => 0x0D, // W
        88 => 0x07, // X
        89 => 0x10, // Y
        90 => 0x06, // Z
        // Digits on the main row (keyCode 48–57).
        48 => 0x1D, // 0
        49 => 0x12, // 1
        50 => 0x13, // 2
        51 => 0x14, // 3
        52 => 0x15, // 4
        53 => 0x17, // 5
        54 => 0x16, // 6
        55 => 0x1A, // 7
        56 => 0x1C, // 8
        57 => 0x19, // 9
        // Punctuation (Chrome/Safari codes, then Firefox's differing ones).
        186 | 59 => 0x29,  // ; :
        187 | 61 => 0x18,  // = +
        188 => 0x2B,       // , <
        189 | 173 => 0x1B, // - _
        190 => 0x2F,       // . >
        191 => 0x2C,       // / ?
        192 => 0x32,       // ` ~
        219 => 0x21,       // [ {
        220 => 0x2A,       // \ |
        221 => 0x1E,       // ] }
        222 => 0x27,       // ' "
        226 => 0x0A,       // ISO key left of Z (§ on Mac ISO keyboards)
        // Editing and whitespace.
        8 => 0x33,  // Backspace → Delete
        9 => 0x30,  // Tab
        13 => 0x24, // Enter → Return (the keypad Enter shares keyCode 13)
        27 => 0x35, // Escape
        32 => 0x31, // Space
        // Modifiers.
        16 => mac::SHIFT,
        17 => mac::CONTROL,
        18 => mac::OPTION,
        20 => mac::CAPS_LOCK,
        91 | 92 | 93 | 224 => mac::COMMAND, // Meta left/right (93 is right Command in Chrome on macOS)
        // Arrows (ADB codes).
        37 => 0x3B, // Left
        38 => 0x3E, // Up
        39 => 0x3C, // Right
        40 => 0x3D, // Down
        // Navigation cluster.
        45 => 0x72, // Insert → Help
        46 => 0x75, // Delete → Forward Delete
        36 => 0x73, // Home
        35 => 0x77, // End
        33 => 0x74, // Page Up
        34 => 0x79, // Page Down
        // Keypad.
        96 => 0x52,        // 0
        97 => 0x53,        // 1
        98 => 0x54,        // 2
        99 => 0x55,        // 3
        100 => 0x56,       // 4
        101 => 0x57,       // 5
        102 => 0x58,       // 6
        103 => 0x59,       // 7
        104 => 0x5B,       // 8
        105 => 0x5C,       // 9
        106 => 0x43,       // *
        107 => 0x45,       // +
        109 => 0x4E,       // -
        110 | 108 => 0x41, // . (108: separator on some layouts)
        111 => 0x4B,       // /
        12 | 144 => 0x47,  // Clear (keypad 5 without Num Lock) and Num Lock → Clear
        // Function keys F1–F15.
        112 => 0x7A,       // F1
        113 => 0x78,       // F2
        114 => 0x63,       // F3
        115 => 0x76,       // F4
        116 => 0x60,       // F5
        117 => 0x61,       // F6
        118 => 0x62,       // F7
        119 => 0x64,       // F8
        120 => 0x65,       // F9
        121 => 0x6D,       // F10
        122 => 0x67,       // F11
        123 => 0x6F,       // F12
        124 | 44 => 0x69,  // F13 (Print Screen sits where F13 is on Apple keyboards)
        125 | 145 => 0x6B, // F14 (Scroll Lock)
        126 | 19 => 0x71,  // F15 (Pause)
        _ => return None,
    };
    Some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Apple's published virtual key codes (Inside Macintosh: Text, figure C-2; Events.h kVK_*) for the
    /// characters of a US keyboard, as (character, mac code). Written out independently of the table above.
    const US_CHARS: &[(char, u8)] = &[
        ('a', 0x00),
        ('s', 0x01),
        ('d', 0x02),
        ('f', 0x03),
        ('h', 0x04),
        ('g', 0x05),
        ('z', 0x06),
        ('x', 0x07),
        ('c', 0x08),
        ('v', 0x09),
        ('b', 0x0B),
        ('q', 0x0C),
        ('w', 0x0D),
        ('e', 0x0E),
        ('r', 0x0F),
        ('y', 0x10),
        ('t', 0x11),
        ('1', 0x12),
        ('2', 0x13),
        ('3', 0x14),
        ('4', 0x15),
        ('6', 0x16),
        ('5', 0x17),
        ('=', 0x18),
        ('9', 0x19),
        ('7', 0x1A),
        ('-', 0x1B),
        ('8', 0x1C),
        ('0', 0x1D),
        (']', 0x1E),
        ('o', 0x1F),
        ('u', 0x20),
        ('[', 0x21),
        ('i', 0x22),
        ('p', 0x23),
        ('l', 0x25),
        ('j', 0x26),
        ('\'', 0x27),
        ('k', 0x28),
        (';', 0x29),
        ('\\', 0x2A),
        (',', 0x2B),
        ('/', 0x2C),
        ('n', 0x2D),
        ('m', 0x2E),
        ('.', 0x2F),
        ('`', 0x32),
    ];

    /// The browser keyCode of a printable US character (the DOM spec's fixed values).
    fn dom_key_code(c: char) -> u16 {
        match c {
            'a'..='z' => c.to_ascii_uppercase() as u16,
            '0'..='9' => c as u16,
            ';' => 186,
            '=' => 187,
            ',' => 188,
            '-' => 189,
            '.' => 190,
            '/' => 191,
            '`' => 192,
            '[' => 219,
            '\\' => 220,
            ']' => 221,
            '\'' => 222,
            _ => unreachable!("not in the table"),
        }
    }

    #[test]
    fn every_printable_us_key_maps_to_apples_code() {
        for &(c, mac) in US_CHARS {
            assert_eq!(browser_to_mac(dom_key_code(c)), Some(mac), "key {c:?}");
        }
    }

    #[test]
    fn all_letters_digits_and_function_keys_are_mapped_and_distinct() {
        let mut seen = std::collections::HashMap::new();
        let keys: Vec<u16> = (65..=90)
            .chain(48..=57)
            .chain(112..=126)
            .chain(96..=105)
            .collect();
        for k in keys {
            let mac = browser_to_mac(k).unwrap_or_else(|| panic!("keyCode {k} unmapped"));
            assert!(mac < 0x80, "ADB codes are 7-bit");
            if let Some(prev) = seen.insert(mac, k) {
                panic!("keyCodes {prev} and {k} both map to {mac:#04x}");
            }
        }
    }

    #[test]
    fn modifiers_arrows_and_editing_keys() {
        assert_eq!(browser_to_mac(16), Some(mac::SHIFT));
        assert_eq!(browser_to_mac(17), Some(mac::CONTROL));
        assert_eq!(browser_to_mac(18), Some(mac::OPTION));
        assert_eq!(browser_to_mac(91), Some(mac::COMMAND));
        assert_eq!(browser_to_mac(224), Some(mac::COMMAND));
        assert_eq!(browser_to_mac(20), Some(mac::CAPS_LOCK));
        assert_eq!(
            [37, 38, 39, 40].map(browser_to_mac),
            [Some(0x3B), Some(0x3E), Some(0x3C), Some(0x3D)]
        );
        assert_eq!(browser_to_mac(8), Some(0x33));
        assert_eq!(browser_to_mac(13), Some(0x24));
        assert_eq!(browser_to_mac(27), Some(0x35));
        assert_eq!(browser_to_mac(46), Some(0x75));
        assert_eq!(modifier_bit(mac::OPTION), Some(modifier_bits::OPTION));
        assert_eq!(modifier_bit(0x00), None);
    }

    #[test]
    fn firefox_codes_agree_with_chrome() {
        assert_eq!(browser_to_mac(59), browser_to_mac(186));
        assert_eq!(browser_to_mac(61), browser_to_mac(187));
        assert_eq!(browser_to_mac(173), browser_to_mac(189));
    }

    #[test]
    fn unknown_codes_are_none() {
        for k in [0u16, 1, 7, 255, 1000, u16::MAX] {
            assert_eq!(browser_to_mac(k), None);
        }
    }
}
