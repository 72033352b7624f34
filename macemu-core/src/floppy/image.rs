//! Floppy image files: raw 400K/800K, raw with tags, and DiskCopy 4.2.
//!
//! The whole disk (data and tags) is read into memory when the image is opened; every sector
//! the Mac writes goes to the [`Backing`] before [`FloppyImage::write_sector`] returns, with the
//! DiskCopy checksums in the header brought up to date, so the file always holds what the Mac
//! was told is written.
//!
//! Layouts:
//! - raw: the blocks in logical order (track, side, sector), 409,600 or 819,200 bytes;
//! - raw with tags: those blocks, then 12 tag bytes per block in the same order (419,200 or
//!   838,400 bytes), the order DiskCopy 4.2 uses;
//! - DiskCopy 4.2: an 84-byte big-endian header, the data, then the tags (or none).
//!
//! DiskCopy checksums: a stored checksum that does not match the contents is reported (see
//! [`FloppyImage::checksum_warning`] and the format string of [`FloppyImage::info`]) but the
//! image still opens: images with wrong checksums circulate (Clock Signal ignores them for
//! that reason), and a host crash between a sector write and its header update leaves one.
//! The next sector the Mac writes stores checksums that match the whole image again.

use super::gcr::{self, RAW_SECTOR, SECTOR_BYTES, TAG_BYTES};
use super::track;
use crate::storage::{Backing, DiskError, MediaInfo};

const RAW_400K: u64 = 409_600;
const RAW_800K: u64 = 819_200;
const DC42_HEADER: u64 = 0x54;
const DC42_CHECKSUMS: u64 = 0x48;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageFormat {
    Raw,
    RawWithTags,
    DiskCopy42,
}

/// The formats we take, for error messages.
const TAKEN: &str = "macemu takes raw 400K/800K images (409,600 or 819,200 bytes), raw images \
                     followed by 12 tag bytes a block (419,200 or 838,400 bytes) and DiskCopy 4.2 \
                     images of 400K or 800K GCR disks";

/// DiskCopy 4.2 checksum: for each big-endian word, add then rotate right by one.
pub fn dc42_checksum(bytes: &[u8]) -> u32 {
    bytes.chunks(2).fold(0u32, |s, w| {
        let w = u32::from(w[0]) << 8 | u32::from(*w.get(1).unwrap_or(&0));
        s.wrapping_add(w).rotate_right(1)
    })
}

/// A 3.5" floppy disk image, ready for a drive.
pub struct FloppyImage {
    backing: Box<dyn Backing>,
    format: ImageFormat,
    sides: u8,
    data: Vec<u8>,
    tags: Vec<u8>,
    data_off: u64,
    /// Where the tags live in the file, if the file keeps them.
    tag_off: Option<u64>,
    checksum_warning: Option<String>,
}

impl std::fmt::Debug for FloppyImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FloppyImage")
            .field("name", &self.backing.name())
            .field("format", &self.format)
            .field("sides", &self.sides)
            .finish()
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

impl FloppyImage {
    /// Recognises the image in `backing` and reads it. Nothing is ever written here; a file in
    /// another format gets [`DiskError::Format`] naming the formats we take.
    pub fn open(mut backing: Box<dyn Backing>) -> Result<FloppyImage, DiskError> {
        let len = backing.len();
        let name = backing.name();
        let (format, data_len, data_off, tag_off) = match len {
            RAW_400K | RAW_800K => (ImageFormat::Raw, len, 0, None),
            _ if len == RAW_400K / 512 * 524 || len == RAW_800K / 512 * 524 => {
                let data = len / 524 * 512;
                (ImageFormat::RawWithTags, data, 0, Some(data))
            }
            _ => {
                let mut h = [0u8; DC42_HEADER as usize];
                if len < DC42_HEADER {
                    return Err(not_ours(&name, len));
                }
                backing.read_at(0, &mut h)?;
                if h[0x52..0x54] != [0x01, 0x00] || h[0] > 63 {
                    return Err(not_ours(&name, len));
                }
                let data = u64::from(be32(&h[0x40..]));
                let tags = u64::from(be32(&h[0x44..]));
                if h[0x50] >= 2 {
                    return Err(DiskError::Format(format!(
                        "{name}: a DiskCopy 4.2 image of an MFM disk (720K/1440K), which the \
                         Mac Plus cannot read; {TAKEN}"
                    )));
                }
                if data != RAW_400K && data != RAW_800K {
                    return Err(DiskError::Format(format!(
                        "{name}: a DiskCopy 4.2 image of {data} data bytes, not a 400K or 800K \
                         disk; {TAKEN}"
                    )));
                }
                if tags != 0 && tags != data / 512 * 12 {
                    return Err(DiskError::Format(format!(
                        "{name}: DiskCopy 4.2 tag size {tags} does not fit {data} data bytes; \
                         {TAKEN}"
                    )));
                }
                if len < DC42_HEADER + data + tags {
                    return Err(DiskError::Format(format!(
                        "{name}: DiskCopy 4.2 image truncated ({len} bytes, header says {}); \
                         {TAKEN}",
                        DC42_HEADER + data + tags
                    )));
                }
                let tag_off = (tags != 0).then_some(DC42_HEADER + data);
                (ImageFormat::DiskCopy42, data, DC42_HEADER, tag_off)
            }
        };
        let blocks = (data_len / 512) as usize;
        let mut data = vec![0u8; data_len as usize];
        backing.read_at(data_off, &mut data)?;
        let mut tags = vec![0u8; blocks * TAG_BYTES];
        if let Some(off) = tag_off {
            backing.read_at(off, &mut tags)?;
        }
        let mut img = FloppyImage {
            backing,
            format,
            sides: if data_len == RAW_800K { 2 } else { 1 },
            data,
            tags,
            data_off,
            tag_off,
            checksum_warning: None,
        };
        if format == ImageFormat::DiskCopy42 {
            let mut sums = [0u8; 8];
            img.backing.read_at(DC42_CHECKSUMS, &mut sums)?;
            let (d, t) = img.checksums();
            let (sd, st) = (be32(&sums[..4]), be32(&sums[4..]));
            let mut bad = Vec::new();
            if sd != d {
                bad.push(format!("data checksum {sd:08X}, contents sum to {d:08X}"));
            }
            if img.tag_off.is_some() && st != t {
                bad.push(format!("tag checksum {st:08X}, contents sum to {t:08X}"));
            }
            if !bad.is_empty() {
                img.checksum_warning = Some(format!(
                    "{}: DiskCopy 4.2 header {}",
                    img.backing.name(),
                    bad.join("; ")
                ));
            }
        }
        Ok(img)
    }

    /// Data and tag checksums of the contents, as DiskCopy 4.2 stores them.
    pub fn checksums(&self) -> (u32, u32) {
        let tags = self.tags.get(TAG_BYTES..).unwrap_or(&[]);
        (dc42_checksum(&self.data), dc42_checksum(tags))
    }

    /// Set when a DiskCopy image's stored checksums did not match its contents on opening.
    pub fn checksum_warning(&self) -> Option<&str> {
        self.checksum_warning.as_deref()
    }

    pub fn format(&self) -> ImageFormat {
        self.format
    }

    /// 1 for a 400K disk, 2 for an 800K disk.
    pub fn sides(&self) -> u8 {
        self.sides
    }

    pub fn blocks(&self) -> u32 {
        (self.data.len() / SECTOR_BYTES) as u32
    }

    /// Write-protected as the Mac sees it: the backing refuses writes.
    pub fn read_only(&self) -> bool {
        self.backing.read_only()
    }

    /// The address field's format byte for this disk.
    pub fn format_byte(&self) -> u8 {
        if self.sides == 2 {
            gcr::FORMAT_800K
        } else {
            gcr::FORMAT_400K
        }
    }

    pub fn info(&self) -> MediaInfo {
        let size = if self.sides == 2 { "800K" } else { "400K" };
        let mut format = match self.format {
            ImageFormat::Raw => format!("raw {size}"),
            ImageFormat::RawWithTags => format!("raw {size} with tags"),
            ImageFormat::DiskCopy42 => format!("DiskCopy 4.2 {size}"),
        };
        if self.checksum_warning.is_some() {
            format.push_str(" (stored checksum wrong)");
        }
        MediaInfo {
            name: self.backing.name(),
            bytes: self.data.len() as u64,
            read_only: self.read_only(),
            format,
        }
    }

    /// The block at `track`, `side`, `sector`, if the disk has it.
    pub fn block_of(&self, track: u8, side: u8, sector: u8) -> Option<u32> {
        (track < track::TRACKS && side < self.sides && sector < track::sectors(track)).then(|| {
            track::first_block(track, self.sides)
                + u32::from(side) * u32::from(track::sectors(track))
                + u32::from(sector)
        })
    }

    /// Tags then data of `block` (zeros past the end).
    pub fn sector(&self, block: u32) -> [u8; RAW_SECTOR] {
        let mut out = [0u8; RAW_SECTOR];
        let b = block as usize;
        if b < self.blocks() as usize {
            out[..TAG_BYTES].copy_from_slice(&self.tags[b * TAG_BYTES..][..TAG_BYTES]);
            out[TAG_BYTES..].copy_from_slice(&self.data[b * SECTOR_BYTES..][..SECTOR_BYTES]);
        }
        out
    }

    /// The 512 data bytes of `block`.
    pub fn block_data(&self, block: u32) -> &[u8] {
        let b = block as usize * SECTOR_BYTES;
        self.data.get(b..b + SECTOR_BYTES).unwrap_or(&[])
    }

    /// Stores a sector the Mac wrote (tags then data). Returns once the file holds it, the
    /// DiskCopy checksums included; on an error the image in memory keeps the old sector.
    pub fn write_sector(&mut self, block: u32, bytes: &[u8; RAW_SECTOR]) -> Result<(), DiskError> {
        let b = block as usize;
        if b >= self.blocks() as usize {
            return Err(DiskError::Format(format!(
                "block {block} is past the disk's end"
            )));
        }
        let (tag, data) = bytes.split_at(TAG_BYTES);
        self.backing
            .write_at(self.data_off + (b * SECTOR_BYTES) as u64, data)?;
        self.data[b * SECTOR_BYTES..][..SECTOR_BYTES].copy_from_slice(data);
        if let Some(off) = self.tag_off {
            self.backing.write_at(off + (b * TAG_BYTES) as u64, tag)?;
        }
        self.tags[b * TAG_BYTES..][..TAG_BYTES].copy_from_slice(tag);
        if self.format == ImageFormat::DiskCopy42 {
            let (d, t) = self.checksums();
            let t = if self.tag_off.is_some() { t } else { 0 };
            let mut sums = [0u8; 8];
            sums[..4].copy_from_slice(&d.to_be_bytes());
            sums[4..].copy_from_slice(&t.to_be_bytes());
            self.backing.write_at(DC42_CHECKSUMS, &sums)?;
            self.checksum_warning = None;
        }
        Ok(())
    }
}

fn not_ours(name: &str, len: u64) -> DiskError {
    DiskError::Format(format!(
        "{name}: not a Macintosh floppy image ({len} bytes); {TAKEN}"
    ))
}

/// Builds DiskCopy 4.2 image bytes (header with correct checksums, data, tags): for tests and
/// for tools that make blank disks.
pub fn build_dc42(name: &str, data: &[u8], tags: Option<&[u8]>) -> Vec<u8> {
    let mut h = vec![0u8; DC42_HEADER as usize];
    let n = name.as_bytes();
    let n = &n[..n.len().min(63)];
    h[0] = n.len() as u8;
    h[1..1 + n.len()].copy_from_slice(n);
    let tags = tags.unwrap_or(&[]);
    h[0x40..0x44].copy_from_slice(&(data.len() as u32).to_be_bytes());
    h[0x44..0x48].copy_from_slice(&(tags.len() as u32).to_be_bytes());
    h[0x48..0x4C].copy_from_slice(&dc42_checksum(data).to_be_bytes());
    let tsum = dc42_checksum(tags.get(TAG_BYTES..).unwrap_or(&[]));
    h[0x4C..0x50].copy_from_slice(&tsum.to_be_bytes());
    let big = data.len() as u64 == RAW_800K;
    h[0x50] = u8::from(big);
    h[0x51] = if big { 0x22 } else { 0x02 };
    h[0x52] = 0x01;
    h.extend_from_slice(data);
    h.extend_from_slice(tags);
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{FileBacking, MemBacking};

    fn pattern(len: usize, seed: u32) -> Vec<u8> {
        let mut x = seed.wrapping_mul(2_654_435_761).max(1);
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect()
    }

    fn mem(bytes: Vec<u8>) -> Box<dyn Backing> {
        Box::new(MemBacking::new(bytes))
    }

    /// The checksum by its definition, written out independently of `dc42_checksum`.
    fn reference_sum(bytes: &[u8]) -> u32 {
        let mut s: u32 = 0;
        let mut i = 0;
        while i + 1 < bytes.len() {
            let w = ((bytes[i] as u32) << 8) | bytes[i + 1] as u32;
            s = s.wrapping_add(w);
            s = (s >> 1) | ((s & 1) << 31);
            i += 2;
        }
        s
    }

    #[test]
    fn checksum_small_cases() {
        // One word 0x0001: 1 rotated right = 0x80000000. Two: (0x80000000 + 2) ror 1.
        assert_eq!(dc42_checksum(&[0x00, 0x01]), 0x8000_0000);
        assert_eq!(dc42_checksum(&[0x00, 0x01, 0x00, 0x02]), 0x4000_0001);
        let p = pattern(4096, 3);
        assert_eq!(dc42_checksum(&p), reference_sum(&p));
    }

    #[test]
    fn raw_sizes_open_and_map_blocks() {
        for (len, sides, blocks) in [(RAW_400K, 1, 800), (RAW_800K, 2, 1600)] {
            let data = pattern(len as usize, 1);
            let img = FloppyImage::open(mem(data.clone())).unwrap();
            assert_eq!(img.sides(), sides);
            assert_eq!(img.blocks(), blocks);
            assert_eq!(img.format(), ImageFormat::Raw);
            let info = img.info();
            assert_eq!(info.bytes, len);
            assert!(!info.read_only);
            // Track 1, side 0, sector 0 follows track 0's 12 (400K) or 24 (800K) blocks.
            let b = img.block_of(1, 0, 0).unwrap();
            assert_eq!(b, 12 * u32::from(sides));
            assert_eq!(img.block_data(b), &data[b as usize * 512..][..512]);
            // No tag area: tags are zeros.
            assert_eq!(img.sector(b)[..12], [0; 12]);
            assert_eq!(img.block_of(79, 0, 8), None);
            assert_eq!(img.block_of(0, sides, 0), None);
        }
        let img = FloppyImage::open(mem(vec![0; RAW_800K as usize])).unwrap();
        // Side 1 of track 0 starts at block 12.
        assert_eq!(img.block_of(0, 1, 0), Some(12));
        assert_eq!(img.block_of(79, 1, 7), Some(1599));
    }

    #[test]
    fn raw_with_tags_takes_tags_from_the_tag_area() {
        let mut bytes = pattern(838_400, 2);
        bytes[RAW_800K as usize + 12 * 5..][..12].copy_from_slice(b"TAGS-BLOCK-5");
        let img = FloppyImage::open(mem(bytes.clone())).unwrap();
        assert_eq!(img.format(), ImageFormat::RawWithTags);
        assert_eq!(img.info().format, "raw 800K with tags");
        let s = img.sector(5);
        assert_eq!(&s[..12], b"TAGS-BLOCK-5");
        assert_eq!(&s[12..], &bytes[5 * 512..6 * 512]);
        let img = FloppyImage::open(mem(pattern(419_200, 4))).unwrap();
        assert_eq!((img.sides(), img.blocks()), (1, 800));
    }

    #[test]
    fn unknown_files_are_refused_with_the_formats_we_take() {
        for bytes in [
            vec![],
            vec![0u8; 100],
            vec![0u8; 409_601],
            vec![0u8; 1_474_560],
            {
                // DiskCopy magic but MFM encoding.
                let mut b = build_dc42("x", &[0u8; 409_600], None);
                b[0x50] = 3;
                b
            },
            {
                // Header promises more than the file holds.
                let b = build_dc42("x", &[0u8; 819_200], None);
                b[..b.len() - 1].to_vec()
            },
            {
                let mut b = build_dc42("x", &[0u8; 409_600], None);
                b[0x44] = 0x7F; // nonsense tag size
                b
            },
        ] {
            let m = MemBacking::new(bytes.clone());
            match FloppyImage::open(Box::new(m)) {
                Err(DiskError::Format(msg)) => {
                    assert!(msg.contains("DiskCopy 4.2"), "{msg}");
                    assert!(msg.contains("409,600"), "{msg}");
                }
                other => panic!("{} bytes: {other:?}", bytes.len()),
            }
        }
    }

    #[test]
    fn diskcopy_checksums_verified_and_kept_on_write() {
        let data = pattern(RAW_800K as usize, 7);
        let tags = pattern(1600 * 12, 8);
        let file = build_dc42("Test Disk", &data, Some(&tags));
        // The header sums follow the definition; the tag sum skips the first 12 tag bytes.
        assert_eq!(be32(&file[0x48..]), reference_sum(&data));
        assert_eq!(be32(&file[0x4C..]), reference_sum(&tags[12..]));
        let img = FloppyImage::open(mem(file.clone())).unwrap();
        assert_eq!(img.checksum_warning(), None);
        assert_eq!(img.info().format, "DiskCopy 4.2 800K");
        assert_eq!(img.sector(3)[..12], tags[36..48]);
        assert_eq!(img.sector(3)[12..], data[1536..2048]);

        // A corrupted stored checksum is detected and reported.
        for at in [0x48usize, 0x4C] {
            let mut bad = file.clone();
            bad[at + 3] ^= 1;
            let img = FloppyImage::open(mem(bad)).unwrap();
            let w = img.checksum_warning().expect("mismatch reported");
            assert!(w.contains(if at == 0x48 { "data" } else { "tag" }), "{w}");
            assert!(img.info().format.contains("checksum wrong"));
        }
        // So is corrupted content.
        let mut bad = file.clone();
        bad[0x54 + 1000] ^= 0x40;
        assert!(FloppyImage::open(mem(bad))
            .unwrap()
            .checksum_warning()
            .is_some());

        // A write updates the stored sums durably: reopening the file verifies.
        let path = std::env::temp_dir().join(format!("macemu-dc42-{}.image", std::process::id()));
        std::fs::write(&path, &file).unwrap();
        let mut img =
            FloppyImage::open(Box::new(FileBacking::open(&path, false).unwrap())).unwrap();
        let mut sector = [0u8; RAW_SECTOR];
        sector[..12].copy_from_slice(b"new tag 1234");
        sector[12..].copy_from_slice(&pattern(512, 99));
        img.write_sector(1599, &sector).unwrap();
        let on_disk = std::fs::read(&path).unwrap();
        assert_eq!(&on_disk[0x54 + 1599 * 512..][..512], &sector[12..]);
        assert_eq!(
            &on_disk[0x54 + 819_200 + 1599 * 12..][..12],
            b"new tag 1234"
        );
        assert_eq!(
            be32(&on_disk[0x48..]),
            reference_sum(&on_disk[0x54..][..819_200])
        );
        assert_eq!(
            be32(&on_disk[0x4C..]),
            reference_sum(&on_disk[0x54 + 819_200 + 12..])
        );
        drop(img);
        let again = FloppyImage::open(Box::new(FileBacking::open(&path, true).unwrap())).unwrap();
        assert_eq!(again.checksum_warning(), None);
        assert_eq!(again.sector(1599), sector);
        assert!(again.info().read_only);
        drop(again);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn read_only_images_refuse_writes_and_keep_their_bytes() {
        let mut m = MemBacking::new(vec![0x11; RAW_400K as usize]);
        m.read_only = true;
        let mut img = FloppyImage::open(Box::new(m)).unwrap();
        assert!(img.read_only() && img.info().read_only);
        assert!(img.write_sector(0, &[0xEE; RAW_SECTOR]).is_err());
        assert_eq!(img.block_data(0), &[0x11; 512][..]);
    }

    #[test]
    fn hostile_headers_never_panic() {
        for seed in 0..200u32 {
            let mut b = build_dc42("h", &[0u8; 409_600], None);
            let p = pattern(0x54, seed);
            b[..0x52].copy_from_slice(&p[..0x52]);
            let cut = (seed as usize * 2_047) % b.len();
            let _ = FloppyImage::open(mem(b[..cut.max(0x54)].to_vec()));
            let _ = FloppyImage::open(mem(b));
        }
    }
}
