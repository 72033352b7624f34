//! Test helpers shared by the integration tests.
#![allow(dead_code)]

use std::process::{Child, Command};

/// A live process whose pid names a test emulator (v4 names resources by pid and servers check
/// that the pid is alive; parallel tests in one process need distinct live pids).
pub struct LivePid {
    child: Child,
}

impl LivePid {
    pub fn new() -> LivePid {
        let child = Command::new("sleep")
            .arg("300")
            .spawn()
            .expect("spawn sleep");
        LivePid { child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Ends the process (the emulator "dies").
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for LivePid {
    fn drop(&mut self) {
        self.kill();
    }
}
