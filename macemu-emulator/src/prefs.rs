//! BasiliskII-style preferences: one `key value` per line, `#` comments, repeatable keys.
//!
//! Only the keys a Mac Plus uses are read: `rom`, `ramsize`, `floppy`, `disk`, `scsi0`…`scsi6`
//! (a value starting with `*` is opened read-only, as BasiliskII does). Other keys (`screen`,
//! `modelid`, `cpu`, …) belong to other emulators sharing the file and are kept, not refused.
//! `disk` images go to the first free SCSI ID from 0 (after explicit `scsiN` entries) unless
//! they are floppy-sized, which go to the floppy drives.

use std::path::PathBuf;

/// A disk named in the prefs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrefDisk {
    pub path: PathBuf,
    pub read_only: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Prefs {
    pub rom: Option<PathBuf>,
    pub ram_size: Option<u64>,
    pub floppies: Vec<PrefDisk>,
    /// `disk` lines, in order (placed by the caller, which knows their sizes).
    pub disks: Vec<PrefDisk>,
    /// `scsi0`…`scsi6`.
    pub scsi: [Option<PrefDisk>; 7],
    /// Keys this machine does not use, for a debug log.
    pub ignored: Vec<String>,
}

/// A line the parser cannot accept.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("prefs line {line}: {reason}")]
pub struct PrefsError {
    pub line: usize,
    pub reason: String,
}

fn disk(value: &str) -> PrefDisk {
    match value.strip_prefix('*') {
        Some(p) => PrefDisk {
            path: PathBuf::from(p.trim()),
            read_only: true,
        },
        None => PrefDisk {
            path: PathBuf::from(value),
            read_only: false,
        },
    }
}

/// Parses a byte count: plain bytes as BasiliskII writes them, or with a K/M/G suffix and an
/// optional decimal fraction that comes to whole bytes ("2.5M"). The one size syntax of the
/// prefs file and the command line.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mul): (&str, u64) = match s.char_indices().last()? {
        (i, 'k' | 'K') => (&s[..i], 1 << 10),
        (i, 'm' | 'M') => (&s[..i], 1 << 20),
        (i, 'g' | 'G') => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let (whole, frac) = match num.trim().split_once('.') {
        Some((w, f)) if digits(f) && f.len() <= 9 => (w, f),
        Some(_) => return None,
        None => (num.trim(), ""),
    };
    if !digits(whole) {
        return None;
    }
    let bytes = whole.parse::<u64>().ok()?.checked_mul(mul)?;
    if frac.is_empty() {
        return Some(bytes);
    }
    let scale = 10u64.pow(frac.len() as u32);
    let part = frac.parse::<u64>().ok()?.checked_mul(mul)?;
    // A fraction must come to whole bytes: "2.5M" does, "1.1K" does not.
    (part % scale == 0).then(|| bytes.checked_add(part / scale))?
}

impl Prefs {
    pub fn parse(text: &str) -> Result<Prefs, PrefsError> {
        let mut p = Prefs::default();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = match line.split_once(char::is_whitespace) {
                Some((k, v)) => (k, v.trim()),
                None => (line, ""),
            };
            let err = |reason: String| PrefsError {
                line: i + 1,
                reason,
            };
            let needs_value = || {
                if value.is_empty() {
                    Err(err(format!("`{key}` needs a value")))
                } else {
                    Ok(())
                }
            };
            match key {
                "rom" => {
                    needs_value()?;
                    p.rom = Some(PathBuf::from(value));
                }
                "ramsize" => {
                    needs_value()?;
                    p.ram_size = Some(
                        parse_size(value)
                            .ok_or_else(|| err(format!("`ramsize {value}` is not a size")))?,
                    );
                }
                "floppy" => {
                    needs_value()?;
                    p.floppies.push(disk(value));
                }
                "disk" => {
                    needs_value()?;
                    p.disks.push(disk(value));
                }
                k if k.len() == 5 && k.starts_with("scsi") => {
                    let id = k.as_bytes()[4].wrapping_sub(b'0');
                    if id > 6 {
                        return Err(err(format!("`{k}`: SCSI IDs are 0 to 6 (7 is the Mac)")));
                    }
                    needs_value()?;
                    p.scsi[id as usize] = Some(disk(value));
                }
                other => p.ignored.push(other.to_string()),
            }
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_basilisk_keys_and_keeps_others() {
        let p = Prefs::parse(
            "# written by BasiliskII\nrom /roms/plus.rom\nramsize 4194304\n\
             disk *System 7.hfv\ndisk /d/work.hda\nfloppy /f/System Tools.image\n\
             scsi3 /d/cd.iso\nscreen win/512/342\nmodelid 5\n",
        )
        .unwrap();
        assert_eq!(p.rom, Some(PathBuf::from("/roms/plus.rom")));
        assert_eq!(p.ram_size, Some(4 << 20));
        assert_eq!(
            p.disks,
            [
                PrefDisk {
                    path: "System 7.hfv".into(),
                    read_only: true
                },
                PrefDisk {
                    path: "/d/work.hda".into(),
                    read_only: false
                }
            ]
        );
        assert_eq!(p.floppies[0].path, PathBuf::from("/f/System Tools.image"));
        assert_eq!(p.scsi[3].as_ref().unwrap().path, PathBuf::from("/d/cd.iso"));
        assert_eq!(p.ignored, ["screen", "modelid"]);
    }

    #[test]
    fn bad_lines_name_the_line() {
        assert_eq!(Prefs::parse("rom\n").unwrap_err().line, 1);
        let e = Prefs::parse("\nramsize lots\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.reason.contains("ramsize"));
        assert!(Prefs::parse("scsi7 /x\n")
            .unwrap_err()
            .reason
            .contains("0 to 6"));
        assert!(Prefs::parse("scsi9 /x\n").is_err());
    }

    #[test]
    fn sizes_take_suffixes() {
        assert_eq!(parse_size("40M"), Some(40 << 20));
        assert_eq!(parse_size("800k"), Some(800 << 10));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("2.5M"), Some(5 << 19));
        assert_eq!(parse_size("0.5k"), Some(512));
        assert_eq!(parse_size("1.1K"), None, "not whole bytes");
        assert_eq!(parse_size("1.5"), None, "bytes have no fraction");
        for bad in [
            "M", "-1M", "+1M", "1..5M", ".5M", "5.M", "1e3", "4 MB", "lots",
        ] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
        assert_eq!(parse_size("99999999999999G"), None);
        assert_eq!(parse_size(""), None);
    }
}
