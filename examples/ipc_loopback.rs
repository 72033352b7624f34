//! The v4 IPC in one program: an "emulator" thread publishes a moving bar, a 440 Hz tone and
//! answers input, while the "server" side (`Subscriber`) reads frames zero-copy, drains audio and
//! sends keys and pings back.
//!
//! `cargo run --release --example ipc_loopback`

use macemu::ipc::{
    Command, EmulatorState, FrameMeta, InputMessage, PixelFormat, Publisher, Rect, Subscriber,
};
use std::time::{Duration, Instant};

const W: u32 = 512;
const H: u32 = 342;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pid = std::process::id();
    let (mut frames, mut audio, mut input) = Publisher::create_with_size(pid, W, H)?.split();

    let emulator = std::thread::spawn(move || -> Result<u32, macemu::ipc::IpcError> {
        frames.set_state(EmulatorState::Running);
        let mut phase = 0f32;
        let mut keys = 0;
        for n in 0..120u32 {
            let started = Instant::now();
            // Draw: white screen with a black bar moving right, 4 px a frame.
            let bar = (n * 4) % W;
            let mut f = frames.frame_mut(W, H, PixelFormat::Bgra)?;
            for y in 0..H {
                for (x, px) in f.row_mut(y).chunks_exact_mut(4).enumerate() {
                    let v = if (x as u32).abs_diff(bar) < 8 {
                        0
                    } else {
                        0xFF
                    };
                    px.copy_from_slice(&[v, v, v, 0xFF]);
                }
            }
            let dirty = Rect {
                x: bar.saturating_sub(12),
                y: 0,
                width: 24u32.min(W - bar.saturating_sub(12)),
                height: H,
            };
            frames.publish(&FrameMeta {
                dirty,
                cursor_x: bar as u16,
                cursor_y: 100,
                cursor_visible: true,
            })?;
            // One 1/60 s audio frame (735 samples at 44.1 kHz mono); a full ring just drops it.
            let tone: Vec<i16> = (0..735)
                .map(|_| {
                    phase += 440.0 * std::f32::consts::TAU / 44_100.0;
                    (phase.sin() * 8000.0) as i16
                })
                .collect();
            audio.push(44_100, 1, &tone)?;
            while let Some(msg) = input.poll()? {
                match msg {
                    InputMessage::Key { .. } => keys += 1,
                    InputMessage::Command(Command::Stop) => return Ok(keys),
                    _ => {}
                }
            }
            std::thread::sleep(Duration::from_millis(16).saturating_sub(started.elapsed()));
        }
        Ok(keys)
    });

    let mut sub = loop {
        match Subscriber::connect(pid) {
            Ok(s) => break s,
            Err(e) => {
                eprintln!("waiting for the emulator: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    let sender = sub.sender();
    let (mut got, mut audio_frames, mut pings) = (0, 0, 0);
    while got < 60 {
        let Some(v) = sub.wait_frame(Duration::from_secs(1))? else {
            continue;
        };
        got += 1;
        // Find the bar in the middle row, straight from shared memory.
        let row = v.row(v.height / 2);
        let bar = row.chunks_exact(4).position(|px| px[0] == 0).unwrap_or(0);
        if got % 10 == 0 {
            println!(
                "frame {:3}: {}x{} bar at x={bar:3}, dirty {:?}, cursor ({}, {}), ping echo {:?}",
                v.frame_count,
                v.width,
                v.height,
                v.dirty,
                v.cursor_x,
                v.cursor_y,
                v.ping.map(|p| p.sequence)
            );
            pings += 1;
        }
        drop(v);
        sender.send(&InputMessage::Key {
            keycode: 0x31,
            down: got % 2 == 0,
            modifiers: 0,
        })?;
        if got % 10 == 0 {
            sender.send(&InputMessage::Ping {
                sequence: pings,
                t1_browser_ms: 0,
                t2_server_us: 0,
                t3_emulator_us: 0,
            })?;
        }
        loop {
            let a = sub.read_audio()?;
            if a.silence {
                break;
            }
            audio_frames += 1;
        }
    }
    sender.send(&InputMessage::Command(Command::Stop))?;
    let keys = emulator.join().expect("emulator thread")?;
    println!(
        "server read {got} frames and {audio_frames} audio frames; emulator received {keys} keys"
    );
    Ok(())
}
