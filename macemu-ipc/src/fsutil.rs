//! Replacing a small file safely (prefs, XPRAM) and writing a new one in pieces (uploads): shared by the server and the emulator, which both
//! depend on this crate.

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use std::io::{self, Write};
use std::path::Path;

/// The folder of `path`, opened (the name is then looked up in it, never through a path again),
/// and the file's name in it.
fn open_parent(path: &Path) -> io::Result<(rustix::fd::OwnedFd, &std::ffi::OsStr)> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} names no file", path.display()),
        )
    })?;
    let dirfd = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok((dirfd, name))
}

/// Replaces `path` with `data` atomically and durably, never through a symlink:
///
/// - a symlink (or anything but a regular file) at `path` is refused, not followed;
/// - the data goes to a new temporary file beside it, created exclusively (`O_EXCL`,
///   `O_NOFOLLOW`) under an unpredictable name, so nobody can pre-plant that name;
/// - the file keeps its mode (and, where permitted, owner); a new file gets `new_mode`;
/// - the file is fsynced before the rename and the directory after it.
pub fn write_file_atomic(path: &Path, data: &[u8], new_mode: u32) -> io::Result<()> {
    let (dirfd, name) = open_parent(path)?;
    let existing = match rustix::fs::statat(&dirfd, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => Some(st),
            FileType::Symlink => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{} is a symlink; not writing through it", path.display()),
                ))
            }
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{} is not a regular file", path.display()),
                ))
            }
        },
        Err(Errno::NOENT) => None,
        Err(e) => return Err(e.into()),
    };
    let mode = existing.map_or(new_mode, |st| st.st_mode & 0o7777);

    let (tmp_name, fd) = create_temp(&dirfd, name)?;
    let result = (|| {
        if let Some(st) = existing {
            // Keeps a file another user owns theirs when we may (root); otherwise it becomes ours.
            match rustix::fs::fchown(
                &fd,
                Some(rustix::fs::Uid::from_raw(st.st_uid)),
                Some(rustix::fs::Gid::from_raw(st.st_gid)),
            ) {
                Ok(()) | Err(Errno::PERM) => {}
                Err(e) => return Err(io::Error::from(e)),
            }
        }
        // After any chown, which may clear set-id bits.
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))?;
        let mut file = std::fs::File::from(fd);
        file.write_all(data)?;
        file.sync_all()?;
        drop(file);
        rustix::fs::renameat(&dirfd, tmp_name.as_str(), &dirfd, name)?;
        rustix::fs::fsync(&dirfd)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = rustix::fs::unlinkat(&dirfd, tmp_name.as_str(), AtFlags::empty());
    }
    result
}

/// A new file written in pieces (an upload) that appears under its name only once complete and
/// on disk: the bytes go to an exclusive temporary file in the same folder, and [`NewFile::commit`]
/// fsyncs it and renames it into place without replacing anything there. Dropped before the
/// commit (an upload cut off or refused), it leaves nothing behind.
#[derive(Debug)]
pub struct NewFile {
    dirfd: rustix::fd::OwnedFd,
    tmp: String,
    name: std::ffi::OsString,
    file: Option<std::fs::File>,
    mode: u32,
}

impl NewFile {
    /// Starts `path`, which must not exist yet (`AlreadyExists` otherwise, also at the commit).
    pub fn create(path: &Path, mode: u32) -> io::Result<NewFile> {
        let (dirfd, name) = open_parent(path)?;
        match rustix::fs::statat(&dirfd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} already exists", path.display()),
                ))
            }
            Err(Errno::NOENT) => {}
            Err(e) => return Err(e.into()),
        }
        let (tmp, fd) = create_temp(&dirfd, name)?;
        Ok(NewFile {
            dirfd,
            tmp,
            name: name.to_owned(),
            file: Some(std::fs::File::from(fd)),
            mode,
        })
    }

    pub fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.write_all(data),
            None => Err(io::Error::other("file already committed")),
        }
    }

    /// Makes the file durable and gives it its name; fails if that name was taken meanwhile.
    pub fn commit(mut self) -> io::Result<()> {
        let file = self.file.take().expect("committed once");
        rustix::fs::fchmod(&file, Mode::from_raw_mode(self.mode))?;
        file.sync_all()?;
        drop(file);
        rustix::fs::renameat_with(
            &self.dirfd,
            self.tmp.as_str(),
            &self.dirfd,
            self.name.as_os_str(),
            rustix::fs::RenameFlags::NOREPLACE,
        )
        .map_err(|e| match e {
            Errno::EXIST => io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} appeared meanwhile", self.name.to_string_lossy()),
            ),
            e => e.into(),
        })?;
        self.tmp.clear();
        rustix::fs::fsync(&self.dirfd)?;
        Ok(())
    }
}

impl Drop for NewFile {
    fn drop(&mut self) {
        if !self.tmp.is_empty() {
            let _ = rustix::fs::unlinkat(&self.dirfd, self.tmp.as_str(), AtFlags::empty());
        }
    }
}

/// Creates `.<name>.<random>.tmp` in `dirfd` exclusively, mode 0600 until the real mode is set.
fn create_temp(
    dirfd: &rustix::fd::OwnedFd,
    name: &std::ffi::OsStr,
) -> io::Result<(String, rustix::fd::OwnedFd)> {
    let stem = name.to_string_lossy();
    for _ in 0..16 {
        let mut r = [0u8; 12];
        let mut filled = 0;
        while filled < r.len() {
            match rustix::rand::getrandom(&mut r[filled..], rustix::rand::GetRandomFlags::empty()) {
                Ok(n) => filled += n,
                Err(Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let hex: String = r.iter().map(|b| format!("{b:02x}")).collect();
        let tmp = format!(".{stem}.{hex}.tmp");
        match rustix::fs::openat(
            dirfd,
            tmp.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::RUSR | Mode::WUSR,
        ) {
            Ok(fd) => return Ok((tmp, fd)),
            Err(Errno::EXIST) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no free temporary file name after 16 tries",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("macemu-fsutil-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn entries(d: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn writes_new_and_existing_files_keeping_the_mode() {
        let d = dir("mode");
        let p = d.join("prefs");
        write_file_atomic(&p, b"one", 0o600).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o7777, 0o600);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_file_atomic(&p, b"two, longer", 0o600).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two, longer");
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o7777, 0o640);
        assert_eq!(entries(&d), ["prefs"], "no temporary file left behind");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_symlink_is_refused_and_its_target_untouched() {
        let d = dir("symlink");
        let victim = d.join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let p = d.join("prefs");
        std::os::unix::fs::symlink(&victim, &p).unwrap();
        let e = write_file_atomic(&p, b"evil", 0o600).unwrap_err();
        assert!(e.to_string().contains("symlink"), "{e}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(std::fs::symlink_metadata(&p).unwrap().is_symlink());
        assert_eq!(entries(&d), ["prefs", "victim"]);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_planted_temporary_name_changes_nothing() {
        let d = dir("planted");
        let victim = d.join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        // The names a predictable writer would use, planted as symlinks to the victim.
        for n in ["prefs.tmp", ".prefs.tmp", "prefs.macemu-tmp"] {
            std::os::unix::fs::symlink(&victim, d.join(n)).unwrap();
        }
        write_file_atomic(&d.join("prefs"), b"new", 0o600).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(std::fs::read(d.join("prefs")).unwrap(), b"new");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_new_file_appears_whole_or_not_at_all() {
        let d = dir("newfile");
        let p = d.join("disk.img");
        let mut f = NewFile::create(&p, 0o640).unwrap();
        f.write_all(b"first ").unwrap();
        assert!(!p.exists(), "not visible before the commit");
        f.write_all(b"second").unwrap();
        f.commit().unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"first second");
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o7777, 0o640);
        assert_eq!(entries(&d), ["disk.img"]);

        // An existing name, a symlink included, is never replaced.
        assert_eq!(
            NewFile::create(&p, 0o600).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        std::os::unix::fs::symlink(&p, d.join("link.img")).unwrap();
        assert!(NewFile::create(&d.join("link.img"), 0o600).is_err());

        // Dropped uncommitted: nothing left.
        let mut f = NewFile::create(&d.join("cut.img"), 0o600).unwrap();
        f.write_all(b"partial").unwrap();
        drop(f);
        assert_eq!(entries(&d), ["disk.img", "link.img"]);

        // The name taken while writing: the commit fails and the other file is kept.
        let mut f = NewFile::create(&d.join("race.img"), 0o600).unwrap();
        f.write_all(b"mine").unwrap();
        std::fs::write(d.join("race.img"), b"theirs").unwrap();
        assert_eq!(f.commit().unwrap_err().kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(d.join("race.img")).unwrap(), b"theirs");
        assert_eq!(entries(&d), ["disk.img", "link.img", "race.img"]);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_directory_is_not_replaced() {
        let d = dir("notfile");
        std::fs::create_dir(d.join("prefs")).unwrap();
        assert!(write_file_atomic(&d.join("prefs"), b"x", 0o600).is_err());
        assert!(d.join("prefs").is_dir());
        assert_eq!(entries(&d), ["prefs"]);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
