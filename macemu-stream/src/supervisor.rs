//! Finding and (optionally) launching the emulator.
//!
//! The server attaches to `--target-pid` when it is alive, else to an emulator it launched, else to
//! any live emulator found in `/dev/shm`; it looks again every 500 ms while detached, so an emulator that
//! dies or restarts (with a new pid) is picked up again by itself.

use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

/// How often to look for an emulator while detached.
pub const SCAN_PERIOD: Duration = Duration::from_millis(500);

/// Picks the emulator to attach to: the target if alive, then our child, then (only when no
/// target was named) the newest live one found. A named target is never replaced by an
/// unrelated emulator: `--target-pid` means that emulator.
pub fn choose_pid(
    target: Option<u32>,
    child: Option<u32>,
    found: &[macemu_ipc::EmulatorInfo],
) -> Option<u32> {
    let usable = |pid: u32| {
        found
            .iter()
            .any(|e| e.pid == pid && e.alive && e.valid && e.socket)
    };
    if let Some(t) = target.filter(|&t| usable(t)) {
        return Some(t);
    }
    if let Some(c) = child.filter(|&c| usable(c)) {
        return Some(c);
    }
    if target.is_some() {
        return None;
    }
    found
        .iter()
        .filter(|e| e.alive && e.valid && e.socket)
        .map(|e| e.pid)
        .max()
}

/// The emulator process the server manages (`--auto-start`, `/api/emulator/start`).
pub struct EmulatorProcess {
    cmd: Vec<String>,
    child: Mutex<Option<Child>>,
}

impl EmulatorProcess {
    /// `cmd`: program and arguments; empty means "this executable's `emulate`".
    pub fn new(cmd: Vec<String>) -> Self {
        Self {
            cmd,
            child: Mutex::new(None),
        }
    }

    pub fn command_line(&self) -> Vec<String> {
        if self.cmd.is_empty() {
            let exe = std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "macemu-cli".into());
            vec![exe, "emulate".into()]
        } else {
            self.cmd.clone()
        }
    }

    /// Pid of the running child, reaping it if it exited.
    pub fn pid(&self) -> Option<u32> {
        let mut g = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = g.as_mut() {
            match c.try_wait() {
                Ok(None) => return Some(c.id()),
                Ok(Some(status)) => tracing::info!(pid = c.id(), %status, "emulator exited"),
                Err(e) => tracing::warn!("waiting for the emulator: {e}"),
            }
            *g = None;
        }
        None
    }

    /// Launches the emulator unless ours is already running; returns its pid.
    pub fn start(&self) -> std::io::Result<u32> {
        if let Some(pid) = self.pid() {
            return Ok(pid);
        }
        let cl = self.command_line();
        let (prog, args) = cl
            .split_first()
            .ok_or_else(|| std::io::Error::other("empty emulator command"))?;
        let child = Command::new(prog).args(args).stdin(Stdio::null()).spawn()?;
        let pid = child.id();
        tracing::info!(pid, cmd = %cl.join(" "), "emulator launched");
        *self.child.lock().unwrap_or_else(|e| e.into_inner()) = Some(child);
        Ok(pid)
    }

    /// Stops our emulator (SIGTERM, then SIGKILL after 2 s). Returns whether one was running.
    pub fn stop(&self) -> bool {
        let Some(mut c) = self.child.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return false;
        };
        let pid = c.id();
        // SAFETY: plain kill(2) on our own child's pid, which is not yet reaped (no pid reuse).
        let _ = unsafe { libc_kill(pid as i32, 15) };
        for _ in 0..20 {
            if matches!(c.try_wait(), Ok(Some(_))) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = c.kill();
        let _ = c.wait();
        true
    }
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

#[cfg(test)]
mod tests {
    use super::*;
    use macemu_ipc::EmulatorInfo;

    fn info(pid: u32, alive: bool) -> EmulatorInfo {
        EmulatorInfo {
            pid,
            width: 512,
            height: 342,
            state: None,
            alive,
            valid: true,
            socket: true,
        }
    }

    #[test]
    fn target_then_child_then_newest_when_untargeted() {
        let found = [info(10, true), info(20, true), info(30, false)];
        assert_eq!(choose_pid(Some(10), Some(20), &found), Some(10));
        assert_eq!(
            choose_pid(Some(30), Some(20), &found),
            Some(20),
            "dead target: fall back"
        );
        assert_eq!(
            choose_pid(Some(99), None, &found),
            None,
            "a named target is not replaced by another emulator"
        );
        assert_eq!(choose_pid(None, None, &found), Some(20), "newest live one");
        assert_eq!(choose_pid(None, None, &[info(5, false)]), None);
    }

    #[test]
    fn process_start_and_stop() {
        let p = EmulatorProcess::new(vec!["sleep".into(), "30".into()]);
        let pid = p.start().unwrap();
        assert_eq!(p.pid(), Some(pid));
        assert_eq!(p.start().unwrap(), pid, "one at a time");
        assert!(p.stop());
        assert_eq!(p.pid(), None);
        assert!(!p.stop());
    }
}
