//! Finding emulators (`/dev/shm/macemu-video-<pid>`) and removing leftovers of dead ones.

use crate::abi::{
    off, MACEMU_CONTROL_SOCK_PREFIX, MACEMU_CONTROL_SOCK_SUFFIX, MACEMU_HEADER_SIZE,
    MACEMU_VIDEO_SHM_PREFIX,
};
use crate::shm::{MapError, ShmMap};
use crate::sys::{our_uid, pid_alive};
use crate::video::HeaderSnapshot;
use crate::EmulatorState;
use std::path::PathBuf;
use std::sync::atomic::Ordering::SeqCst;

pub(crate) const SHM_DIR: &str = "/dev/shm";

/// `/macemu-video-<pid>`.
pub fn shm_name(pid: u32) -> String {
    format!("{MACEMU_VIDEO_SHM_PREFIX}{pid}")
}

/// `/tmp/macemu-<pid>.sock`.
pub fn control_socket_path(pid: u32) -> String {
    format!("{MACEMU_CONTROL_SOCK_PREFIX}{pid}{MACEMU_CONTROL_SOCK_SUFFIX}")
}

/// One emulator found by [`list_emulators`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmulatorInfo {
    pub pid: u32,
    pub width: u32,
    pub height: u32,
    /// `None` when the header is unreadable or holds an impossible state.
    pub state: Option<EmulatorState>,
    /// The process exists.
    pub alive: bool,
    /// The header passes v4 validation for this pid.
    pub valid: bool,
    /// The control socket exists.
    pub socket: bool,
}

/// Reads the header of `/macemu-video-<pid>` through a read-only header-only mapping.
/// `Err`: the entry is not ours to read (another user's, a symlink, unreadable).
pub(crate) fn read_header(pid: u32) -> Result<Option<HeaderSnapshot>, String> {
    let map = match ShmMap::open(&shm_name(pid), false) {
        Ok(m) => m,
        Err(MapError::Untrusted(why)) => return Err(why),
        Err(MapError::Io(e)) if e == rustix::io::Errno::ACCESS || e == rustix::io::Errno::PERM => {
            return Err(format!("{SHM_DIR}{} is unreadable: {e}", shm_name(pid)))
        }
        // Gone meanwhile, or too small to hold a header: listed as invalid.
        Err(_) => return Ok(None),
    };
    if !map.intact() {
        return Ok(None);
    }
    let mut bytes = vec![0u8; MACEMU_HEADER_SIZE.min(off::AUDIO_RING)];
    for (i, chunk) in bytes.chunks_exact_mut(4).enumerate() {
        chunk.copy_from_slice(&map.u32(i * 4).load(SeqCst).to_ne_bytes());
    }
    Ok(HeaderSnapshot::from_bytes(&bytes))
}

/// Whether a control socket of ours is at `path` (not a symlink, not another user's).
fn own_socket(path: &str) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    std::fs::symlink_metadata(path)
        .is_ok_and(|md| md.file_type().is_socket() && md.uid() == our_uid())
}

fn shm_pids() -> Vec<u32> {
    let mut pids: Vec<u32> = std::fs::read_dir(SHM_DIR)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            name.to_str()?
                .strip_prefix(&MACEMU_VIDEO_SHM_PREFIX[1..])?
                .parse()
                .ok()
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// Emulators of our uid with shared memory in `/dev/shm`, live or not, sorted by pid. Entries of
/// other users, symlinks and unreadable entries are skipped with a warning: another local user
/// must not be able to pose as our emulator.
pub fn list_emulators() -> Vec<EmulatorInfo> {
    shm_pids()
        .into_iter()
        .filter_map(|pid| {
            let hdr = match read_header(pid) {
                Ok(h) => h,
                Err(why) => {
                    warn_once(pid, &why);
                    return None;
                }
            };
            let valid = hdr.is_some_and(|h| h.validate_connect(pid).is_ok());
            Some(EmulatorInfo {
                pid,
                width: hdr.map_or(0, |h| h.width),
                height: hdr.map_or(0, |h| h.height),
                state: hdr.and_then(|h| h.state().ok()),
                alive: pid_alive(pid),
                valid,
                socket: own_socket(&control_socket_path(pid)),
            })
        })
        .collect()
}

/// Warns about a skipped entry once per pid and reason: servers scan every 500 ms, and a foreign
/// entry that stays would otherwise fill the log.
fn warn_once(pid: u32, why: &str) {
    static SEEN: std::sync::Mutex<Vec<(u32, String)>> = std::sync::Mutex::new(Vec::new());
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    if seen.iter().any(|(p, w)| *p == pid && w == why) {
        tracing::debug!(pid, "ipc: skipping {why}");
        return;
    }
    if seen.len() >= 256 {
        seen.remove(0);
    }
    seen.push((pid, why.to_owned()));
    tracing::warn!(pid, "ipc: skipping {why}");
}

/// What [`clean_stale`] removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Removed {
    pub pid: u32,
    pub paths: Vec<PathBuf>,
}

/// Removes shared memory and control sockets of pids that no longer exist. Live emulators and
/// entries of other users are never touched.
pub fn clean_stale() -> Vec<Removed> {
    let mut pids = shm_pids();
    let sock_dir = std::path::Path::new(MACEMU_CONTROL_SOCK_PREFIX)
        .parent()
        .unwrap_or(std::path::Path::new("/tmp"));
    let sock_stem = std::path::Path::new(MACEMU_CONTROL_SOCK_PREFIX)
        .file_name()
        .and_then(|s| s.to_str())
        .unwrap_or("macemu-");
    for e in std::fs::read_dir(sock_dir).into_iter().flatten().flatten() {
        if let Some(pid) = e
            .file_name()
            .to_str()
            .and_then(|n| n.strip_prefix(sock_stem))
            .and_then(|n| n.strip_suffix(MACEMU_CONTROL_SOCK_SUFFIX))
            .and_then(|n| n.parse::<u32>().ok())
        {
            pids.push(pid);
        }
    }
    pids.sort_unstable();
    pids.dedup();
    let mut out = Vec::new();
    for pid in pids {
        if pid_alive(pid) {
            continue;
        }
        let mut paths = Vec::new();
        let shm = PathBuf::from(format!("{SHM_DIR}{}", shm_name(pid)));
        if owned_by_us(&shm) && rustix::shm::unlink(shm_name(pid).as_str()).is_ok() {
            paths.push(shm);
        }
        let sock = PathBuf::from(control_socket_path(pid));
        if owned_by_us(&sock) && std::fs::remove_file(&sock).is_ok() {
            paths.push(sock);
        }
        if !paths.is_empty() {
            tracing::info!(pid, "ipc: removed leftovers {paths:?}");
            out.push(Removed { pid, paths });
        }
    }
    out
}

/// Whether the directory entry itself (not a symlink's target) is ours; warns when it is not.
fn owned_by_us(path: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match std::fs::symlink_metadata(path) {
        Ok(md) if md.uid() == our_uid() => true,
        Ok(md) => {
            tracing::warn!(
                "ipc: leaving {} alone: it belongs to uid {}",
                path.display(),
                md.uid()
            );
            false
        }
        Err(_) => false,
    }
}
