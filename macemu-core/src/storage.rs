//! Where disk images live, and the names the machine gives its drives.
//!
//! Drive models (the Sony floppy behind the IWM, SCSI disks behind the 5380) read and write
//! their medium through [`Backing`], a byte store with positioned reads and writes. A write is
//! durable when `write_at` returns `Ok`: the device tells the Mac its block is written only
//! after that, so a crash or `kill -9` never loses a block the Mac believes is on disk.
//!
//! [`FileBacking`] is the host file (locked against a second writer, synced on every write);
//! [`MemBacking`] keeps the bytes in memory for tests and images built on the fly.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};
use rustix::io::Errno;

/// A disk image's bytes.
pub trait Backing: Send {
    /// Size in bytes.
    fn len(&self) -> u64;
    /// Whether the image holds no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Fills `buf` from `offset`; reading past the end is an error.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Writes `data` at `offset` (within the current size) and returns once it is durable.
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()>;
    /// True when writes are refused (a read-only file, or opened read-only on purpose).
    fn read_only(&self) -> bool;
    /// A short name for logs and status (the file name).
    fn name(&self) -> String;
}

fn out_of_range(offset: u64, len: usize, size: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("{len} bytes at offset {offset} are outside the {size}-byte image"),
    )
}

fn check_range(offset: u64, len: usize, size: u64) -> io::Result<()> {
    match offset.checked_add(len as u64) {
        Some(end) if end <= size => Ok(()),
        _ => Err(out_of_range(offset, len, size)),
    }
}

fn read_only_error() -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, "the image is read-only")
}

/// An image held in memory.
#[derive(Clone, Debug, Default)]
pub struct MemBacking {
    pub bytes: Vec<u8>,
    pub read_only: bool,
    pub name: String,
}

impl MemBacking {
    pub fn new(bytes: Vec<u8>) -> MemBacking {
        MemBacking {
            bytes,
            read_only: false,
            name: String::from("memory"),
        }
    }
}

impl Backing for MemBacking {
    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(offset, buf.len(), self.len())?;
        let o = offset as usize;
        buf.copy_from_slice(&self.bytes[o..o + buf.len()]);
        Ok(())
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        if self.read_only {
            return Err(read_only_error());
        }
        check_range(offset, data.len(), self.len())?;
        let o = offset as usize;
        self.bytes[o..o + data.len()].copy_from_slice(data);
        Ok(())
    }
    fn read_only(&self) -> bool {
        self.read_only
    }
    fn name(&self) -> String {
        self.name.clone()
    }
}

/// Why an image file cannot be opened.
#[derive(Debug)]
pub enum OpenError {
    Io {
        path: PathBuf,
        source: io::Error,
    },
    /// Another process holds the image open for writing (or we want to write and it reads it).
    Locked {
        path: PathBuf,
    },
    NotAFile {
        path: PathBuf,
    },
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            OpenError::Locked { path } => write!(
                f,
                "{}: in use by another emulator (open it read-only to share it)",
                path.display()
            ),
            OpenError::NotAFile { path } => write!(f, "{}: not a regular file", path.display()),
        }
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OpenError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// An image file on the host. Opened for writing it holds an exclusive lock (two emulators never
/// write one image); read-only it holds a shared lock, so any number of readers can share it.
#[derive(Debug)]
pub struct FileBacking {
    file: File,
    len: u64,
    read_only: bool,
    path: PathBuf,
}

impl FileBacking {
    /// Opens `path` for reading and writing, falling back to read-only when the file is not
    /// writable by us; `read_only` forces read-only.
    pub fn open(path: &Path, read_only: bool) -> Result<FileBacking, OpenError> {
        let io_err = |source| OpenError::Io {
            path: path.to_path_buf(),
            source,
        };
        let (file, read_only) = if read_only {
            (File::open(path).map_err(io_err)?, true)
        } else {
            match OpenOptions::new().read(true).write(true).open(path) {
                Ok(f) => (f, false),
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                    (File::open(path).map_err(io_err)?, true)
                }
                Err(e) => return Err(io_err(e)),
            }
        };
        let meta = file.metadata().map_err(io_err)?;
        if !meta.is_file() {
            return Err(OpenError::NotAFile {
                path: path.to_path_buf(),
            });
        }
        // flock(2): advisory, per open file, released when the file is closed or the process
        // dies, so a killed emulator never leaves a stale lock behind.
        let op = if read_only {
            FlockOperation::NonBlockingLockShared
        } else {
            FlockOperation::NonBlockingLockExclusive
        };
        match flock(&file, op) {
            Ok(()) => {}
            Err(Errno::WOULDBLOCK) => {
                return Err(OpenError::Locked {
                    path: path.to_path_buf(),
                })
            }
            Err(e) => return Err(io_err(e.into())),
        }
        Ok(FileBacking {
            file,
            len: meta.len(),
            read_only,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Backing for FileBacking {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(offset, buf.len(), self.len)?;
        self.file.read_exact_at(buf, offset)
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        if self.read_only {
            return Err(read_only_error());
        }
        check_range(offset, data.len(), self.len)?;
        self.file.write_all_at(data, offset)?;
        // The Mac is told the block is written only after this returns.
        self.file.sync_data()
    }
    fn read_only(&self) -> bool {
        self.read_only
    }
    fn name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.path.display().to_string())
    }
}

/// A drive of the machine, as users name it: `Floppy(0)` is the internal drive, `Floppy(1)`
/// the external one; `Scsi(id)` the disk at SCSI ID 0–6.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DriveSlot {
    Floppy(u8),
    Scsi(u8),
}

impl fmt::Display for DriveSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DriveSlot::Floppy(n) => write!(f, "floppy{n}"),
            DriveSlot::Scsi(n) => write!(f, "scsi{n}"),
        }
    }
}

/// What a drive holds, for status displays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriveInfo {
    pub slot: DriveSlot,
    /// `None` when the drive is empty.
    pub media: Option<MediaInfo>,
}

/// Something that happened in a drive from inside the machine, for the host's user to see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriveEvent {
    /// The drive and what it holds now.
    pub info: DriveInfo,
    pub kind: DriveEventKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DriveEventKind {
    /// The Mac ejected the disk (Finder, Cmd-E, drag to Trash); the image is closed.
    EjectedByMac,
    /// A write by the Mac did not reach the image; the message says which block and why. The
    /// Mac was told too where its hardware can say so (a SCSI CHECK CONDITION); a floppy has no
    /// way to report it, so the host's user is the only one who learns of it.
    WriteFailed(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaInfo {
    pub name: String,
    /// Bytes of user data (without tags or headers).
    pub bytes: u64,
    /// Write-protected as the Mac sees it.
    pub read_only: bool,
    /// The format the image was recognised as, e.g. "DiskCopy 4.2 800K".
    pub format: String,
}

/// Why a disk cannot be inserted or ejected.
#[derive(Debug)]
pub enum DiskError {
    /// The machine has no such drive.
    NoSuchDrive(DriveSlot),
    /// The drive already holds a disk.
    Occupied(DriveSlot),
    /// The image is not in a format this drive takes; the message names the formats it takes.
    Format(String),
    Io(io::Error),
}

impl fmt::Display for DiskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiskError::NoSuchDrive(s) => write!(f, "this machine has no drive {s}"),
            DiskError::Occupied(s) => write!(f, "{s} already holds a disk; eject it first"),
            DiskError::Format(m) => f.write_str(m),
            DiskError::Io(e) => write!(f, "disk image I/O: {e}"),
        }
    }
}

impl std::error::Error for DiskError {}

impl From<io::Error> for DiskError {
    fn from(e: io::Error) -> DiskError {
        DiskError::Io(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_image(name: &str, len: usize) -> PathBuf {
        let p = std::env::temp_dir().join(format!("macemu-storage-{}-{name}", std::process::id()));
        std::fs::write(&p, vec![0u8; len]).unwrap();
        p
    }

    #[test]
    fn mem_backing_bounds_and_read_only() {
        let mut m = MemBacking::new(vec![0; 1024]);
        m.write_at(1000, &[1, 2, 3]).unwrap();
        let mut b = [0u8; 3];
        m.read_at(1000, &mut b).unwrap();
        assert_eq!(b, [1, 2, 3]);
        assert!(m.write_at(1022, &[0; 3]).is_err());
        assert!(m.read_at(u64::MAX, &mut b).is_err());
        m.read_only = true;
        assert_eq!(
            m.write_at(0, &[1]).unwrap_err().kind(),
            io::ErrorKind::PermissionDenied
        );
    }

    #[test]
    fn file_writes_reach_the_file_and_a_second_writer_is_refused() {
        let p = temp_image("lock", 4096);
        let mut a = FileBacking::open(&p, false).unwrap();
        a.write_at(512, b"written").unwrap();
        // Another open file description sees the bytes at once: they are in the file.
        assert_eq!(&std::fs::read(&p).unwrap()[512..519], b"written");
        assert!(matches!(
            FileBacking::open(&p, false),
            Err(OpenError::Locked { .. })
        ));
        assert!(matches!(
            FileBacking::open(&p, true),
            Err(OpenError::Locked { .. })
        ));
        drop(a);
        let r1 = FileBacking::open(&p, true).unwrap();
        let r2 = FileBacking::open(&p, true).unwrap();
        assert!(r1.read_only() && r2.read_only());
        assert!(matches!(
            FileBacking::open(&p, false),
            Err(OpenError::Locked { .. })
        ));
        drop((r1, r2));
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn writes_past_the_end_never_grow_the_file() {
        let p = temp_image("grow", 1024);
        let mut a = FileBacking::open(&p, false).unwrap();
        assert!(a.write_at(1020, &[0; 8]).is_err());
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 1024);
        drop(a);
        std::fs::remove_file(&p).unwrap();
    }
}
