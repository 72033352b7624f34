//! Small Macintosh disk images built from the published formats, for tests: empty MFS and HFS
//! volumes, DiskCopy 4.2 files and SCSI device images with an Apple partition map.
//!
//! Sources: Inside Macintosh II ("The File Manager": MFS volume information and block map),
//! Inside Macintosh: Files (HFS master directory block, B-tree nodes, catalog records),
//! Inside Macintosh: Devices ("SCSI Manager": driver descriptor map, partition map entries),
//! the DiskCopy 4.2 format description (header, checksum).
#![allow(dead_code)] // each test crate uses the builders it needs

pub const BLOCK: usize = 512;
/// 1 January 2024 in Mac time (seconds since 1904), for the dates the formats carry.
const DATE: u32 = 0xE1B7_B100;

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// A Pascal string of at most `max` characters at `at`.
fn put_pstr(b: &mut [u8], at: usize, s: &str, max: usize) {
    assert!(s.len() <= max && s.is_ascii(), "{s:?}");
    b[at] = s.len() as u8;
    b[at + 1..at + 1 + s.len()].copy_from_slice(s.as_bytes());
}

/// An empty MFS volume of `blocks` 512-byte blocks (800 for a 400K disk): boot blocks 0-1, the
/// volume information and block map in blocks 2-3, a 12-block file directory from block 4,
/// 1024-byte allocation blocks from block 16.
pub fn mfs_volume(name: &str, blocks: usize) -> Vec<u8> {
    let mut v = vec![0u8; blocks * BLOCK];
    let m = 2 * BLOCK;
    let n_alloc = ((blocks - 16) / 2) as u16;
    put16(&mut v, m, 0xD2D7); // drSigWord
    put32(&mut v, m + 0x02, DATE); // drCrDate
    put32(&mut v, m + 0x06, DATE); // drLsBkUp
    put16(&mut v, m + 0x0A, 0); // drAtrb
    put16(&mut v, m + 0x0C, 0); // drNmFls: no files
    put16(&mut v, m + 0x0E, 4); // drDirSt
    put16(&mut v, m + 0x10, 12); // drBlLen
    put16(&mut v, m + 0x12, n_alloc); // drNmAlBlks
    put32(&mut v, m + 0x14, 1024); // drAlBlkSiz
    put32(&mut v, m + 0x18, 8192); // drClpSiz
    put16(&mut v, m + 0x1C, 16); // drAlBlSt
    put32(&mut v, m + 0x1E, 1); // drNxtFNum
    put16(&mut v, m + 0x22, n_alloc); // drFreeBks
    put_pstr(&mut v, m + 0x24, name, 27); // drVN
                                          // The block map (12 bits per allocation block, from byte 64) stays 0: all free.
    assert!(64 + (usize::from(n_alloc) * 12).div_ceil(8) <= 2 * BLOCK);
    v
}

/// B-tree node descriptor.
fn node_descriptor(node: &mut [u8], kind: u8, height: u8, records: u16) {
    node[8] = kind; // ndType: 1 header, 0 index, 0xFF leaf
    node[9] = height; // ndNHeight
    put16(node, 10, records); // ndNRecs
}

/// Record offsets, stored from the end of the node: offsets[i] at 510 - 2i, then free space.
fn node_offsets(node: &mut [u8], offsets: &[u16]) {
    for (i, &o) in offsets.iter().enumerate() {
        put16(node, BLOCK - 2 - 2 * i, o);
    }
}

/// A B-tree header node: header record, 128-byte user record, map record with the first
/// `used` nodes marked.
fn header_node(
    depth: u16,
    root: u32,
    leaf_records: u32,
    leaf: u32,
    key_len: u16,
    nodes: u32,
) -> Vec<u8> {
    let mut n = vec![0u8; BLOCK];
    node_descriptor(&mut n, 1, 0, 3);
    let h = 14;
    put16(&mut n, h, depth); // bthDepth
    put32(&mut n, h + 2, root); // bthRoot
    put32(&mut n, h + 6, leaf_records); // bthNRecs
    put32(&mut n, h + 10, leaf); // bthFNode
    put32(&mut n, h + 14, leaf); // bthLNode
    put16(&mut n, h + 18, BLOCK as u16); // bthNodeSize
    put16(&mut n, h + 20, key_len); // bthKeyLen
    put32(&mut n, h + 22, nodes); // bthNNodes
    put32(&mut n, h + 26, 0); // bthFree
    let map = 14 + 106 + 128;
    for node in 0..nodes as usize {
        n[map + node / 8] |= 0x80 >> (node % 8);
    }
    node_offsets(&mut n, &[14, 14 + 106, map as u16, (BLOCK - 8) as u16]);
    n
}

/// A catalog key: length, reserved, parent ID, name; padded to an even length.
fn catalog_key(parent: u32, name: &str) -> Vec<u8> {
    let mut k = vec![(6 + name.len()) as u8, 0];
    k.extend_from_slice(&parent.to_be_bytes());
    k.push(name.len() as u8);
    k.extend_from_slice(name.as_bytes());
    if k.len() % 2 == 1 {
        k.push(0);
    }
    k
}

/// An empty HFS volume of `blocks` 512-byte blocks (1600 for an 800K disk): boot blocks, the
/// master directory block at 2 (and its copy at blocks - 2), the volume bitmap from block 3,
/// 512-byte allocation blocks holding a one-node extents tree and a two-node catalog with the
/// root folder and its thread.
pub fn hfs_volume(name: &str, blocks: usize) -> Vec<u8> {
    assert!(!name.is_empty() && name.len() <= 27 && !name.contains(':'));
    let mut v = vec![0u8; blocks * BLOCK];
    let bitmap_blocks = (blocks - 4).div_ceil(BLOCK * 8);
    let first_alloc = 3 + bitmap_blocks; // drAlBlSt
    let n_alloc = blocks - first_alloc - 2; // the last two blocks: alternate MDB, reserved
    assert!(n_alloc <= 0xFFFF);
    let (xt_start, xt_len, ct_start, ct_len) = (0u16, 1u16, 1u16, 2u16);
    let used = usize::from(xt_len + ct_len);
    let alloc = |a: u16| (first_alloc + usize::from(a)) * BLOCK;

    // Extents overflow tree: a header node, no records.
    let xt = header_node(0, 0, 0, 0, 7, 1);
    v[alloc(xt_start)..][..BLOCK].copy_from_slice(&xt);

    // Catalog: header node and one leaf with the root folder (ID 2 in parent 1) and its thread.
    let ct = header_node(1, 1, 2, 1, 37, 2);
    v[alloc(ct_start)..][..BLOCK].copy_from_slice(&ct);
    let mut leaf = vec![0u8; BLOCK];
    node_descriptor(&mut leaf, 0xFF, 1, 2);
    let mut at = 14;
    let mut offsets = vec![at as u16];
    let mut dir = catalog_key(1, name);
    let mut rec = vec![0u8; 70];
    rec[0] = 1; // cdrType: folder
    put32(&mut rec, 6, 2); // dirDirID
    put32(&mut rec, 10, DATE); // dirCrDat
    put32(&mut rec, 14, DATE); // dirMdDat
    dir.extend_from_slice(&rec);
    leaf[at..at + dir.len()].copy_from_slice(&dir);
    at += dir.len();
    offsets.push(at as u16);
    let mut thread = catalog_key(2, "");
    let mut rec = vec![0u8; 46];
    rec[0] = 3; // cdrType: folder thread
    put32(&mut rec, 10, 1); // thdParID
    put_pstr(&mut rec, 14, name, 31); // thdCName
    thread.extend_from_slice(&rec);
    leaf[at..at + thread.len()].copy_from_slice(&thread);
    at += thread.len();
    offsets.push(at as u16);
    node_offsets(&mut leaf, &offsets);
    v[alloc(ct_start + 1)..][..BLOCK].copy_from_slice(&leaf);

    // Volume bitmap: the allocation blocks of the two trees are in use.
    for a in 0..used {
        v[3 * BLOCK + a / 8] |= 0x80 >> (a % 8);
    }

    let m = 2 * BLOCK;
    put16(&mut v, m, 0x4244); // drSigWord
    put32(&mut v, m + 0x02, DATE); // drCrDate
    put32(&mut v, m + 0x06, DATE); // drLsMod
    put16(&mut v, m + 0x0A, 0x0100); // drAtrb: unmounted cleanly
    put16(&mut v, m + 0x0C, 0); // drNmFls
    put16(&mut v, m + 0x0E, 3); // drVBMSt
    put16(&mut v, m + 0x10, used as u16); // drAllocPtr
    put16(&mut v, m + 0x12, n_alloc as u16); // drNmAlBlks
    put32(&mut v, m + 0x14, BLOCK as u32); // drAlBlkSiz
    put32(&mut v, m + 0x18, 4 * BLOCK as u32); // drClpSiz
    put16(&mut v, m + 0x1C, first_alloc as u16); // drAlBlSt
    put32(&mut v, m + 0x1E, 16); // drNxtCNID
    put16(&mut v, m + 0x22, (n_alloc - used) as u16); // drFreeBks
    put_pstr(&mut v, m + 0x24, name, 27); // drVN
    put32(&mut v, m + 0x4A, BLOCK as u32); // drXTClpSiz
    put32(&mut v, m + 0x4E, BLOCK as u32); // drCTClpSiz
    put32(&mut v, m + 0x82, u32::from(xt_len) * BLOCK as u32); // drXTFlSize
    put16(&mut v, m + 0x86, xt_start); // drXTExtRec[0]
    put16(&mut v, m + 0x88, xt_len);
    put32(&mut v, m + 0x92, u32::from(ct_len) * BLOCK as u32); // drCTFlSize
    put16(&mut v, m + 0x96, ct_start); // drCTExtRec[0]
    put16(&mut v, m + 0x98, ct_len);
    let mdb = v[m..m + BLOCK].to_vec();
    v[(blocks - 2) * BLOCK..][..BLOCK].copy_from_slice(&mdb);
    v
}

/// The DiskCopy 4.2 checksum: add each big-endian word, rotate right by one.
pub fn diskcopy_checksum(data: &[u8]) -> u32 {
    data.chunks_exact(2).fold(0u32, |s, w| {
        s.wrapping_add(u32::from(u16::from_be_bytes([w[0], w[1]])))
            .rotate_right(1)
    })
}

/// A DiskCopy 4.2 image of a 400K or 800K disk, without tags.
pub fn diskcopy42(name: &str, data: &[u8]) -> Vec<u8> {
    let (encoding, format) = match data.len() {
        409_600 => (0u8, 0x02u8),
        819_200 => (1, 0x22),
        n => panic!("{n} bytes is not a 400K or 800K disk"),
    };
    let mut d = vec![0u8; 0x54];
    put_pstr(&mut d, 0, name, 63);
    put32(&mut d, 0x40, data.len() as u32);
    put32(&mut d, 0x44, 0); // tag size
    put32(&mut d, 0x48, diskcopy_checksum(data));
    put32(&mut d, 0x4C, 0); // tag checksum
    d[0x50] = encoding;
    d[0x51] = format;
    put16(&mut d, 0x52, 0x0100);
    d.extend_from_slice(data);
    d
}

/// One partition map entry.
pub struct Partition<'a> {
    pub name: &'a str,
    pub kind: &'a str,
    pub start: u32,
    pub blocks: u32,
    pub status: u32,
}

/// A SCSI device image of `blocks` blocks: driver descriptor map in block 0 (no drivers), the
/// partition map from block 1 (its own entry first), and `volumes` copied to their partitions.
pub fn scsi_device(blocks: u32, parts: &[Partition], volumes: &[(u32, &[u8])]) -> Vec<u8> {
    let mut d = vec![0u8; blocks as usize * BLOCK];
    put16(&mut d, 0, 0x4552); // sbSig 'ER'
    put16(&mut d, 2, BLOCK as u16); // sbBlkSize
    put32(&mut d, 4, blocks); // sbBlkCount
    put16(&mut d, 8, 1); // sbDevType
    put16(&mut d, 10, 1); // sbDevId
    put16(&mut d, 16, 0); // sbDrvrCount
    let map_blocks = 63u32;
    let mut all = vec![Partition {
        name: "Apple",
        kind: "Apple_partition_map",
        start: 1,
        blocks: map_blocks,
        status: 0x37,
    }];
    all.extend(parts.iter().map(|p| Partition { ..*p }));
    for (i, p) in all.iter().enumerate() {
        let e = (1 + i) * BLOCK;
        put16(&mut d, e, 0x504D); // pmSig 'PM'
        put32(&mut d, e + 0x04, all.len() as u32); // pmMapBlkCnt
        put32(&mut d, e + 0x08, p.start); // pmPyPartStart
        put32(&mut d, e + 0x0C, p.blocks); // pmPartBlkCnt
        d[e + 0x10..e + 0x10 + p.name.len()].copy_from_slice(p.name.as_bytes()); // pmPartName
        d[e + 0x30..e + 0x30 + p.kind.len()].copy_from_slice(p.kind.as_bytes()); // pmParType
        put32(&mut d, e + 0x50, 0); // pmLgDataStart
        put32(&mut d, e + 0x54, p.blocks); // pmDataCnt
        put32(&mut d, e + 0x58, p.status); // pmPartStatus
    }
    for &(start, v) in volumes {
        let at = start as usize * BLOCK;
        d[at..at + v.len()].copy_from_slice(v);
    }
    d
}
