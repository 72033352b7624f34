//! Faults seen from a real browser: the streaming server killed and replaced, and the emulator killed
//! under `--auto-start`. The page must pick the stream up again by itself, without a reload.
//!
//! Needs root (network namespace), `ip`, `curl` and `chromium`; elsewhere it says why and passes.

use macemu_viewer::e2e::*;
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};

const HTTP_PORT: u16 = 18080;
const SIGNALING_PORT: u16 = 18091;

/// `serve` in `ns` on this binary's ports with `extra` arguments, once it answers.
fn serve(
    ns: &Netns,
    cli: &std::path::Path,
    extra: &[&str],
    log: std::path::PathBuf,
) -> Result<Proc> {
    Launch::serve(ns, cli, HTTP_PORT, SIGNALING_PORT)
        .args(extra)
        .start(log)
}

fn status(ns: &Netns) -> Option<Value> {
    serde_json::from_str(&ns.curl(&format!("http://127.0.0.1:{HTTP_PORT}/api/status"))?).ok()
}

/// Frames decoded by the page's live peer connections, and the page's time origin (a reload changes it).
fn page_state(b: &mut Browser) -> Result<(u64, f64)> {
    let frames = b.rtp_stats()?.frames_decoded;
    let origin = b.eval("performance.timeOrigin")?.as_f64().unwrap_or(0.0);
    Ok((frames, origin))
}

/// Waits until the page decodes `more` frames beyond `from` (on any live connection).
fn frames_grow(b: &mut Browser, from: u64, more: u64, within: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    wait_for(within, || {
        let st = b.rtp_stats().ok()?;
        // A new connection starts counting again from zero.
        let grown = if st.frames_decoded < from {
            st.frames_decoded >= more
        } else {
            st.frames_decoded >= from + more
        };
        grown.then(|| t0.elapsed())
    })
}

#[test]
fn page_survives_a_server_restart() {
    let Some(cli) = e2e_cli() else { return };
    let _one_at_a_time = exclusive();
    let run = || -> Result<()> {
        let mut c = Chain::start(&cli, 2, "e2e-faults-server", HTTP_PORT, SIGNALING_PORT, &[])?;
        let (emu, b) = (&mut c.emu, &mut c.browser);
        let pid = emu.pid().to_string();
        b.navigate(&format!("http://127.0.0.1:{HTTP_PORT}/"))?;
        frames_grow(b, 0, 3, Duration::from_secs(30))
            .ok_or_else(|| format!("no frames before the fault: {:?}", b.rtp_stats()))?;
        let (_, origin) = page_state(b)?;

        // kill -9 the server: the emulator keeps running, a new server attaches, the page follows.
        let _ = Command::new("kill")
            .args(["-KILL", &c.serve.pid().to_string()])
            .status();
        let _ = c.serve.child.wait();
        std::thread::sleep(Duration::from_millis(1500));
        if !emu.alive() {
            return Err(format!(
                "the emulator died with the server:\n{}",
                emu.tail()
            ));
        }
        let (pcs_before, _) = b.newest_peer()?;
        let mut second = serve(
            &c.ns,
            &cli,
            &["--target-pid", &pid],
            c.tmp.0.join("serve2.log"),
        )?;
        let t0 = Instant::now();
        // A new peer connection, made by the page itself, decodes frames.
        let back = wait_for(Duration::from_secs(10), || {
            let (pcs, frames) = b.newest_peer().ok()?;
            (pcs > pcs_before && frames >= 1).then(|| t0.elapsed())
        })
        .ok_or_else(|| format!("the page's stream did not come back:\n{}", second.tail()))?;
        let (_, origin_after) = page_state(b)?;
        eprintln!(
            "stream back {:.2} s after the new server answered",
            back.as_secs_f64()
        );
        if origin_after != origin {
            return Err("the page reloaded".into());
        }
        // The emulator went on publishing meanwhile.
        if !emu.alive() || emulator_frame(emu.pid()).is_err() {
            return Err(format!(
                "the emulator did not survive the server:\n{}",
                emu.tail()
            ));
        }
        if back > Duration::from_secs(2) {
            return Err(format!(
                "the stream came back after {:.2} s (limit 2 s)",
                back.as_secs_f64()
            ));
        }
        second.stop(Duration::from_secs(3));
        c.browser.close();
        Ok(())
    };
    if let Err(e) = run() {
        panic!("{e}");
    }
}

#[test]
fn page_survives_an_emulator_kill_under_auto_start() {
    let Some(cli) = e2e_cli() else { return };
    let _one_at_a_time = exclusive();
    let run = || -> Result<()> {
        let ns = Netns::create(3)?;
        let tmp = TempDir::new("e2e-faults-emulator")?;
        let emulator = format!("{} emulate", cli.display());
        let mut srv = serve(
            &ns,
            &cli,
            &["--auto-start", "--emulator", &emulator],
            tmp.0.join("serve.log"),
        )?;
        let pid_of = |ns: &Netns| status(ns).and_then(|s| s["emulator"]["pid"].as_u64());
        let pid = wait_for(Duration::from_secs(15), || pid_of(&ns))
            .ok_or_else(|| format!("--auto-start attached no emulator:\n{}", srv.tail()))?;
        let mut b = Browser::launch(Some(&ns), tmp.0.join("chromium.log"))?;
        b.navigate(&format!("http://127.0.0.1:{HTTP_PORT}/"))?;
        frames_grow(&mut b, 0, 3, Duration::from_secs(30))
            .ok_or_else(|| format!("no frames before the fault: {:?}", b.rtp_stats()))?;
        let (frames, origin) = page_state(&mut b)?;

        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        let t0 = Instant::now();
        let noticed = wait_for(Duration::from_secs(5), || {
            let s = status(&ns)?;
            (s["emulator"]["pid"].as_u64() != Some(pid)).then(|| t0.elapsed())
        })
        .ok_or("the server did not notice the dead emulator")?;
        let new_pid = wait_for(Duration::from_secs(10), || {
            pid_of(&ns).filter(|&p| p != pid)
        })
        .ok_or_else(|| format!("--auto-start brought no new emulator:\n{}", srv.tail()))?;
        let attached = t0.elapsed();
        let back = frames_grow(&mut b, frames, 1, Duration::from_secs(10))
            .ok_or_else(|| format!("the page's stream did not resume:\n{}", srv.tail()))?;
        let (_, origin_after) = page_state(&mut b)?;
        eprintln!(
            "noticed after {:.2} s, new emulator {new_pid} attached after {:.2} s, page frames again {:.2} s later",
            noticed.as_secs_f64(),
            attached.as_secs_f64(),
            back.as_secs_f64()
        );
        if origin_after != origin {
            return Err("the page reloaded".into());
        }
        if noticed > Duration::from_secs(1) {
            return Err(format!(
                "the server noticed after {:.2} s (limit 1 s)",
                noticed.as_secs_f64()
            ));
        }
        // From the kill to frames again in the page.
        let total = attached + back;
        if total > Duration::from_secs(2) {
            return Err(format!(
                "the stream resumed {:.2} s after the kill (limit 2 s)",
                total.as_secs_f64()
            ));
        }
        srv.stop(Duration::from_secs(5));
        // The server should take its emulator down with it; make sure nothing outlives the test.
        let _ = Command::new("kill")
            .args(["-TERM", &new_pid.to_string()])
            .stderr(std::process::Stdio::null())
            .status();
        b.close();
        Ok(())
    };
    if let Err(e) = run() {
        panic!("{e}");
    }
}
