//! Geometry of the 3.5" GCR disk and the recorded layout of one track.
//!
//! The drive spins slower toward the inside (five zones, 12 down to 8 sectors a track) so that
//! a bit cell stays about 2 µs everywhere. A track is modelled as one revolution of disk bytes,
//! each with its length in bit cells: 8 for a data byte, 10 for a self-sync byte (FF and two
//! zero cells), so the IWM finds byte boundaries the way the real one does after a gap.

use super::gcr;
use crate::mac::CPU_HZ;

pub const TRACKS: u8 = 80;
/// Tracks per speed zone.
pub const ZONE_TRACKS: u8 = 16;
/// Sectors a track in each zone.
pub const ZONE_SECTORS: [u8; 5] = [12, 11, 10, 9, 8];
/// Spindle speed of each zone (MAME, snow; within 0.2 % of Clock Signal's figures).
pub const ZONE_RPM: [u32; 5] = [394, 429, 472, 525, 590];
/// CPU clocks per bit cell: the Plus's IWM in mode $1F counts 16 FCLK (= CPU clocks) a cell.
pub const CELL_CLOCKS: u64 = 16;
/// Sync bytes before each address field and between address and data field. The ROM looks for
/// the data mark within 48 bytes of the address field, and writes its own sync group there.
const SYNC_BEFORE_DATA: usize = 6;

pub fn zone(track: u8) -> usize {
    usize::from(track.min(TRACKS - 1) / ZONE_TRACKS)
}

pub fn sectors(track: u8) -> u8 {
    ZONE_SECTORS[zone(track)]
}

pub fn rpm(track: u8) -> u32 {
    ZONE_RPM[zone(track)]
}

/// CPU clocks for one revolution at this track's speed.
pub fn rev_clocks(track: u8) -> u64 {
    CPU_HZ * 60 / u64::from(rpm(track))
}

/// Bit cells that pass the head in one revolution.
pub fn cells_per_rev(track: u8) -> u32 {
    (rev_clocks(track) / CELL_CLOCKS) as u32
}

/// Blocks before `track` on a disk with `sides` sides (the logical order is track, side,
/// sector).
pub fn first_block(track: u8, sides: u8) -> u32 {
    (0..track.min(TRACKS))
        .map(|t| u32::from(sectors(t)) * u32::from(sides))
        .sum()
}

/// Physical order of the sectors around a track: 2:1 interleave.
pub fn interleave(track: u8) -> Vec<u8> {
    let n = usize::from(sectors(track));
    let mut order = vec![0u8; n];
    let mut pos = 0;
    for s in 0..n as u8 {
        order[pos] = s;
        pos += 2;
        if pos >= n {
            pos = 1;
        }
    }
    order
}

/// One revolution of a track as disk bytes.
#[derive(Clone, Debug)]
pub struct Track {
    pub bytes: Vec<u8>,
    /// For each byte, the cell (from the index) at which its eighth bit has passed the head:
    /// the moment the IWM has the byte.
    pub ready_at: Vec<u32>,
    pub cells: u32,
}

impl Track {
    /// A formatted track: for each sector in interleave order, sync, address field, sync, data
    /// field; the rest of the revolution is sync. `sector(s)` gives tags and data of sector `s`.
    pub fn build(
        track: u8,
        side: u8,
        format: u8,
        mut sector: impl FnMut(u8) -> [u8; gcr::RAW_SECTOR],
    ) -> Track {
        let order = interleave(track);
        let cells = cells_per_rev(track);
        let n = order.len() as u32;
        let per_sector = (gcr::ADDRESS_FIELD_LEN + gcr::DATA_FIELD_LEN) as u32 * 8
            + SYNC_BEFORE_DATA as u32 * 10;
        // The leftover cells spread as self-sync before each address field.
        let gap = cells.saturating_sub(per_sector * n) / (10 * n);
        let mut t = Builder::default();
        for &s in &order {
            t.sync(gap as usize);
            t.bytes(&gcr::address_field(track, s, side, format));
            t.sync(SYNC_BEFORE_DATA);
            t.bytes(&gcr::data_field(s, &sector(s)));
        }
        t.finish(cells)
    }

    /// A track with no fields (the second side of a single-sided disk): sync all round.
    pub fn blank(track: u8) -> Track {
        let cells = cells_per_rev(track);
        let mut t = Builder::default();
        t.sync((cells / 10) as usize);
        t.finish(cells)
    }

    /// Index of the last byte complete at `cell` (0 ≤ cell < cells); `None` before the first.
    pub fn last_ready(&self, cell: u32) -> Option<usize> {
        self.ready_at.partition_point(|&c| c <= cell).checked_sub(1)
    }
}

#[derive(Default)]
struct Builder {
    bytes: Vec<u8>,
    ready_at: Vec<u32>,
    cell: u32,
}

impl Builder {
    fn byte(&mut self, b: u8, len: u32) {
        self.bytes.push(b);
        self.ready_at.push(self.cell + 8);
        self.cell += len;
    }
    fn bytes(&mut self, bs: &[u8]) {
        for &b in bs {
            self.byte(b, 8);
        }
    }
    fn sync(&mut self, n: usize) {
        for _ in 0..n {
            self.byte(0xFF, 10);
        }
    }
    fn finish(mut self, cells: u32) -> Track {
        // Close the revolution with sync; the last byte absorbs the odd cells.
        while self.cell + 10 <= cells {
            self.byte(0xFF, 10);
        }
        debug_assert!(self.cell <= cells);
        Track {
            bytes: self.bytes,
            ready_at: self.ready_at,
            cells,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sector numbers and fields found by scanning the track bytes like a reader would.
    fn scan(t: &Track) -> Vec<(gcr::Address, u8, [u8; gcr::RAW_SECTOR])> {
        let b = &t.bytes;
        let mut found = Vec::new();
        let mut i = 0;
        while i + 10 <= b.len() {
            if b[i..i + 3] == gcr::ADDRESS_MARK {
                let a = gcr::decode_address(&[b[i + 3], b[i + 4], b[i + 5], b[i + 6], b[i + 7]])
                    .expect("address field checks");
                assert_eq!(&b[i + 8..i + 10], &gcr::FIELD_END);
                // The data mark follows within 48 bytes, as the ROM requires.
                let d = (i + 10..i + 58)
                    .find(|&j| b[j..j + 3] == gcr::DATA_MARK)
                    .expect("data mark within 48 bytes");
                let mut n = [0u8; gcr::DATA_NIBBLES];
                n.copy_from_slice(&b[d + 3..d + 3 + gcr::DATA_NIBBLES]);
                let (s, data) = gcr::decode_data(&n).expect("data field checks");
                let end = d + 3 + gcr::DATA_NIBBLES;
                assert_eq!(&b[end..end + 2], &gcr::FIELD_END);
                found.push((a, s, data));
                i = end;
            } else {
                i += 1;
            }
        }
        found
    }

    #[test]
    fn zones_and_first_blocks() {
        // The doc's table: first block of each zone on 400K and 800K disks.
        let firsts: Vec<(u32, u32)> = [0u8, 16, 32, 48, 64]
            .iter()
            .map(|&t| (first_block(t, 1), first_block(t, 2)))
            .collect();
        assert_eq!(
            firsts,
            [(0, 0), (192, 384), (368, 736), (528, 1056), (672, 1344)]
        );
        assert_eq!(first_block(80, 1), 800);
        assert_eq!(first_block(80, 2), 1600);
        // Cells a revolution at 16 clocks a cell, as tabled (74,558 … 49,789).
        let cells: Vec<u32> = [0u8, 16, 32, 48, 64]
            .iter()
            .map(|&t| cells_per_rev(t))
            .collect();
        assert_eq!(cells, [74_558, 68_475, 62_237, 55_954, 49_789]);
    }

    #[test]
    fn interleave_orders() {
        assert_eq!(interleave(0), [0, 6, 1, 7, 2, 8, 3, 9, 4, 10, 5, 11]);
        assert_eq!(interleave(16), [0, 6, 1, 7, 2, 8, 3, 9, 4, 10, 5]);
        assert_eq!(interleave(32), [0, 5, 1, 6, 2, 7, 3, 8, 4, 9]);
        assert_eq!(interleave(48), [0, 5, 1, 6, 2, 7, 3, 8, 4]);
        assert_eq!(interleave(79), [0, 4, 1, 5, 2, 6, 3, 7]);
    }

    #[test]
    fn built_track_of_every_zone() {
        for track in [0u8, 15, 16, 31, 32, 47, 48, 63, 64, 79] {
            for side in 0..2u8 {
                let content = |s: u8| {
                    let mut d = [0u8; gcr::RAW_SECTOR];
                    for (i, b) in d.iter_mut().enumerate() {
                        *b = (i as u8) ^ s ^ track ^ (side << 7);
                    }
                    d
                };
                let t = Track::build(track, side, gcr::FORMAT_800K, content);
                let found = scan(&t);
                let order: Vec<u8> = found.iter().map(|f| f.0.sector).collect();
                assert_eq!(order, interleave(track), "track {track}");
                assert_eq!(found.len(), usize::from(sectors(track)));
                for (a, s, data) in &found {
                    assert_eq!(a.track, track);
                    assert_eq!(a.side, side);
                    assert_eq!(a.format, gcr::FORMAT_800K);
                    assert_eq!(*s, a.sector);
                    assert_eq!(*data, content(a.sector));
                }
                // One revolution: the bytes take no more cells than pass the head, and the
                // last byte is complete before the index comes round again.
                // (the last byte is a sync byte: its two zero cells follow its eighth bit).
                assert_eq!(*t.bytes.last().unwrap(), 0xFF);
                assert!(*t.ready_at.last().unwrap() + 2 <= t.cells);
                assert_eq!(t.cells, cells_per_rev(track));
                // Byte times strictly increase: one byte every 8 or 10 cells.
                for w in t.ready_at.windows(2) {
                    assert!(w[1] - w[0] == 8 || w[1] - w[0] == 10);
                }
            }
        }
    }

    #[test]
    fn last_ready_positions() {
        let t = Track::blank(0);
        assert_eq!(t.last_ready(0), None);
        assert_eq!(t.last_ready(7), None);
        assert_eq!(t.last_ready(8), Some(0));
        assert_eq!(t.last_ready(17), Some(0));
        assert_eq!(t.last_ready(18), Some(1));
        assert_eq!(t.last_ready(t.cells - 1), Some(t.bytes.len() - 1));
    }
}
