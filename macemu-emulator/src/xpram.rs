//! Persisting the RTC's 256 bytes of parameter RAM (XPRAM) between runs.
//!
//! The file is written atomically (temporary file + rename) so a crash mid-save never leaves a
//! truncated PRAM behind; a file of the wrong size is reported, not silently replaced.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Size of the Mac Plus RTC's parameter RAM.
pub const XPRAM_SIZE: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum XpramError {
    #[error("reading XPRAM file {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("XPRAM file {path} has {len} bytes, expected {XPRAM_SIZE}")]
    WrongSize { path: PathBuf, len: usize },
    #[error("writing XPRAM file {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

/// Loads the XPRAM file, or `None` when it does not exist yet.
pub fn load(path: &Path) -> Result<Option<[u8; XPRAM_SIZE]>, XpramError> {
    match fs::read(path) {
        Ok(bytes) => {
            let arr: [u8; XPRAM_SIZE] =
                bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| XpramError::WrongSize {
                        path: path.to_owned(),
                        len: bytes.len(),
                    })?;
            Ok(Some(arr))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(XpramError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Writes the XPRAM file atomically (new files get mode 0600, an existing file keeps its mode);
/// a symlink in its place is refused (see `macemu_ipc::fsutil`).
pub fn save(path: &Path, data: &[u8; XPRAM_SIZE]) -> Result<(), XpramError> {
    macemu_ipc::fsutil::write_file_atomic(path, data, 0o600).map_err(|source| XpramError::Write {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let dir = std::env::temp_dir().join(format!("macemu-xpram-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("xpram");
        assert!(load(&path).unwrap().is_none());
        let mut data = [0u8; XPRAM_SIZE];
        data[0x10] = 0xA8;
        data[255] = 7;
        save(&path, &data).unwrap();
        assert_eq!(load(&path).unwrap(), Some(data));
        fs::write(&path, b"short").unwrap();
        assert!(matches!(
            load(&path),
            Err(XpramError::WrongSize { len: 5, .. })
        ));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn save_follows_no_symlink_and_keeps_the_mode() {
        use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
        let dir = std::env::temp_dir().join(format!("macemu-xpram-links-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let victim = dir.join("victim");
        fs::write(&victim, b"precious").unwrap();
        let path = dir.join("xpram");
        // A planted symlink at the old fixed temporary name must not be written through.
        symlink(&victim, dir.join("xpram.tmp")).unwrap();
        save(&path, &[1; XPRAM_SIZE]).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        save(&path, &[2; XPRAM_SIZE]).unwrap();
        assert_eq!(load(&path).unwrap(), Some([2; XPRAM_SIZE]));
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o640);
        // A symlink in place of the file itself is refused.
        fs::remove_file(&path).unwrap();
        symlink(&victim, &path).unwrap();
        assert!(matches!(
            save(&path, &[3; XPRAM_SIZE]),
            Err(XpramError::Write { .. })
        ));
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        fs::remove_dir_all(&dir).unwrap();
    }
}
