//! `examples/stream` stopped with SIGTERM (a service manager, `kill`) removes its shared memory and
//! control socket, as `macemu-cli emulate` does.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../macemu-viewer/src/cargo.rs"]
mod cargo;
use cargo::cargo_command;

/// The example of this test's profile: cargo builds examples for `cargo test`, but not for a run
/// of this test alone, so it is built here when missing.
fn example() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("<target>/<profile>/deps/<test>");
    let p = profile.join("examples/stream");
    if !p.is_file() {
        let mut cmd = cargo_command();
        cmd.args(["build", "--example", "stream"]);
        if profile.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let st = cmd.status().expect("running cargo build --example stream");
        assert!(st.success(), "building examples/stream failed");
    }
    p
}

#[test]
fn sigterm_removes_shared_memory_and_socket() {
    let mut child = Command::new(example())
        .args([
            "--codec",
            "png",
            "--http-port",
            "0",
            "--signaling-port",
            "0",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning examples/stream");
    let pid = child.id();
    let shm = PathBuf::from(format!("/dev/shm/macemu-video-{pid}"));
    let sock = PathBuf::from(macemu_ipc::control_socket_path(pid));
    // The example prints the URL once the server listens.
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut up = false;
    while Instant::now() < deadline {
        match lines.next() {
            Some(Ok(l)) if l.starts_with("open http://") => {
                up = true;
                break;
            }
            Some(Ok(_)) => {}
            _ => break,
        }
    }
    assert!(up, "examples/stream did not come up");
    assert!(shm.exists(), "{} while running", shm.display());
    assert!(sock.exists(), "{} while running", sock.display());

    // SAFETY: kill(2) on our own unreaped child.
    assert_eq!(unsafe { kill(pid as i32, 15) }, 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let status = status.expect("examples/stream did not exit within 20 s of SIGTERM");
    assert!(status.success(), "exit status after SIGTERM: {status}");
    assert!(!shm.exists(), "{} left behind", shm.display());
    assert!(!sock.exists(), "{} left behind", sock.display());
}

extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}
