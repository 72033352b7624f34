//! Persisting the RTC's 256 bytes of parameter RAM (XPRAM) between runs.
//!
//! The file is written atomically (temporary file + rename) so a crash mid-save never leaves a
//! truncated PRAM behind; a file of the wrong size is reported, not silently replaced.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
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

/// Writes the XPRAM file atomically with mode 0600.
pub fn save(path: &Path, data: &[u8; XPRAM_SIZE]) -> Result<(), XpramError> {
    let err = |source| XpramError::Write {
        path: path.to_owned(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(data).map_err(err)?;
    f.sync_all().map_err(err)?;
    fs::rename(&tmp, path).map_err(err)
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
}
