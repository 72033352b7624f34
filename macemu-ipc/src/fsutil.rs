//! Replacing a small file safely (prefs, XPRAM): shared by the server and the emulator, which both
//! depend on this crate.

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use std::io::{self, Write};
use std::path::Path;

/// Replaces `path` with `data` atomically and durably, never through a symlink:
///
/// - a symlink (or anything but a regular file) at `path` is refused, not followed;
/// - the data goes to a new temporary file beside it, created exclusively (`O_EXCL`,
///   `O_NOFOLLOW`) under an unpredictable name, so nobody can pre-plant that name;
/// - the file keeps its mode (and, where permitted, owner); a new file gets `new_mode`;
/// - the file is fsynced before the rename and the directory after it.
pub fn write_file_atomic(path: &Path, data: &[u8], new_mode: u32) -> io::Result<()> {
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
    fn a_directory_is_not_replaced() {
        let d = dir("notfile");
        std::fs::create_dir(d.join("prefs")).unwrap();
        assert!(write_file_atomic(&d.join("prefs"), b"x", 0o600).is_err());
        assert!(d.join("prefs").is_dir());
        assert_eq!(entries(&d), ["prefs"]);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
