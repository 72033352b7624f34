//! Disk images for the emulated machine's drives: naming, opening, and the socket's drive
//! messages (see `docs/PROTOCOL-EXTENSIONS.md`).
//!
//! Files are opened here, on the thread that asked (start-up or the control thread), and handed
//! to the machine's thread ready to use, so the emulated machine never waits on the host's file
//! system to open an image.

use macemu_core::machine::Machine;
use macemu_core::storage::{
    Backing, DiskError, DriveEvent, DriveEventKind, DriveInfo, DriveSlot, FileBacking, OpenError,
};
use macemu_ipc::drive::{DriveCommand, DriveReport, ReportedMedia, WireSlot};
use std::path::{Path, PathBuf};

/// A disk to insert at power-on: `--floppy`, `--scsi`, or a prefs file's entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskSpec {
    pub slot: DriveSlot,
    pub path: PathBuf,
    pub read_only: bool,
}

/// Why a disk could not be put in a drive.
#[derive(Debug, thiserror::Error)]
pub enum InsertError {
    #[error("{0}")]
    Open(#[from] OpenError),
    #[error("{path}: {source}", path = path.display())]
    Disk { path: PathBuf, source: DiskError },
}

pub fn slot_from_wire(w: WireSlot) -> DriveSlot {
    match w {
        WireSlot::Floppy(n) => DriveSlot::Floppy(n),
        WireSlot::Scsi(n) => DriveSlot::Scsi(n),
    }
}

pub fn slot_to_wire(s: DriveSlot) -> Option<WireSlot> {
    match s {
        DriveSlot::Floppy(n @ 0..=1) => Some(WireSlot::Floppy(n)),
        DriveSlot::Scsi(n @ 0..=6) => Some(WireSlot::Scsi(n)),
        _ => None,
    }
}

/// Opens an image file for a drive (locked: two emulators never write one image).
pub fn open(path: &Path, read_only: bool) -> Result<Box<dyn Backing>, InsertError> {
    Ok(Box::new(FileBacking::open(path, read_only)?))
}

/// Puts an opened image into `slot`.
pub fn insert(
    mac: &mut dyn Machine,
    slot: DriveSlot,
    path: &Path,
    media: Box<dyn Backing>,
) -> Result<(), InsertError> {
    mac.insert_disk(slot, media)
        .map_err(|source| InsertError::Disk {
            path: path.to_path_buf(),
            source,
        })
}

/// A drive command made ready for the machine's thread (its file already opened).
pub enum DriveRequest {
    Insert {
        slot: DriveSlot,
        path: PathBuf,
        media: Result<Box<dyn Backing>, String>,
    },
    Eject(DriveSlot),
    Report,
}

/// Opens what a socket command names, on the calling (control) thread.
pub fn request(cmd: DriveCommand) -> DriveRequest {
    match cmd {
        DriveCommand::Insert {
            slot,
            read_only,
            path,
        } => {
            let media = if path.is_absolute() {
                open(&path, read_only).map_err(|e| e.to_string())
            } else {
                Err(format!("{}: the path must be absolute", path.display()))
            };
            DriveRequest::Insert {
                slot: slot_from_wire(slot),
                path,
                media,
            }
        }
        DriveCommand::Eject { slot } => DriveRequest::Eject(slot_from_wire(slot)),
        DriveCommand::Query => DriveRequest::Report,
    }
}

/// Carries out a request on the machine's thread; returns the reports to send back.
pub fn apply(mac: &mut dyn Machine, req: DriveRequest) -> Vec<DriveReport> {
    let changed = |mac: &dyn Machine, slot: DriveSlot| {
        mac.drives()
            .into_iter()
            .filter(|d| d.slot == slot)
            .map(|d| report(&d, false, None))
            .collect()
    };
    match req {
        DriveRequest::Insert { slot, path, media } => {
            let done = media.and_then(|m| insert(mac, slot, &path, m).map_err(|e| e.to_string()));
            match done {
                Ok(()) => {
                    tracing::info!(drive = %slot, path = %path.display(), "disk inserted");
                    changed(mac, slot)
                }
                Err(e) => {
                    tracing::warn!(drive = %slot, "insert refused: {e}");
                    vec![failure(mac, slot, e)]
                }
            }
        }
        DriveRequest::Eject(slot) => match mac.eject_disk(slot) {
            Ok(()) => {
                tracing::info!(drive = %slot, "disk ejected");
                changed(mac, slot)
            }
            Err(e) => vec![failure(mac, slot, e.to_string())],
        },
        DriveRequest::Report => mac
            .drives()
            .iter()
            .map(|d| report(d, false, None))
            .collect(),
    }
}

/// The wire report of one drive.
pub fn report(info: &DriveInfo, ejected_by_mac: bool, error: Option<String>) -> DriveReport {
    DriveReport {
        slot: slot_to_wire(info.slot),
        media: info.media.as_ref().map(|m| ReportedMedia {
            name: m.name.clone(),
            bytes: m.bytes,
            read_only: m.read_only,
            format: m.format.clone(),
        }),
        ejected_by_mac,
        error,
    }
}

/// The report of something the Mac did to a drive, logged here too.
pub fn event_report(event: DriveEvent) -> DriveReport {
    let slot = event.info.slot;
    match event.kind {
        DriveEventKind::EjectedByMac => {
            tracing::info!(drive = %slot, "the Mac ejected its disk");
            report(&event.info, true, None)
        }
        DriveEventKind::WriteFailed(why) => {
            tracing::error!(drive = %slot, "a write by the Mac did not reach the image: {why}");
            let error = format!("a write did not reach the image: {why}");
            report(&event.info, false, Some(error))
        }
    }
}

/// A report for a command on `slot` that failed.
pub fn failure(mac: &dyn Machine, slot: DriveSlot, error: String) -> DriveReport {
    let info = mac
        .drives()
        .into_iter()
        .find(|d| d.slot == slot)
        .unwrap_or(DriveInfo { slot, media: None });
    report(&info, false, Some(error))
}

/// Places prefs-file `disk` entries: floppy-sized images (400K/800K raw, with tags, or
/// DiskCopy 4.2 of those) go to the free floppy drives, others to the first free SCSI ID.
pub fn place_disks(
    specs: &mut Vec<DiskSpec>,
    disks: impl IntoIterator<Item = (PathBuf, bool)>,
) -> Result<(), String> {
    for (path, read_only) in disks {
        let size = std::fs::metadata(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .len();
        let floppy = is_floppy_sized(size);
        let taken = |s: DriveSlot| specs.iter().any(|d| d.slot == s);
        let slot = if floppy {
            (0..2).map(DriveSlot::Floppy).find(|s| !taken(*s))
        } else {
            (0..7).map(DriveSlot::Scsi).find(|s| !taken(*s))
        }
        .ok_or_else(|| format!("{}: no free drive left for it", path.display()))?;
        specs.push(DiskSpec {
            slot,
            path,
            read_only,
        });
    }
    Ok(())
}

/// 400K and 800K floppies: raw, raw followed by tags, and DiskCopy 4.2 (84-byte header).
pub fn is_floppy_sized(size: u64) -> bool {
    const DATA: [u64; 2] = [409_600, 819_200];
    DATA.iter().any(|&d| {
        size == d || size == d + d / 512 * 12 || size == d + 84 || size == d + d / 512 * 12 + 84
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_and_core_slots_map_both_ways() {
        for w in [
            WireSlot::Floppy(0),
            WireSlot::Floppy(1),
            WireSlot::Scsi(0),
            WireSlot::Scsi(6),
        ] {
            assert_eq!(slot_to_wire(slot_from_wire(w)), Some(w));
        }
        assert_eq!(slot_to_wire(DriveSlot::Floppy(2)), None);
        assert_eq!(slot_to_wire(DriveSlot::Scsi(7)), None);
    }

    #[test]
    fn the_macs_drive_events_become_reports_the_page_shows() {
        use macemu_core::storage::MediaInfo;
        let media = MediaInfo {
            name: "hd.img".into(),
            bytes: 1 << 20,
            read_only: false,
            format: "raw".into(),
        };
        let failed = event_report(DriveEvent {
            info: DriveInfo {
                slot: DriveSlot::Scsi(2),
                media: Some(media),
            },
            kind: DriveEventKind::WriteFailed("block 7: no space left on device".into()),
        });
        assert_eq!(failed.slot, Some(WireSlot::Scsi(2)));
        assert!(!failed.ejected_by_mac);
        assert_eq!(
            failed.media.as_ref().map(|m| m.name.as_str()),
            Some("hd.img")
        );
        let why = failed.error.as_deref().unwrap_or_default();
        assert!(why.contains("block 7: no space left on device"), "{why}");

        let ejected = event_report(DriveEvent {
            info: DriveInfo {
                slot: DriveSlot::Floppy(1),
                media: None,
            },
            kind: DriveEventKind::EjectedByMac,
        });
        assert!(ejected.ejected_by_mac && ejected.error.is_none() && ejected.media.is_none());
        // Both survive the socket's encoding.
        for r in [failed, ejected] {
            let bytes = r.encode();
            let (op, payload) = macemu_ipc::drive::decode_ext(&bytes).unwrap();
            assert_eq!(DriveReport::decode(op, &payload).unwrap(), r);
        }
    }

    #[test]
    fn floppy_sizes_are_the_documented_ones() {
        for s in [
            409_600, 819_200, 419_200, 838_400, 409_684, 819_284, 838_484,
        ] {
            assert!(is_floppy_sized(s), "{s}");
        }
        for s in [0, 512, 1_474_560, 40 << 20, 819_201] {
            assert!(!is_floppy_sized(s), "{s}");
        }
    }

    #[test]
    fn prefs_disks_fill_free_drives_in_order() {
        let dir = std::env::temp_dir().join(format!("macemu-place-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("a.dsk");
        let h = dir.join("hd.img");
        std::fs::write(&f, vec![0u8; 819_200]).unwrap();
        std::fs::write(&h, vec![0u8; 1 << 20]).unwrap();
        let mut specs = vec![DiskSpec {
            slot: DriveSlot::Scsi(0),
            path: "/x".into(),
            read_only: false,
        }];
        place_disks(
            &mut specs,
            [(f.clone(), true), (h.clone(), false), (f.clone(), true)],
        )
        .unwrap();
        let slots: Vec<DriveSlot> = specs.iter().map(|d| d.slot).collect();
        assert_eq!(
            slots,
            [
                DriveSlot::Scsi(0),
                DriveSlot::Floppy(0),
                DriveSlot::Scsi(1),
                DriveSlot::Floppy(1)
            ]
        );
        let e = place_disks(&mut specs, [(f.clone(), true)]).unwrap_err();
        assert!(e.contains("no free drive"), "{e}");
        assert!(place_disks(&mut specs, [(dir.join("missing"), false)]).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
