//! The demo ROM's disk list: disk images built here from the published formats (MFS, HFS,
//! DiskCopy 4.2, Apple partition map) go into the emulated Mac Plus's SCSI bus and floppy
//! drives; the ROM reads each volume's master directory block through the NCR 5380 and the IWM
//! and draws a line per disk. The lines are found on the screen by rendering the expected text
//! with the glyphs of `roms/demo/font.txt` (the ROM's font source) and searching the 1-bpp frame
//! for that bitmap, so neither layout nor the ROM's own text drawing is taken on trust.

mod support;

use macemu_core::floppy::FloppyImage;
use macemu_core::mac::MacPlus;
use macemu_core::scsi::ScsiDisk;
use macemu_core::storage::MemBacking;
use std::collections::HashMap;
use std::path::Path;
use support::{diskcopy42, hfs_volume, mfs_volume, scsi_device, Partition};

const MIB: usize = 1 << 20;
/// The ROM probes at start-up and every two seconds (120 frames).
const POLL_FRAMES: usize = 150;

fn rom() -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../roms/demo.rom");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// roms/demo/font.txt: character -> rows of ink.
fn font() -> HashMap<char, Vec<Vec<bool>>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../roms/demo/font.txt");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut glyphs = HashMap::new();
    let mut cur: Option<(char, Vec<Vec<bool>>)> = None;
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
            rows.push(line.chars().map(|p| p == '#').collect());
        }
    }
    let (c, rows) = cur.unwrap();
    glyphs.insert(c, rows);
    assert_eq!(glyphs.len(), 95, "printable ASCII");
    glyphs
}

/// `text` in the plain font as rows of pixels: each glyph followed by one blank column, plus a
/// blank column in front, so a match cannot be the tail of a longer word.
fn render(font: &HashMap<char, Vec<Vec<bool>>>, text: &str) -> Vec<Vec<bool>> {
    let mut rows = vec![vec![false]; 9];
    for c in text.chars() {
        let g = &font[&c];
        for (r, row) in rows.iter_mut().enumerate() {
            row.extend_from_slice(&g[r]);
            row.push(false);
        }
    }
    rows
}

fn pixel(screen: &[u8], x: usize, y: usize) -> bool {
    screen[y * 64 + x / 8] & (0x80 >> (x % 8)) != 0
}

/// Where the rendered `text` appears on the screen, pixel for pixel, if it does.
fn find_text(
    mac: &MacPlus,
    font: &HashMap<char, Vec<Vec<bool>>>,
    text: &str,
) -> Option<(usize, usize)> {
    let want = render(font, text);
    let (w, h) = (want[0].len(), want.len());
    let s = mac.screen();
    (0..=342 - h).find_map(|y| {
        (0..=512 - w).find_map(|x| {
            let hit = want.iter().enumerate().all(|(r, row)| {
                row.iter()
                    .enumerate()
                    .all(|(c, &ink)| pixel(s, x + c, y + r) == ink)
            });
            hit.then_some((x + 1, y))
        })
    })
}

fn frames(mac: &mut MacPlus, n: usize) {
    for _ in 0..n {
        mac.run_frame();
    }
}

fn machine() -> MacPlus {
    let mut mac = MacPlus::new(&rom(), 4 * MIB).expect("the demo ROM is accepted");
    mac.set_rtc_seconds(3_000_000_000);
    mac
}

fn floppy(image: Vec<u8>) -> FloppyImage {
    FloppyImage::open(Box::new(MemBacking::new(image))).expect("a floppy image")
}

fn scsi(image: Vec<u8>) -> ScsiDisk {
    ScsiDisk::new(Box::new(MemBacking::new(image))).expect("a SCSI device image")
}

/// A 2 MiB device: driver descriptor map, partition map (its own entry, a free area, the HFS
/// partition), HFS volume at block 96 (not where a bare volume would be).
fn partitioned_hfs(name: &str) -> Vec<u8> {
    let blocks = 4096u32;
    let vol = hfs_volume(name, (blocks - 96) as usize);
    let parts = [
        Partition {
            name: "Extra",
            kind: "Apple_Free",
            start: 64,
            blocks: 32,
            status: 0,
        },
        Partition {
            name: "MacOS",
            kind: "Apple_HFS",
            start: 96,
            blocks: blocks - 96,
            status: 0xB7,
        },
    ];
    scsi_device(blocks, &parts, &[(96, &vol)])
}

#[test]
fn scsi_volume_names_appear_and_go_with_their_disks() {
    let font = font();
    let mut mac = machine();
    frames(&mut mac, 30);
    assert_eq!(find_text(&mac, &font, "SCSI 3: Scsi Volume (HFS)"), None);

    mac.attach_scsi(3, scsi(partitioned_hfs("Scsi Volume")))
        .unwrap();
    // A disk without a partition map is one volume from block 0.
    mac.attach_scsi(0, scsi(hfs_volume("Bare Disk", 2048)))
        .unwrap();
    frames(&mut mac, POLL_FRAMES);
    let id3 =
        find_text(&mac, &font, "SCSI 3: Scsi Volume (HFS)").expect("ID 3's volume name on screen");
    let id0 =
        find_text(&mac, &font, "SCSI 0: Bare Disk (HFS)").expect("ID 0's volume name on screen");
    assert!(
        id0.1 < id3.1,
        "one line per disk, in ID order: {id0:?} {id3:?}"
    );

    mac.detach_scsi(3).unwrap();
    frames(&mut mac, POLL_FRAMES);
    assert_eq!(
        find_text(&mac, &font, "SCSI 3: Scsi Volume (HFS)"),
        None,
        "gone with its disk"
    );
    assert!(find_text(&mac, &font, "SCSI 0: Bare Disk (HFS)").is_some());
}

#[test]
fn scsi_disk_without_a_mac_volume_says_so() {
    let font = font();
    let mut mac = machine();
    // Partition map without an HFS partition; a bare disk of zeros.
    let parts = [Partition {
        name: "Extra",
        kind: "Apple_Free",
        start: 64,
        blocks: 64,
        status: 0,
    }];
    mac.attach_scsi(2, scsi(scsi_device(128, &parts, &[])))
        .unwrap();
    mac.attach_scsi(6, scsi(vec![0; 64 * 512])).unwrap();
    // An HFS partition that ends past the disk: reading its block 2 ends in CHECK CONDITION.
    let parts = [Partition {
        name: "MacOS",
        kind: "Apple_HFS",
        start: 1000,
        blocks: 1000,
        status: 0xB7,
    }];
    mac.attach_scsi(4, scsi(scsi_device(128, &parts, &[])))
        .unwrap();
    frames(&mut mac, 30);
    assert!(find_text(&mac, &font, "SCSI 2: no HFS partition").is_some());
    assert!(find_text(&mac, &font, "SCSI 6: no Mac volume").is_some());
    assert!(
        find_text(&mac, &font, "SCSI 4: status 2").is_some(),
        "CHECK CONDITION is shown"
    );
}

#[test]
fn mfs_name_is_read_from_its_volume_information() {
    let font = font();
    let mut mac = machine();
    mac.attach_scsi(5, scsi(mfs_volume("Old Files", 800)))
        .unwrap();
    frames(&mut mac, 30);
    assert!(find_text(&mac, &font, "SCSI 5: Old Files (MFS)").is_some());
}

#[test]
fn a_27_character_name_is_shown_whole() {
    let font = font();
    let mut mac = machine();
    let name = "MAMMOTH WOMBAT WAREHOUSE MW";
    assert_eq!(name.len(), 27, "the longest HFS volume name");
    mac.attach_scsi(1, scsi(partitioned_hfs(name))).unwrap();
    frames(&mut mac, 30);
    assert!(find_text(&mac, &font, &format!("SCSI 1: {name} (HFS)")).is_some());
}

#[test]
fn floppy_volume_names_are_read_through_the_iwm() {
    let font = font();
    let mut mac = machine();
    frames(&mut mac, 30);
    // 400K MFS in the internal drive, 800K HFS as DiskCopy 4.2 in the external one.
    mac.insert_floppy(0, floppy(mfs_volume("System Disk", 800)))
        .unwrap();
    mac.insert_floppy(
        1,
        floppy(diskcopy42("Work", &hfs_volume("Work Disk", 1600))),
    )
    .unwrap();
    frames(&mut mac, POLL_FRAMES);
    let f1 = find_text(&mac, &font, "Floppy 1: System Disk (MFS, 400K)");
    let f2 = find_text(&mac, &font, "Floppy 2: Work Disk (HFS, 800K)");
    assert!(f1.is_some() && f2.is_some(), "{f1:?} {f2:?}");

    // A new disk in the internal drive replaces its line.
    mac.eject_floppy(0).unwrap();
    frames(&mut mac, POLL_FRAMES);
    assert_eq!(
        find_text(&mac, &font, "Floppy 1: System Disk (MFS, 400K)"),
        None
    );
    mac.insert_floppy(0, floppy(hfs_volume("Raw 800K", 1600)))
        .unwrap();
    frames(&mut mac, POLL_FRAMES);
    assert!(find_text(&mac, &font, "Floppy 1: Raw 800K (HFS, 800K)").is_some());
    assert!(find_text(&mac, &font, "Floppy 2: Work Disk (HFS, 800K)").is_some());
}

#[test]
fn floppies_and_scsi_disks_together() {
    let font = font();
    let mut mac = machine();
    mac.insert_floppy(0, floppy(hfs_volume("Boot Floppy", 1600)))
        .unwrap();
    mac.attach_scsi(3, scsi(partitioned_hfs("Hard Disk")))
        .unwrap();
    // The mouse keeps moving while the disks are read: its interrupts come and go between
    // address fields.
    for i in 0..POLL_FRAMES {
        let d = if i % 40 < 20 { 3 } else { -3 };
        mac.mouse_move_relative(d, d);
        mac.run_frame();
    }
    assert!(find_text(&mac, &font, "Floppy 1: Boot Floppy (HFS, 800K)").is_some());
    assert!(find_text(&mac, &font, "SCSI 3: Hard Disk (HFS)").is_some());
}

#[test]
fn a_name_too_long_for_its_column_is_cut_short() {
    let font = font();
    let mut mac = machine();
    let name = "MAMMOTH WOMBAT WAREHOUSE MW";
    mac.insert_floppy(0, floppy(hfs_volume(name, 1600)))
        .unwrap();
    frames(&mut mac, POLL_FRAMES);
    assert_eq!(
        find_text(&mac, &font, &format!("Floppy 1: {name} (HFS, 800K)")),
        None
    );
    let head = find_text(&mac, &font, "Floppy 1: MAMMOTH WOMBAT").expect("the name's start");
    let tail = find_text(&mac, &font, "... (HFS, 800K)").expect("the cut marked with ...");
    assert_eq!(head.1, tail.1, "one line");
}

/// Rows 301..=341 between the screen's rounded corners: the 50 % gray desktop (0xAA on even
/// rows, 0x55 on odd ones), as everywhere the desk draws nothing.
fn below_window_is_desktop(mac: &MacPlus) -> bool {
    let s = mac.screen();
    (301..337).all(|y| {
        let want = if y % 2 == 0 { 0xAA } else { 0x55 };
        s[y * 64 + 1..y * 64 + 63].iter().all(|&b| b == want)
    })
}

#[test]
fn the_strip_is_there_only_while_a_disk_is() {
    let font = font();
    let mut mac = machine();
    frames(&mut mac, POLL_FRAMES);
    assert!(
        below_window_is_desktop(&mac),
        "no disks: the desk as before"
    );
    mac.insert_floppy(1, floppy(mfs_volume("Visitor", 800)))
        .unwrap();
    frames(&mut mac, POLL_FRAMES);
    assert!(find_text(&mac, &font, "Floppy 2: Visitor (MFS, 400K)").is_some());
    assert!(!below_window_is_desktop(&mac));
    mac.eject_floppy(1).unwrap();
    frames(&mut mac, POLL_FRAMES);
    assert!(
        below_window_is_desktop(&mac),
        "the last disk gone: the strip too"
    );
}
