//! Apple 6-and-2 GCR as the Macintosh 3.5" drives record it: the nibble table, address fields
//! and the data field's three-byte running checksum.
//!
//! A disk byte ("nibble") has bit 7 set and never more than two zero bits in a row, so the IWM
//! can find byte boundaries; 64 such values carry 6 bits each. Fields start with D5 AA and a
//! third mark byte (96 address, AD data) and end with DE AA; those marks are not in the table.

/// Disk bytes for the 6-bit values $00–$3F.
pub const ENCODE: [u8; 64] = [
    0x96, 0x97, 0x9A, 0x9B, 0x9D, 0x9E, 0x9F, 0xA6, 0xA7, 0xAB, 0xAC, 0xAD, 0xAE, 0xAF, 0xB2, 0xB3,
    0xB4, 0xB5, 0xB6, 0xB7, 0xB9, 0xBA, 0xBB, 0xBC, 0xBD, 0xBE, 0xBF, 0xCB, 0xCD, 0xCE, 0xCF, 0xD3,
    0xD6, 0xD7, 0xD9, 0xDA, 0xDB, 0xDC, 0xDD, 0xDE, 0xDF, 0xE5, 0xE6, 0xE7, 0xE9, 0xEA, 0xEB, 0xEC,
    0xED, 0xEE, 0xEF, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF9, 0xFA, 0xFB, 0xFC, 0xFD, 0xFE, 0xFF,
];

const INVALID: u8 = 0xFF;

const DECODE: [u8; 256] = {
    let mut t = [INVALID; 256];
    let mut i = 0;
    while i < 64 {
        t[ENCODE[i] as usize] = i as u8;
        i += 1;
    }
    t
};

/// The 6-bit value a disk byte carries, or `None` for a byte outside the table.
pub fn decode6(nibble: u8) -> Option<u8> {
    match DECODE[nibble as usize] {
        INVALID => None,
        v => Some(v),
    }
}

/// The disk byte for the low 6 bits of `v`.
pub fn encode6(v: u8) -> u8 {
    ENCODE[(v & 0x3F) as usize]
}

pub const ADDRESS_MARK: [u8; 3] = [0xD5, 0xAA, 0x96];
pub const DATA_MARK: [u8; 3] = [0xD5, 0xAA, 0xAD];
pub const FIELD_END: [u8; 2] = [0xDE, 0xAA];

/// Format byte of the address field: single-sided (400K) or double-sided (800K) disk.
pub const FORMAT_400K: u8 = 0x02;
pub const FORMAT_800K: u8 = 0x22;

/// Tag bytes and data bytes of one sector.
pub const TAG_BYTES: usize = 12;
pub const SECTOR_BYTES: usize = 512;
pub const RAW_SECTOR: usize = TAG_BYTES + SECTOR_BYTES;

/// Nibbles between the data mark and the field end: sector number, 699 data, 4 checksum.
pub const DATA_NIBBLES: usize = 1 + 699 + 4;
/// A whole data field: mark, nibbles, end.
pub const DATA_FIELD_LEN: usize = 3 + DATA_NIBBLES + 2;
/// A whole address field.
pub const ADDRESS_FIELD_LEN: usize = 10;

/// `D5 AA 96 T S H F C DE AA` for `track` (0–79), `sector`, `side` (0/1) and `format`.
pub fn address_field(track: u8, sector: u8, side: u8, format: u8) -> [u8; ADDRESS_FIELD_LEN] {
    let t = track & 0x3F;
    let s = sector & 0x3F;
    let h = ((side & 1) << 5) | (track >> 6);
    let f = format & 0x3F;
    let c = t ^ s ^ h ^ f;
    [
        0xD5,
        0xAA,
        0x96,
        encode6(t),
        encode6(s),
        encode6(h),
        encode6(f),
        encode6(c),
        0xDE,
        0xAA,
    ]
}

/// The decoded content of an address field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Address {
    pub track: u8,
    pub sector: u8,
    pub side: u8,
    pub format: u8,
}

/// Decodes the five nibbles after `D5 AA 96`; `None` if a nibble is invalid or the check fails.
pub fn decode_address(n: &[u8; 5]) -> Option<Address> {
    let mut v = [0u8; 5];
    for (o, &b) in v.iter_mut().zip(n) {
        *o = decode6(b)?;
    }
    if v[0] ^ v[1] ^ v[2] ^ v[3] ^ v[4] != 0 {
        return None;
    }
    Some(Address {
        track: v[0] | ((v[2] & 0x1F) << 6),
        sector: v[1],
        side: (v[2] >> 5) & 1,
        format: v[3],
    })
}

/// Running checksum of the data field (three bytes, Apple's "CA CB CC").
#[derive(Default)]
struct Sum {
    a: u8,
    b: u8,
    c: u8,
}

impl Sum {
    /// Folds one group of plain bytes in; returns the bytes as recorded (XORed with the sums).
    fn group(&mut self, b0: u8, b1: u8, b2: Option<u8>) -> (u8, u8, u8) {
        self.a = self.a.rotate_left(1);
        let carry = self.a & 1;
        let e0 = b0 ^ self.a;
        let (s, c1) = add3(self.c, b0, carry);
        self.c = s;
        let e1 = b1 ^ self.c;
        let (s, c2) = add3(self.b, b1, c1);
        self.b = s;
        let e2 = match b2 {
            Some(b2) => {
                let e2 = b2 ^ self.b;
                self.a = add3(self.a, b2, c2).0;
                e2
            }
            None => 0,
        };
        (e0, e1, e2)
    }

    /// Inverse of [`Sum::group`]: plain bytes from recorded ones, folding them in.
    fn ungroup(&mut self, e0: u8, e1: u8, e2: Option<u8>) -> (u8, u8, u8) {
        self.a = self.a.rotate_left(1);
        let carry = self.a & 1;
        let b0 = e0 ^ self.a;
        let (s, c1) = add3(self.c, b0, carry);
        self.c = s;
        let b1 = e1 ^ self.c;
        let (s, c2) = add3(self.b, b1, c1);
        self.b = s;
        let b2 = match e2 {
            Some(e2) => {
                let b2 = e2 ^ self.b;
                self.a = add3(self.a, b2, c2).0;
                b2
            }
            None => 0,
        };
        (b0, b1, b2)
    }

    fn nibbles(&self) -> [u8; 4] {
        [
            (self.a >> 6) | ((self.b >> 4) & 0x0C) | ((self.c >> 2) & 0x30),
            self.c & 0x3F,
            self.b & 0x3F,
            self.a & 0x3F,
        ]
    }
}

fn add3(a: u8, b: u8, c: u8) -> (u8, u8) {
    let s = u16::from(a) + u16::from(b) + u16::from(c);
    (s as u8, (s >> 8) as u8)
}

fn high_bits(e0: u8, e1: u8, e2: u8) -> u8 {
    ((e0 >> 2) & 0x30) | ((e1 >> 4) & 0x0C) | (e2 >> 6)
}

/// The whole data field for `sector`: `D5 AA AD`, sector, 699 nibbles of the 12 tag and 512
/// data bytes, 4 checksum nibbles, `DE AA`.
pub fn data_field(sector: u8, bytes: &[u8; RAW_SECTOR]) -> Vec<u8> {
    let mut out = Vec::with_capacity(DATA_FIELD_LEN);
    out.extend_from_slice(&DATA_MARK);
    out.push(encode6(sector));
    let mut sum = Sum::default();
    for g in bytes.chunks(3) {
        let last = g.len() == 2;
        let (e0, e1, e2) = sum.group(g[0], g[1], g.get(2).copied());
        out.push(encode6(high_bits(e0, e1, e2)));
        out.push(encode6(e0));
        out.push(encode6(e1));
        if !last {
            out.push(encode6(e2));
        }
    }
    out.extend(sum.nibbles().iter().map(|&n| encode6(n)));
    out.extend_from_slice(&FIELD_END);
    out
}

/// Why a data field does not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataError {
    /// A byte at this index of the nibbles is not a GCR disk byte.
    BadNibble(usize),
    Checksum,
}

/// Decodes the [`DATA_NIBBLES`] bytes after `D5 AA AD`: the sector number and its 524 bytes.
pub fn decode_data(n: &[u8; DATA_NIBBLES]) -> Result<(u8, [u8; RAW_SECTOR]), DataError> {
    let mut v = [0u8; DATA_NIBBLES];
    for (i, (o, &b)) in v.iter_mut().zip(n.iter()).enumerate() {
        *o = decode6(b).ok_or(DataError::BadNibble(i))?;
    }
    let mut out = [0u8; RAW_SECTOR];
    let mut sum = Sum::default();
    let mut src = v[1..700].iter().copied();
    let mut next = || src.next().unwrap_or(0);
    for g in out.chunks_mut(3) {
        let hi = next();
        let e0 = next() | ((hi << 2) & 0xC0);
        let e1 = next() | ((hi << 4) & 0xC0);
        let e2 = (g.len() == 3).then(|| next() | ((hi << 6) & 0xC0));
        let (b0, b1, b2) = sum.ungroup(e0, e1, e2);
        g[0] = b0;
        g[1] = b1;
        if let Some(x) = g.get_mut(2) {
            *x = b2;
        }
    }
    if sum.nibbles() != v[700..704] {
        return Err(DataError::Checksum);
    }
    Ok((v[0], out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table is exactly the bytes the doc describes: b7 set, at most one "00" pair, a "11"
    /// pair in bits 6–0, without the marks AA and D5.
    #[test]
    fn table_is_the_documented_rule() {
        let rule: Vec<u8> = (0x80u16..=0xFF)
            .map(|b| b as u8)
            .filter(|&b| {
                let zero_pairs = (0..7).filter(|&i| (b >> i) & 3 == 0).count();
                let ones_pair = (0..6).any(|i| (b >> i) & 3 == 3);
                zero_pairs <= 1 && ones_pair && b != 0xAA && b != 0xD5
            })
            .collect();
        assert_eq!(rule, ENCODE.to_vec());
    }

    #[test]
    fn every_six_bit_value_round_trips_and_nothing_else_decodes() {
        for v in 0..64u8 {
            assert_eq!(decode6(encode6(v)), Some(v));
        }
        let valid = (0..=255u8).filter(|&b| decode6(b).is_some()).count();
        assert_eq!(valid, 64);
        for mark in [0xD5, 0xAA, 0x00, 0x7F] {
            assert_eq!(decode6(mark), None);
        }
    }

    #[test]
    fn address_field_vectors() {
        assert_eq!(
            address_field(0, 0, 0, FORMAT_800K),
            [0xD5, 0xAA, 0x96, 0x96, 0x96, 0x96, 0xD9, 0xD9, 0xDE, 0xAA]
        );
        assert_eq!(
            address_field(11, 9, 1, FORMAT_800K),
            [0xD5, 0xAA, 0x96, 0xAD, 0xAB, 0xD6, 0xD9, 0x96, 0xDE, 0xAA]
        );
        let f = address_field(79, 7, 1, FORMAT_800K);
        let a = decode_address(&[f[3], f[4], f[5], f[6], f[7]]).unwrap();
        assert_eq!(
            a,
            Address {
                track: 79,
                sector: 7,
                side: 1,
                format: FORMAT_800K
            }
        );
        // A corrupted check nibble is refused.
        assert_eq!(decode_address(&[f[3], f[4], f[5], f[6], 0x96]), None);
    }

    /// Zero tags then a boot block header `4C 4B 60 00 00 86 00 12 00 00 06 53 79 73 74 65 6D
    /// 20` ("LK", BRA, version, "\x06System"): the data field begins as the published vector
    /// does (each group's nibbles depend only on the bytes so far).
    #[test]
    fn data_field_starts_like_the_published_vector() {
        let mut sector = [0u8; RAW_SECTOR];
        sector[12..30].copy_from_slice(&[
            0x4C, 0x4B, 0x60, 0x00, 0x00, 0x86, 0x00, 0x12, 0x00, 0x00, 0x06, 0x53, 0x79, 0x73,
            0x74, 0x65, 0x6D, 0x20,
        ]);
        let f = data_field(0, &sector);
        assert_eq!(f.len(), DATA_FIELD_LEN);
        assert_eq!(&f[..4], &[0xD5, 0xAA, 0xAD, 0x96]);
        assert!(f[4..20].iter().all(|&b| b == 0x96), "zero tags");
        assert_eq!(
            &f[20..44],
            &[
                0xB4, 0xAE, 0xA6, 0xE7, 0xF6, 0x96, 0xAE, 0xAF, 0xDC, 0xAE, 0xCF, 0xCE, 0x9D, 0xBE,
                0xAD, 0xED, 0xE6, 0xD7, 0xF4, 0xD9, 0xF4, 0xFD, 0x9F, 0xDB
            ]
        );
        assert_eq!(&f[DATA_FIELD_LEN - 2..], &FIELD_END);
    }

    /// The published checksum FC D9 9D EF belongs to sums CA/CB/CC = $32/$C4/$E2.
    #[test]
    fn checksum_nibbles_from_the_sums() {
        let s = Sum {
            a: 0x32,
            b: 0xC4,
            c: 0xE2,
        };
        let n: Vec<u8> = s.nibbles().iter().map(|&v| encode6(v)).collect();
        assert_eq!(n, [0xFC, 0xD9, 0x9D, 0xEF]);
    }

    /// Every byte value in every position of a group (and in the short last group) survives
    /// encode then decode, and flipping any nibble is caught.
    #[test]
    fn data_round_trip_every_byte_value() {
        for shift in 0..3usize {
            let mut sector = [0u8; RAW_SECTOR];
            for (i, b) in sector.iter_mut().enumerate() {
                *b = ((i / 3 + shift * 85 + i % 3 * 7) & 0xFF) as u8;
            }
            sector[RAW_SECTOR - 2] = (shift * 100) as u8;
            sector[RAW_SECTOR - 1] = 0xFF - shift as u8;
            let f = data_field(5, &sector);
            let mut n = [0u8; DATA_NIBBLES];
            n.copy_from_slice(&f[3..3 + DATA_NIBBLES]);
            assert_eq!(decode_data(&n), Ok((5, sector)));
        }
        let sector = [0xA5u8; RAW_SECTOR];
        let f = data_field(3, &sector);
        for i in [1usize, 2, 100, 699, 700, 703] {
            let mut n = [0u8; DATA_NIBBLES];
            n.copy_from_slice(&f[3..3 + DATA_NIBBLES]);
            n[i] = encode6(decode6(n[i]).unwrap() ^ 0x01);
            assert_eq!(decode_data(&n), Err(DataError::Checksum), "nibble {i}");
        }
        let mut n = [0u8; DATA_NIBBLES];
        n.copy_from_slice(&f[3..3 + DATA_NIBBLES]);
        n[10] = 0xD5;
        assert_eq!(decode_data(&n), Err(DataError::BadNibble(10)));
    }

    /// Each of the 256 values at each of the three group positions (so every path through the
    /// carries) decodes back.
    #[test]
    fn every_byte_in_every_group_position() {
        for pos in 0..3 {
            for v in 0..=255u8 {
                let mut sector = [0x5Au8; RAW_SECTOR];
                sector[300 + pos] = v;
                sector[RAW_SECTOR - 1 - pos.min(1)] = v;
                let f = data_field(1, &sector);
                let mut n = [0u8; DATA_NIBBLES];
                n.copy_from_slice(&f[3..3 + DATA_NIBBLES]);
                assert_eq!(decode_data(&n).map(|(_, d)| d), Ok(sector));
            }
        }
    }
}
