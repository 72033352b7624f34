//! Identifying Macintosh ROM images before a machine is built around them.
//!
//! A Mac ROM starts with a 32-bit checksum: the sum, modulo 2^32, of every big-endian 16-bit word
//! after the first four bytes. The checksum also names the ROM version, which tells the model.

use std::fmt;

/// Size of a Mac Plus ROM image.
pub const PLUS_ROM_SIZE: usize = 128 * 1024;

/// The largest ROM of any 68k Macintosh (1 MiB, Quadra). A file is read up to one byte more than
/// this: anything longer is no Mac ROM, and a larger ROM is still read whole so [`identify`] can
/// name the model it belongs to.
pub const MAX_ROM_SIZE: usize = 1 << 20;

/// What a ROM image was recognised as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RomKind {
    /// An Apple Macintosh Plus ROM (one of the three released revisions).
    MacPlus { revision: u8, checksum: u32 },
    /// A ROM whose stored checksum is consistent but which Apple never shipped: our demo ROM, or a
    /// user's own build for the Plus hardware.
    Custom { checksum: u32 },
}

/// Why a file cannot be used as a Mac Plus ROM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RomError {
    /// The image is not 128 KiB.
    WrongSize { len: usize },
    /// The stored checksum does not match the contents: not a ROM, or a damaged one.
    BadChecksum { stored: u32, computed: u32 },
    /// A genuine ROM of another Macintosh model.
    OtherModel { checksum: u32, model: &'static str },
    /// An unknown image whose checksum is zero: an all-zero file stores the sum of its own
    /// contents, so a zero checksum proves nothing.
    ZeroChecksum,
    /// An unknown image whose reset vector does not start the 68000 inside the ROM.
    BadResetVector { pc: u32 },
}

impl fmt::Display for RomError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RomError::WrongSize { len } => write!(
                f,
                "a Mac Plus ROM is {PLUS_ROM_SIZE} bytes (128 KiB), this file has {len} bytes"
            ),
            RomError::BadChecksum { stored, computed } => write!(
                f,
                "not a Mac ROM image: stored checksum {stored:08X} but the contents sum to {computed:08X}"
            ),
            RomError::OtherModel { checksum, model } => write!(
                f,
                "this is a {model} ROM (checksum {checksum:08X}); macemu emulates the Mac Plus"
            ),
            RomError::ZeroChecksum => write!(
                f,
                "not a Mac ROM image: its checksum is zero (a blank or all-zero file)"
            ),
            RomError::BadResetVector { pc } => write!(
                f,
                "not a Mac Plus ROM image: its reset vector starts at {pc:08X}, outside the ROM at \
                 {ROM_BASE:06X}..{:06X} (or at an odd address)",
                ROM_BASE + PLUS_ROM_SIZE as u32
            ),
        }
    }
}

impl std::error::Error for RomError {}

/// Where the Plus maps its ROM. At reset the overlay also shows the ROM at 0, so the CPU takes
/// its initial SSP and PC from the ROM's first two longs; the PC must already point into the
/// 0x400000 image, because the ROM turns the overlay off and RAM replaces it at 0.
pub const ROM_BASE: u32 = 0x40_0000;

/// The three Mac Plus ROM revisions: (checksum, revision).
pub const MAC_PLUS_ROMS: [(u32, u8); 3] = [(0x4D1E_EEE1, 1), (0x4D1E_EAE1, 2), (0x4D1F_8172, 3)];

/// ROMs of other 68k models that users commonly have, so the error can say what the file is.
const OTHER_MODELS: [(u32, &str); 8] = [
    (0x28BA_61CE, "Macintosh 128K/512K (64K ROM v1)"),
    (0x28BA_4E50, "Macintosh 512K (64K ROM v2)"),
    (0xB2E3_62A8, "Macintosh SE"),
    (0x9779_D2C4, "Macintosh II"),
    (0x97221136, "Macintosh IIx/IIcx/SE/30"),
    (0x368C_ADFE, "Macintosh IIci"),
    (0x350E_ACF0, "Macintosh LC"),
    (0x420D_BFF3, "Quadra 700/900 and later"),
];

/// The Macintosh model whose genuine ROM stores `checksum`, when it is one we know.
pub fn model_name(checksum: u32) -> Option<&'static str> {
    if MAC_PLUS_ROMS.iter().any(|&(c, _)| c == checksum) {
        return Some("Macintosh Plus");
    }
    OTHER_MODELS
        .iter()
        .find(|&&(c, _)| c == checksum)
        .map(|&(_, m)| m)
}

/// The checksum a Mac ROM stores in its first four bytes, computed over the rest.
pub fn compute_checksum(image: &[u8]) -> u32 {
    image
        .get(4..)
        .unwrap_or(&[])
        .chunks_exact(2)
        .fold(0u32, |sum, w| {
            sum.wrapping_add(u32::from(u16::from_be_bytes([w[0], w[1]])))
        })
}

/// Checks that `image` is usable as a Mac Plus ROM and says which one it is.
pub fn identify(image: &[u8]) -> Result<RomKind, RomError> {
    let stored = image
        .get(..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    if let Some(stored) = stored {
        if let Some(&(_, model)) = OTHER_MODELS.iter().find(|(c, _)| *c == stored) {
            if compute_checksum(image) == stored {
                return Err(RomError::OtherModel {
                    checksum: stored,
                    model,
                });
            }
        }
    }
    if image.len() != PLUS_ROM_SIZE {
        return Err(RomError::WrongSize { len: image.len() });
    }
    let stored = stored.unwrap_or(0);
    let computed = compute_checksum(image);
    if stored != computed {
        return Err(RomError::BadChecksum { stored, computed });
    }
    if let Some(&(checksum, revision)) = MAC_PLUS_ROMS.iter().find(|(c, _)| *c == stored) {
        return Ok(RomKind::MacPlus { revision, checksum });
    }
    // An image nobody has vouched for must at least look like code for the Plus.
    if stored == 0 {
        return Err(RomError::ZeroChecksum);
    }
    let pc = u32::from_be_bytes([image[4], image[5], image[6], image[7]]);
    let rom_end = ROM_BASE + PLUS_ROM_SIZE as u32;
    // Past the two vector longs, inside the image, and even (an odd PC is an address error).
    if !(ROM_BASE + 8..rom_end).contains(&pc) || pc & 1 != 0 {
        return Err(RomError::BadResetVector { pc });
    }
    Ok(RomKind::Custom { checksum: stored })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_checksum(mut image: Vec<u8>) -> Vec<u8> {
        let sum = compute_checksum(&image);
        image[..4].copy_from_slice(&sum.to_be_bytes());
        image
    }

    #[test]
    fn accepts_an_image_whose_checksum_matches() {
        let mut image = vec![0u8; PLUS_ROM_SIZE];
        image[4..8].copy_from_slice(&0x0040_002Au32.to_be_bytes());
        image[100] = 0x4E;
        let image = with_checksum(image);
        let expected = 0x0040 + 0x002A + 0x4E00;
        assert_eq!(identify(&image), Ok(RomKind::Custom { checksum: expected }));
    }

    #[test]
    fn rejects_wrong_size_and_bad_checksum() {
        assert_eq!(
            identify(&[0u8; 1000]),
            Err(RomError::WrongSize { len: 1000 })
        );
        let mut image = with_checksum(vec![7u8; PLUS_ROM_SIZE]);
        image[9] ^= 1;
        assert!(matches!(
            identify(&image),
            Err(RomError::BadChecksum { .. })
        ));
        // A text file of the right size is not a ROM either.
        let text = vec![b'a'; PLUS_ROM_SIZE];
        assert!(matches!(identify(&text), Err(RomError::BadChecksum { .. })));
    }

    /// A custom image: SSP, then reset PC, then a little code, checksum stored.
    fn custom_image(pc: u32) -> Vec<u8> {
        let mut image = vec![0xFFu8; PLUS_ROM_SIZE];
        image[4..8].copy_from_slice(&pc.to_be_bytes());
        image[0x1C..0x20].copy_from_slice(&[0x46, 0xFC, 0x27, 0x00]); // MOVE.W #$2700,SR
        with_checksum(image)
    }

    #[test]
    fn rejects_an_all_zero_file() {
        // Stored 0 equals computed 0, but zero proves nothing.
        let zero = vec![0u8; PLUS_ROM_SIZE];
        assert_eq!(compute_checksum(&zero), 0);
        assert_eq!(identify(&zero), Err(RomError::ZeroChecksum));
        assert!(RomError::ZeroChecksum.to_string().contains("zero"));
    }

    #[test]
    fn rejects_a_reset_pc_outside_the_rom() {
        for pc in [
            0,
            0x1C,
            0x40_0004,
            0x40_001D,
            0x42_0000,
            0x50_001C,
            0xFFFF_FFFE,
        ] {
            let image = custom_image(pc);
            assert_eq!(
                identify(&image),
                Err(RomError::BadResetVector { pc }),
                "pc {pc:#x}"
            );
        }
        let e = RomError::BadResetVector { pc: 0x1C };
        assert!(e.to_string().contains("0000001C"), "{e}");
    }

    #[test]
    fn accepts_a_good_custom_image() {
        for pc in [0x40_0008, 0x40_001C, 0x41_FFFE] {
            let image = custom_image(pc);
            let checksum = compute_checksum(&image);
            assert_ne!(checksum, 0);
            assert_eq!(identify(&image), Ok(RomKind::Custom { checksum }));
        }
    }

    #[test]
    fn accepts_the_demo_rom_and_known_plus_checksums_name_the_revision() {
        let demo = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../roms/demo.rom"))
            .expect("roms/demo.rom is checked in");
        assert!(matches!(identify(&demo), Ok(RomKind::Custom { .. })));
        // A known Plus checksum skips the custom-image checks: Apple's ROMs are trusted by sum.
        // Build an image that sums to revision 3's checksum with an arbitrary reset vector.
        let target = MAC_PLUS_ROMS[2].0;
        let mut image = vec![0u8; PLUS_ROM_SIZE];
        image[..4].copy_from_slice(&target.to_be_bytes());
        let mut need = target;
        for w in image[4..].chunks_exact_mut(2) {
            let v = need.min(0xFFFF);
            w.copy_from_slice(&(v as u16).to_be_bytes());
            need -= v;
            if need == 0 {
                break;
            }
        }
        assert_eq!(need, 0);
        assert_eq!(
            identify(&image),
            Ok(RomKind::MacPlus {
                revision: 3,
                checksum: target
            })
        );
    }

    #[test]
    fn errors_are_readable() {
        let e = RomError::WrongSize { len: 3 };
        assert!(e.to_string().contains("131072"));
    }
}
