//! Every command the Plus ROM, HD SC Setup and Apple's driver issue, on an in-memory disk.
//! Expected replies are laid out by hand from the SCSI-2 standard (field offsets and meanings)
//! and from the test's own image contents.

use super::*;
use crate::storage::MemBacking;

/// Block n, byte i of a test image: (7n + i) mod 251.
fn pattern(blocks: usize) -> Vec<u8> {
    (0..blocks * 512)
        .map(|i| ((i / 512 * 7 + i % 512) % 251) as u8)
        .collect()
}

fn disk(blocks: usize) -> ScsiDisk {
    ScsiDisk::new(Box::new(MemBacking::new(pattern(blocks)))).unwrap()
}

/// Runs one command through the target interface as the bus would: returns the bytes sent in
/// DATA IN and the status. `out` feeds DATA OUT requests in order.
fn run(d: &mut ScsiDisk, cdb: &[u8], mut out: &[u8]) -> (Vec<u8>, u8) {
    let mut data = Vec::new();
    let mut action = d.command(cdb);
    for _ in 0..100_000 {
        action = match action {
            Action::DataIn(v) => {
                data.extend(v);
                d.data_in_done()
            }
            Action::DataOut(n) => {
                let n = n.min(out.len());
                let (chunk, rest) = out.split_at(n);
                out = rest;
                d.data_out(chunk)
            }
            Action::Status(s) => return (data, s),
        };
    }
    panic!("command never completed");
}

fn sense(d: &mut ScsiDisk) -> Vec<u8> {
    let (s, st) = run(d, &[0x03, 0, 0, 0, 18, 0], &[]);
    assert_eq!(st, 0);
    s
}

#[test]
fn image_size_must_be_a_positive_multiple_of_512() {
    for len in [0usize, 511, 1000, 513] {
        let r = ScsiDisk::new(Box::new(MemBacking::new(vec![0; len])));
        assert!(
            matches!(r, Err(DiskError::Format(ref m)) if m.contains("512")),
            "{len}"
        );
    }
    let d = disk(3);
    assert_eq!(d.blocks(), 3);
    let info = d.info();
    assert_eq!((info.bytes, info.read_only), (1536, false));
    assert_eq!(info.format, "SCSI disk, not initialized");
}

#[test]
fn test_unit_ready_start_stop_and_friends_are_good() {
    let mut d = disk(4);
    for cdb in [
        [0x00, 0, 0, 0, 0, 0], // TEST UNIT READY
        [0x1B, 0, 0, 0, 1, 0], // START STOP: start
        [0x1B, 0, 0, 0, 0, 0], // stop
        [0x01, 0, 0, 0, 0, 0], // REZERO UNIT
        [0x1E, 0, 0, 0, 1, 0], // PREVENT MEDIUM REMOVAL
    ] {
        assert_eq!(run(&mut d, &cdb, &[]), (vec![], 0), "{cdb:02x?}");
    }
}

#[test]
fn inquiry_layout() {
    let mut d = disk(4);
    d.set_inquiry(" SEAGATE", "          ST225N", "1.0");
    let (r, st) = run(&mut d, &[0x12, 0, 0, 0, 36, 0], &[]);
    assert_eq!(st, 0);
    assert_eq!(r.len(), 36);
    assert_eq!(r[0], 0x00, "direct-access device, LUN present");
    assert_eq!(r[1] & 0x80, 0, "not removable");
    assert_eq!(r[4], 31, "additional length");
    assert_eq!(&r[8..16], b" SEAGATE");
    assert_eq!(&r[16..32], b"          ST225N");
    assert_eq!(&r[32..36], b"1.0 ");
    // The allocation length truncates.
    let (r, _) = run(&mut d, &[0x12, 0, 0, 0, 5, 0], &[]);
    assert_eq!(r, [0, 0, 2, 2, 31]);
    // Another LUN: peripheral qualifier 3, type $1F.
    let (r, _) = run(&mut d, &[0x12, 0x20, 0, 0, 36, 0], &[]);
    assert_eq!(r[0], 0x7F);
}

#[test]
fn request_sense_after_an_illegal_opcode() {
    let mut d = disk(4);
    assert_eq!(run(&mut d, &[0x02, 0, 0, 0, 0, 0], &[]), (vec![], 2));
    let s = sense(&mut d);
    assert_eq!(s.len(), 18);
    assert_eq!(s[0], 0x70, "current error, extended sense, no information");
    assert_eq!(s[2], 0x05, "ILLEGAL REQUEST");
    assert_eq!(s[7], 10, "additional length: 18 - 8");
    assert_eq!((s[12], s[13]), (0x20, 0), "invalid command operation code");
    // Reading the sense clears it.
    let s = sense(&mut d);
    assert_eq!((s[2], s[12]), (0, 0));
    // SCSI-1 allocation length 0: four bytes.
    run(&mut d, &[0xFF, 0, 0, 0, 0, 0], &[]);
    let (s, _) = run(&mut d, &[0x03, 0, 0, 0, 0, 0], &[]);
    assert_eq!(s, [0x70, 0, 0x05, 0]);
    // Any other command starts with clean sense.
    run(&mut d, &[0xFF, 0, 0, 0, 0, 0], &[]);
    run(&mut d, &[0x00, 0, 0, 0, 0, 0], &[]);
    assert_eq!(sense(&mut d)[2], 0);
}

#[test]
fn read_capacity_is_the_last_lba_and_512() {
    let mut d = disk(81_920 / 64); // 1280 blocks
    let (r, st) = run(&mut d, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[]);
    assert_eq!(st, 0);
    assert_eq!(r, [0, 0, 0x04, 0xFF, 0, 0, 0x02, 0x00]);
}

#[test]
fn mode_sense_pages_3_4_and_apple_30() {
    let mut d = disk(1000);
    // Page 3, with block descriptor.
    let (r, st) = run(&mut d, &[0x1A, 0, 0x03, 0, 255, 0], &[]);
    assert_eq!(st, 0);
    assert_eq!(r.len(), 4 + 8 + 24);
    assert_eq!(
        r[0] as usize,
        r.len() - 1,
        "mode data length excludes itself"
    );
    assert_eq!(r[2] & 0x80, 0, "not write-protected");
    assert_eq!(r[3], 8, "one block descriptor");
    assert_eq!(
        &r[4..12],
        &[0, 0, 0x03, 0xE8, 0, 0, 0x02, 0x00],
        "1000 blocks of 512"
    );
    let p = &r[12..];
    assert_eq!((p[0], p[1]), (0x03, 0x16));
    let sectors = u16::from_be_bytes([p[10], p[11]]);
    assert_eq!(u16::from_be_bytes([p[12], p[13]]), 512, "bytes per sector");
    assert_eq!(u16::from_be_bytes([p[14], p[15]]), 1, "interleave");

    // Page 4, no block descriptor (DBD).
    let (r, _) = run(&mut d, &[0x1A, 0x08, 0x04, 0, 255, 0], &[]);
    assert_eq!((r.len(), r[3]), (4 + 24, 0));
    let p = &r[4..];
    assert_eq!((p[0], p[1]), (0x04, 0x16));
    let cylinders = u32::from_be_bytes([0, p[2], p[3], p[4]]);
    let heads = u32::from(p[5]);
    assert!(
        cylinders * heads * u32::from(sectors) >= 1000,
        "geometry covers the disk"
    );
    assert!(
        (cylinders - 1) * heads * u32::from(sectors) < 1000,
        "and not a cylinder more"
    );
    assert_eq!(u16::from_be_bytes([p[20], p[21]]), 3600, "rpm");

    // Apple's page $30.
    let (r, _) = run(&mut d, &[0x1A, 0x08, 0x30, 0, 255, 0], &[]);
    let p = &r[4..];
    assert_eq!(p.len(), 30);
    assert_eq!((p[0], p[1]), (0x30, 28));
    assert_eq!(&p[10..30], b"APPLE COMPUTER, INC.");

    // All pages: 1, 2, 3, 4, $30 in order, each a (code, length) header followed by its body.
    let (r, _) = run(&mut d, &[0x1A, 0x08, 0x3F, 0, 255, 0], &[]);
    let mut at = 4;
    let mut codes = Vec::new();
    while at < r.len() {
        codes.push(r[at]);
        at += 2 + r[at + 1] as usize;
    }
    assert_eq!(at, r.len());
    assert_eq!(codes, [0x01, 0x02, 0x03, 0x04, 0x30]);

    // Changeable values: nothing can be changed.
    let (r, _) = run(&mut d, &[0x1A, 0x08, 0x40 | 0x04, 0, 255, 0], &[]);
    assert!(r[6..].iter().all(|&b| b == 0));

    // Allocation length truncates; an unknown page is ILLEGAL REQUEST.
    let (r, _) = run(&mut d, &[0x1A, 0, 0x03, 0, 4, 0], &[]);
    assert_eq!(r, [35, 0, 0, 8]);
    assert_eq!(run(&mut d, &[0x1A, 0, 0x2A, 0, 255, 0], &[]).1, 2);
    let s = sense(&mut d);
    assert_eq!((s[2], s[12]), (0x05, 0x24), "invalid field in CDB");
}

#[test]
fn mode_sense_10_has_an_8_byte_header() {
    let mut d = disk(100);
    let (r, st) = run(&mut d, &[0x5A, 0, 0x30, 0, 0, 0, 0, 0, 255, 0], &[]);
    assert_eq!(st, 0);
    assert_eq!(r.len(), 8 + 8 + 30);
    assert_eq!(u16::from_be_bytes([r[0], r[1]]) as usize, r.len() - 2);
    assert_eq!(u16::from_be_bytes([r[6], r[7]]), 8);
    assert_eq!(r[16], 0x30);
}

#[test]
fn mode_select_accepts_pf_0_and_512_byte_blocks() {
    let mut d = disk(100);
    // Header (4) + block descriptor (8) with block length 512, PF = 0 as HD SC Setup sends it.
    let params = [0, 0, 0, 8, 0, 0, 0, 100, 0, 0, 0x02, 0x00];
    assert_eq!(run(&mut d, &[0x15, 0, 0, 0, 12, 0], &params), (vec![], 0));
    // A length of 0 transfers nothing.
    assert_eq!(run(&mut d, &[0x15, 0x10, 0, 0, 0, 0], &[]), (vec![], 0));
    // Another block size cannot be had.
    let params = [0, 0, 0, 8, 0, 0, 0, 100, 0, 0, 0x04, 0x00];
    assert_eq!(run(&mut d, &[0x15, 0x10, 0, 0, 12, 0], &params).1, 2);
    let s = sense(&mut d);
    assert_eq!(
        (s[2], s[12]),
        (0x05, 0x26),
        "invalid field in parameter list"
    );
}

#[test]
fn read6_fields_and_count_0_means_256() {
    let img = pattern(300);
    let mut d = disk(300);
    // LBA 10, count 0: 256 blocks.
    let (r, st) = run(&mut d, &[0x08, 0, 0, 10, 0, 0], &[]);
    assert_eq!(st, 0);
    assert_eq!(r.len(), 256 * 512);
    assert_eq!(r, img[10 * 512..266 * 512]);
    // The LBA spans byte 1 bits 4–0, byte 2 and byte 3: $00012B = 299.
    let (r, _) = run(&mut d, &[0x08, 0x00, 0x01, 0x2B, 1, 0], &[]);
    assert_eq!(r, img[299 * 512..]);
    // LBA bits in byte 1 ($1F0000 and up) are out of range here.
    assert_eq!(run(&mut d, &[0x08, 0x01, 0, 0, 1, 0], &[]).1, 2);
    // Count 0 = 256 from LBA 45 passes the end (301 > 300).
    assert_eq!(run(&mut d, &[0x08, 0, 0, 45, 0, 0], &[]), (vec![], 2));
    let s = sense(&mut d);
    assert_eq!(
        (s[0], s[2], s[12]),
        (0xF0, 0x05, 0x21),
        "LBA out of range, info valid"
    );
    assert_eq!(s[3..7], [0, 0, 0, 45]);
}

#[test]
fn read10_fields_and_count_0_is_nothing() {
    let img = pattern(600);
    let mut d = disk(600);
    // LBA $00000102 (258), count $0003.
    let (r, st) = run(&mut d, &[0x28, 0, 0, 0, 0x01, 0x02, 0, 0x00, 0x03, 0], &[]);
    assert_eq!(st, 0);
    assert_eq!(r, img[258 * 512..261 * 512]);
    assert_eq!(
        run(&mut d, &[0x28, 0, 0, 0, 0, 5, 0, 0, 0, 0], &[]),
        (vec![], 0)
    );
    // Last block, then one past it.
    assert_eq!(
        run(&mut d, &[0x28, 0, 0, 0, 0x02, 0x57, 0, 0, 1, 0], &[]).1,
        0
    );
    assert_eq!(
        run(&mut d, &[0x28, 0, 0, 0, 0x02, 0x58, 0, 0, 1, 0], &[]).1,
        2
    );
    // A huge LBA does not overflow.
    assert_eq!(
        run(
            &mut d,
            &[0x28, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0xFF, 0xFF, 0],
            &[]
        )
        .1,
        2
    );
}

#[test]
fn writes_then_reads_return_the_data() {
    let mut d = disk(64);
    let a: Vec<u8> = (0..512 * 3).map(|i| (i * 13 + 1) as u8).collect();
    // WRITE(10) 3 blocks at 20, WRITE(6) 1 block at 2.
    assert_eq!(
        run(&mut d, &[0x2A, 0, 0, 0, 0, 20, 0, 0, 3, 0], &a),
        (vec![], 0)
    );
    assert_eq!(run(&mut d, &[0x0A, 0, 0, 2, 1, 0], &a[..512]), (vec![], 0));
    assert_eq!(run(&mut d, &[0x08, 0, 0, 20, 3, 0], &[]).0, a);
    assert_eq!(
        run(&mut d, &[0x28, 0, 0, 0, 0, 2, 0, 0, 1, 0], &[]).0,
        a[..512]
    );
    // Neighbours untouched.
    assert_eq!(
        run(&mut d, &[0x08, 0, 0, 19, 1, 0], &[]).0,
        pattern(64)[19 * 512..20 * 512]
    );
    assert_eq!(
        run(&mut d, &[0x08, 0, 0, 23, 1, 0], &[]).0,
        pattern(64)[23 * 512..24 * 512]
    );
    // WRITE out of range: no data phase.
    assert_eq!(run(&mut d, &[0x0A, 0, 0, 63, 2, 0], &[]), (vec![], 2));
    assert_eq!(sense(&mut d)[12], 0x21);
}

#[test]
fn read_only_disks_refuse_write_and_format() {
    let mut m = MemBacking::new(pattern(8));
    m.read_only = true;
    let mut d = ScsiDisk::new(Box::new(m)).unwrap();
    assert!(d.info().read_only);
    for cdb in [
        &[0x0A, 0, 0, 0, 1, 0][..],
        &[0x2A, 0, 0, 0, 0, 0, 0, 0, 1, 0],
        &[0x04, 0, 0, 0, 0, 0],
    ] {
        assert_eq!(run(&mut d, cdb, &[0; 512]), (vec![], 2));
        let s = sense(&mut d);
        assert_eq!((s[2], s[12]), (0x07, 0x27), "DATA PROTECT");
    }
    let (r, _) = run(&mut d, &[0x1A, 0, 0, 0, 255, 0], &[]);
    assert_eq!(r[2], 0x80, "WP");
}

#[test]
fn format_unit_keeps_working_and_takes_a_defect_list() {
    let mut d = disk(16);
    assert_eq!(run(&mut d, &[0x04, 0, 0, 0, 1, 0], &[]), (vec![], 0));
    // FmtData: a 4-byte header announcing an 8-byte defect list.
    let list = [0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 2];
    assert_eq!(run(&mut d, &[0x04, 0x10, 0, 0, 1, 0], &list), (vec![], 0));
    assert_eq!(run(&mut d, &[0x00, 0, 0, 0, 0, 0], &[]).1, 0);
}

#[test]
fn verify_checks_range_and_bytes() {
    let img = pattern(16);
    let mut d = disk(16);
    assert_eq!(
        run(&mut d, &[0x2F, 0, 0, 0, 0, 0, 0, 0, 16, 0], &[]),
        (vec![], 0)
    );
    assert_eq!(run(&mut d, &[0x2F, 0, 0, 0, 0, 1, 0, 0, 16, 0], &[]).1, 2);
    // BytChk: compare two blocks sent by the initiator.
    let cdb = [0x2F, 0x02, 0, 0, 0, 4, 0, 0, 2, 0];
    assert_eq!(run(&mut d, &cdb, &img[4 * 512..6 * 512]).1, 0);
    let mut bad = img[4 * 512..6 * 512].to_vec();
    bad[700] ^= 1;
    assert_eq!(run(&mut d, &cdb, &bad).1, 2);
    let s = sense(&mut d);
    assert_eq!((s[2], s[12]), (0x0E, 0x1D), "MISCOMPARE");
    assert_eq!(s[3..7], [0, 0, 0, 5], "in the second block");
}

#[test]
fn other_luns_are_refused() {
    let mut d = disk(4);
    assert_eq!(run(&mut d, &[0x00, 0x20, 0, 0, 0, 0], &[]).1, 2);
    assert_eq!(sense(&mut d)[12], 0x25);
}

#[test]
fn hostile_cdbs_never_panic() {
    let mut d = disk(8);
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for op in 0..=255u8 {
        for _ in 0..64 {
            let mut cdb = [0u8; 16];
            for b in cdb.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            cdb[0] = op;
            let len = crate::scsi::cdb_len(op);
            let (data, st) = run(&mut d, &cdb[..len], &[0xA5; 4096]);
            assert!(st == 0 || st == 2, "{cdb:02x?}");
            assert!(data.len() <= 256 * 512, "{cdb:02x?}");
        }
        // Short CDBs (a broken caller) too.
        assert_eq!(run(&mut d, &[op], &[]).1 & !2, 0);
    }
    assert_eq!(run(&mut d, &[], &[]).1, 2);
}
