//! Finding and (optionally) launching the emulator.
//!
//! The server attaches to `--target-pid` when it is alive, else to an emulator it launched, else to
//! any live emulator found in `/dev/shm`; it looks again every 500 ms while detached, so an emulator that
//! dies or restarts (with a new pid) is picked up again by itself.

use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// A child that exits sooner than this after launch counts as dying at once.
const QUICK_EXIT: Duration = Duration::from_secs(2);
/// First wait before relaunching a child that died at once; doubles per further quick death.
const BACKOFF_START: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How long a stopped child gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(2);

#[derive(Default)]
struct ProcState {
    child: Option<Child>,
    launched: Option<Instant>,
    /// Children in a row that died at once.
    quick_exits: u32,
    /// No launch before this (backoff after quick deaths).
    not_before: Option<Instant>,
}

impl ProcState {
    /// Reaps the child if it exited, updating the backoff; `Some(pid)` while it runs.
    fn poll(&mut self) -> Option<u32> {
        let c = self.child.as_mut()?;
        match c.try_wait() {
            Ok(None) => return Some(c.id()),
            Ok(Some(status)) => {
                let lived = self.launched.map_or(Duration::MAX, |t| t.elapsed());
                if lived < QUICK_EXIT {
                    self.quick_exits = self.quick_exits.saturating_add(1);
                    let wait = BACKOFF_START
                        .saturating_mul(1 << (self.quick_exits - 1).min(16))
                        .min(BACKOFF_MAX);
                    self.not_before = Some(Instant::now() + wait);
                    tracing::warn!(
                        pid = c.id(),
                        %status,
                        "emulator exited after {lived:?}; next launch in {wait:?} at the earliest"
                    );
                } else {
                    self.quick_exits = 0;
                    tracing::info!(pid = c.id(), %status, "emulator exited");
                }
            }
            Err(e) => tracing::warn!("waiting for the emulator: {e}"),
        }
        self.child = None;
        None
    }
}

/// The emulator process the server manages (`--auto-start`, `/api/emulator/start`).
///
/// One owner: every check and launch happens under one lock, so parallel start/restart calls
/// end with exactly one child, and a replaced child is always stopped and reaped. A child that
/// dies at once is relaunched with exponential backoff. Nothing here sleeps on the caller's
/// thread: stopping signals the child and leaves the waiting to a reaper thread.
pub struct EmulatorProcess {
    cmd: Vec<String>,
    state: Mutex<ProcState>,
}

impl EmulatorProcess {
    /// `cmd`: program and arguments; empty means "this executable's `emulate`".
    pub fn new(cmd: Vec<String>) -> Self {
        Self {
            cmd,
            state: Mutex::new(ProcState::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ProcState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
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
        self.lock().poll()
    }

    /// Launches the emulator unless ours is already running; returns its pid. While backing off
    /// after children that died at once, this is an error saying when the next launch may happen.
    pub fn start(&self) -> std::io::Result<u32> {
        let mut st = self.lock();
        if let Some(pid) = st.poll() {
            return Ok(pid);
        }
        if let Some(t) = st.not_before {
            let left = t.saturating_duration_since(Instant::now());
            if !left.is_zero() {
                return Err(std::io::Error::other(format!(
                    "the emulator exited at once {} time(s) in a row; next launch in {left:?}",
                    st.quick_exits
                )));
            }
        }
        self.launch(&mut st)
    }

    /// Stops our emulator (if any) and launches a new one, as one step: parallel restarts end with
    /// one child. An explicit restart clears the backoff.
    pub fn restart(&self) -> std::io::Result<u32> {
        let mut st = self.lock();
        if let Some(old) = st.child.take() {
            terminate(old);
        }
        st.quick_exits = 0;
        st.not_before = None;
        self.launch(&mut st)
    }

    fn launch(&self, st: &mut ProcState) -> std::io::Result<u32> {
        let cl = self.command_line();
        let (prog, args) = cl
            .split_first()
            .ok_or_else(|| std::io::Error::other("empty emulator command"))?;
        let child = Command::new(prog).args(args).stdin(Stdio::null()).spawn()?;
        let pid = child.id();
        tracing::info!(pid, cmd = %cl.join(" "), "emulator launched");
        st.child = Some(child);
        st.launched = Some(Instant::now());
        Ok(pid)
    }

    /// Stops our emulator: SIGTERM now, SIGKILL after 2 s from a reaper thread. Returns at once
    /// (safe on async workers) with whether one was running.
    pub fn stop(&self) -> bool {
        match self.lock().child.take() {
            Some(c) => {
                terminate(c);
                true
            }
            None => false,
        }
    }

    /// As [`EmulatorProcess::stop`], but waits until the child is gone (blocking: for shutdown,
    /// from `spawn_blocking` or a plain thread).
    pub fn stop_and_wait(&self) -> bool {
        match self.lock().child.take() {
            Some(c) => {
                if let Some(h) = terminate(c) {
                    let _ = h.join();
                }
                true
            }
            None => false,
        }
    }
}

/// Sends SIGTERM and hands the child to a thread that kills it after the grace time and reaps it.
fn terminate(mut c: Child) -> Option<std::thread::JoinHandle<()>> {
    let pid = c.id();
    // SAFETY: plain kill(2) on our own child's pid, which is not yet reaped (no pid reuse).
    let _ = unsafe { libc_kill(pid as i32, 15) };
    let reap = move || {
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if !matches!(c.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        tracing::warn!(
            pid,
            "emulator ignored SIGTERM for {STOP_GRACE:?}; killing it"
        );
        let _ = c.kill();
        let _ = c.wait();
    };
    std::thread::Builder::new()
        .name("macemu-reaper".into())
        .spawn(reap)
        .map_err(|e| tracing::error!(pid, "no reaper thread ({e}); the child got SIGTERM only"))
        .ok()
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        self.stop_and_wait();
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

    fn alive(pid: u32) -> bool {
        // SAFETY: kill(2) with signal 0 only checks for existence.
        unsafe { libc_kill(pid as i32, 0) == 0 }
    }

    /// A command that records its pid in `log` and then runs `then`.
    fn logging(log: &std::path::Path, then: &str) -> Vec<String> {
        vec![
            "sh".into(),
            "-c".into(),
            format!("echo $$ >> {}; {then}", log.display()),
        ]
    }

    fn logged_pids(log: &std::path::Path) -> Vec<u32> {
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    fn temp_log(name: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("macemu-{name}-{}", std::process::id()));
        let _ = std::fs::remove_file(&p);
        p
    }

    #[test]
    fn parallel_starts_and_restarts_leave_one_child() {
        let log = temp_log("parallel-starts");
        let p = std::sync::Arc::new(EmulatorProcess::new(logging(&log, "exec sleep 30")));
        let gate = std::sync::Arc::new(std::sync::Barrier::new(20));
        let starts: Vec<_> = (0..20)
            .map(|_| {
                let (p, gate) = (p.clone(), gate.clone());
                std::thread::spawn(move || {
                    gate.wait();
                    p.start().unwrap()
                })
            })
            .collect();
        let pids: Vec<u32> = starts.into_iter().map(|t| t.join().unwrap()).collect();
        assert!(pids.iter().all(|&x| x == pids[0]), "{pids:?}");
        // The child logs itself once its shell runs: wait for that, then a little longer.
        let deadline = Instant::now() + Duration::from_secs(10);
        while logged_pids(&log).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            logged_pids(&log),
            [pids[0]],
            "20 parallel starts, one child"
        );

        // Parallel restarts and starts: each replaced child is stopped and reaped, not orphaned.
        let gate = std::sync::Arc::new(std::sync::Barrier::new(10));
        let calls: Vec<_> = (0..10)
            .map(|i| {
                let (p, gate) = (p.clone(), gate.clone());
                std::thread::spawn(move || {
                    gate.wait();
                    if i % 2 == 0 {
                        p.restart().unwrap()
                    } else {
                        p.start().unwrap()
                    }
                })
            })
            .collect();
        for c in calls {
            c.join().unwrap();
        }
        let current = p.pid().expect("a child runs");
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut live: Vec<u32>;
        loop {
            std::thread::sleep(Duration::from_millis(100));
            live = logged_pids(&log)
                .into_iter()
                .filter(|&x| alive(x))
                .collect();
            if live == [current] || Instant::now() > deadline {
                break;
            }
        }
        assert_eq!(live, [current], "exactly one child left running");
        assert!(p.stop_and_wait());
        assert!(!alive(current));
        let _ = std::fs::remove_file(&log);
    }

    #[test]
    fn a_child_that_dies_at_once_is_relaunched_with_backoff() {
        let log = temp_log("quick-exit");
        let p = EmulatorProcess::new(logging(&log, "exit 3"));
        // The media thread asks for a relaunch every 50 ms while detached; ask far more often.
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(3) {
            let _ = p.start();
            std::thread::sleep(Duration::from_millis(5));
        }
        let launches = logged_pids(&log).len();
        // Backoff 0.25, 0.5, 1, 2 s after each quick death: launches at about 0, 0.25, 0.75,
        // 1.75 s (plus the time each takes to die).
        assert!(
            (3..=6).contains(&launches),
            "{launches} launches in 3 s of a child that exits at once"
        );
        let err = p.start().unwrap_err().to_string();
        assert!(err.contains("next launch in"), "{err}");
        // An explicit restart does not wait for the backoff.
        p.restart().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while logged_pids(&log).len() == launches && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(logged_pids(&log).len(), launches + 1);
        let _ = std::fs::remove_file(&log);
    }

    #[test]
    fn stop_returns_at_once_and_the_child_is_still_killed() {
        let log = temp_log("stubborn");
        // Ignores SIGTERM from before it logs itself on.
        let p = EmulatorProcess::new(vec![
            "sh".into(),
            "-c".into(),
            format!("trap '' TERM; echo $$ >> {}; exec sleep 30", log.display()),
        ]);
        let pid = p.start().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while logged_pids(&log).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let t = Instant::now();
        assert!(p.stop());
        assert!(
            t.elapsed() < Duration::from_millis(100),
            "stop blocked its caller for {:?}",
            t.elapsed()
        );
        assert!(alive(pid), "the child ignores SIGTERM for now");
        let deadline = Instant::now() + STOP_GRACE + Duration::from_secs(2);
        while alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(!alive(pid), "the stubborn child was killed and reaped");
        let _ = std::fs::remove_file(&log);
    }
}
