//! A standard WebRTC client that is not a browser plays the stream: GStreamer's `webrtcbin`, driven by
//! `tests/whep_gstreamer.py`, posts its own offer to `/whep` of `macemu-cli serve --auto-start`, and must
//! decode at least 60 H.264 frames at 512×342 and some Opus audio within 15 s of the POST. The session
//! is then ended with DELETE and the server must drop the viewer.
//!
//! Server and player run in a network namespace like the browser tests: libnice gathers no loopback
//! candidates, so on a host with loopback only the player would have nothing to offer; the namespace
//! gives it one veth address and keeps the test's ports off the host.
//!
//! Needs root, `ip`, `curl`, and python3 with GStreamer's GI bindings and plugins (scripts/setup.sh
//! installs them); elsewhere it says why and passes, unless MACEMU_REQUIRE_BROWSER/MACEMU_REQUIRE_ALL
//! is set.

use macemu_viewer::e2e::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const HTTP_PORT: u16 = 18080;
const SIGNALING_PORT: u16 = 18092;
const MIN_FRAMES: u64 = 60;
const TIMEOUT_S: u64 = 15;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/whep_gstreamer.py")
}

/// A Python that has GStreamer's GI bindings and every element the player needs, or why there is none.
/// `/usr/bin/python3` is tried too: Debian's `python3-gi` is only there, and a `python3` of pyenv or a
/// virtualenv may come first on PATH.
fn gst_python() -> std::result::Result<String, String> {
    let mut why = Vec::new();
    for py in ["python3", "/usr/bin/python3"] {
        match Command::new(py).arg(script()).arg("--check").output() {
            Ok(out) if out.status.success() => return Ok(py.to_owned()),
            Ok(out) => {
                let text = String::from_utf8_lossy(&out.stdout);
                let missing = serde_json::from_str::<Value>(text.trim())
                    .ok()
                    .and_then(|v| v["missing"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| String::from_utf8_lossy(&out.stderr).trim().to_owned());
                why.push(format!("{py}: {missing}"));
            }
            Err(e) => why.push(format!("{py}: {e}")),
        }
    }
    Err(format!(
        "no usable GStreamer WebRTC from Python ({}; scripts/setup.sh installs it)",
        why.join("; ")
    ))
}

/// A token nobody guesses, so the player's `Authorization: Bearer` is exercised too.
fn token() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("gst{}x{nanos:x}", std::process::id())
}

fn status(ns: &Netns, token: &str) -> Option<Value> {
    let url = format!("http://127.0.0.1:{HTTP_PORT}/api/status?token={token}");
    serde_json::from_str(&ns.curl(&url)?).ok()
}

/// The last JSON object the player printed (GStreamer may log other lines to the same file).
fn player_result(log: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .rev()
        .filter(|l| l.starts_with('{'))
        .find_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("ok").is_some())
}

fn run(cli: &Path, python: &str) -> Result<()> {
    let ns = Netns::create(5)?;
    let tmp = TempDir::new("e2e-gstreamer")?;
    let token = token();
    let emulator = format!("{} emulate", cli.display());
    let mut serve = Launch::serve(&ns, cli, HTTP_PORT, SIGNALING_PORT)
        .args(["--auto-start", "--emulator", &emulator])
        .args(["--codec", "h264", "--bind", "127.0.0.1"])
        .token(&token)
        .start(tmp.0.join("serve.log"))?;
    let with_log = |msg: String, serve: &Proc| format!("{msg}\n--- serve log:\n{}", serve.tail());

    // The emulator's boot is not the player's business: its 15 s start once frames flow.
    let booted = wait_for(Duration::from_secs(30), || {
        let s = status(&ns, &token)?;
        (s["emulator"]["connected"].as_bool() == Some(true)
            && s["video"]["frame_count"].as_u64().unwrap_or(0) > 0)
            .then_some(s)
    });
    let Some(st) = booted else {
        let alive = serve.alive();
        return Err(with_log(
            format!("serve --auto-start had no running emulator within 30 s (alive: {alive})"),
            &serve,
        ));
    };
    eprintln!(
        "emulator {} attached, {}x{}",
        st["emulator"]["pid"], st["video"]["width"], st["video"]["height"]
    );

    let url = format!("http://127.0.0.1:{HTTP_PORT}/whep");
    let mut cmd = ns.command(python);
    cmd.arg(script())
        .args([&url, &token])
        .args(["--timeout", &TIMEOUT_S.to_string()])
        .args(["--min-frames", &MIN_FRAMES.to_string()]);
    let log = tmp.0.join("player.log");
    let mut player = Proc::spawn("whep_gstreamer.py", cmd, log.clone())?;
    // The player stops itself by then (ICE gathering, the POST, 15 s of media, the DELETE).
    if wait_for(Duration::from_secs(TIMEOUT_S + 45), || {
        (!player.alive()).then_some(())
    })
    .is_none()
    {
        player.stop(Duration::from_secs(2));
        return Err(with_log(
            format!("the player did not finish:\n{}", player.tail()),
            &serve,
        ));
    }
    let Some(r) = player_result(&log) else {
        return Err(with_log(
            format!("the player printed no result:\n{}", player.tail()),
            &serve,
        ));
    };
    let n = |k: &str| r[k].as_u64().unwrap_or(0);
    eprintln!(
        "GStreamer webrtcbin over WHEP: {} frames {}x{} ({} of another size), {} audio buffers, \
         decoders {}; ICE gathering {} ms, POST → first decoded frame {} ms, first audio {} ms, \
         {} frames after {} ms",
        n("frames"),
        n("width"),
        n("height"),
        n("other_frames"),
        n("audio_buffers"),
        r["decoders"],
        r["gather_ms"],
        r["first_frame_ms"],
        r["first_audio_ms"],
        MIN_FRAMES,
        r["elapsed_ms"],
    );

    let location = r["location"].as_str().unwrap_or_default();
    if n("post_status") != 201 || !location.starts_with("/whep/") {
        return Err(with_log(
            format!(
                "WHEP POST: status {}, Location {location:?}: {r}",
                r["post_status"]
            ),
            &serve,
        ));
    }
    let played = r["ok"].as_bool() == Some(true)
        && n("frames") >= MIN_FRAMES
        && (n("width"), n("height")) == (512, 342)
        && n("audio_buffers") > 0
        && r["elapsed_ms"]
            .as_u64()
            .is_some_and(|ms| ms <= TIMEOUT_S * 1000);
    if !played {
        return Err(with_log(
            format!(
                "expected ≥ {MIN_FRAMES} H.264 frames at 512x342 and audio within {TIMEOUT_S} s \
                 of the POST, got {r}\n--- player log:\n{}",
                player.tail()
            ),
            &serve,
        ));
    }
    if n("delete_status") != 200 {
        return Err(with_log(
            format!("DELETE {location} answered {}", r["delete_status"]),
            &serve,
        ));
    }
    let gone = wait_for(Duration::from_secs(5), || {
        (status(&ns, &token)?["peers"].as_u64() == Some(0)).then_some(())
    });
    if gone.is_none() {
        return Err(with_log(
            "the server still counts a viewer after DELETE".into(),
            &serve,
        ));
    }
    Ok(())
}

#[test]
fn gstreamer_webrtcbin_plays_over_whep() {
    let _g = exclusive();
    if let Some(why) = unavailable_without(&["ip", "curl"]) {
        skip(&why);
        return;
    }
    let python = match gst_python() {
        Ok(p) => p,
        Err(why) => {
            skip(&why);
            return;
        }
    };
    let cli = cli_path().unwrap_or_else(|e| panic!("{e}"));
    if let Some(sub) = missing_subcommand(&cli, &["emulate", "serve"]) {
        skip(&format!("macemu-cli has no `{sub}` subcommand"));
        return;
    }
    if let Err(e) = run(&cli, &python) {
        panic!("{e}");
    }
}
