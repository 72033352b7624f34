//! The emulator process (`macemu-cli emulate`'s engine) driven through the v4 IPC exactly as a
//! server drives it: frames out of shared memory, input messages into the control socket, audio
//! frames out of the ring.

use macemu::emulator::{Emulator, EmulatorConfig, Speed, DEMO_ROM};
use macemu_core::mac::MacPlus;
use macemu_core::video::{Converter, Palette, PixelOrder, Scope, Source};
use macemu_ipc::{FrameView, InputMessage, InputSender, Subscriber};
use std::path::Path;
use std::time::{Duration, Instant};

/// A fixed RTC time (2000-02-03 04:05:06 in Mac seconds) so pictures do not depend on today.
const FIXED_TIME: u32 = 3_032_394_306;

// Layout of roms/demo/desk.c: the echo area inside the window, and the Beep button.
const ECHO: (usize, usize, usize, usize) = (70, 114, 370, 80);
const BEEP: (i16, i16) = (56 + 400 - 64 - 16 + 20, 52 + 248 - 22 - 14 + 10);

/// The shm and socket are named by pid, so emulators in this test process take turns.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn config(speed: Speed) -> EmulatorConfig {
    let mut cfg = EmulatorConfig::demo();
    cfg.speed = speed;
    cfg.rtc_seconds = FIXED_TIME;
    cfg
}

/// RGB bytes of a BGRA frame view.
fn rgb_of(view: &FrameView<'_>) -> Vec<u8> {
    let (w, h) = (view.width as usize, view.height as usize);
    let mut out = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for px in view.data[y * view.stride..][..w * 4].chunks_exact(4) {
            out.extend_from_slice(&[px[2], px[1], px[0]]);
        }
    }
    out
}

/// Black pixels inside `rect` of an RGB frame 512 wide.
fn ink(rgb: &[u8], rect: (usize, usize, usize, usize)) -> usize {
    let (x0, y0, w, h) = rect;
    (y0..y0 + h)
        .flat_map(|y| (x0..x0 + w).map(move |x| (x, y)))
        .filter(|&(x, y)| rgb[(y * 512 + x) * 3] == 0)
        .count()
}

/// Waits for the next published frame and returns its RGB pixels and cursor.
fn next_frame(sub: &mut Subscriber) -> (Vec<u8>, (u16, u16)) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "no frame within 10 s");
        if let Some(view) = sub.wait_frame(Duration::from_millis(500)).expect("frame") {
            assert_eq!((view.width, view.height), (512, 342));
            return (rgb_of(&view), (view.cursor_x, view.cursor_y));
        }
    }
}

/// Frames until `pred` holds (at most 10 s).
fn until(sub: &mut Subscriber, what: &str, pred: impl Fn(&[u8], (u16, u16)) -> bool) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (rgb, cursor) = next_frame(sub);
        if pred(&rgb, cursor) {
            return rgb;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
    }
}

fn send(tx: &InputSender, msg: InputMessage) {
    tx.send(&msg).expect("send input");
}

fn key(tx: &InputSender, keycode: u8) {
    send(
        tx,
        InputMessage::Key {
            keycode,
            down: true,
            modifiers: 0,
        },
    );
    send(
        tx,
        InputMessage::Key {
            keycode,
            down: false,
            modifiers: 0,
        },
    );
}

fn mouse_abs(tx: &InputSender, x: i16, y: i16, buttons: u8) {
    let msg = InputMessage::Mouse {
        x,
        y,
        buttons,
        absolute: true,
        timestamp_ms: 0,
    };
    send(tx, msg);
}

/// The demo ROM after 120 frames with a fixed clock, converted as the video thread converts it,
/// matches `tests/golden/demo-boot.png` pixel for pixel (`MACEMU_BLESS=1` rewrites it).
#[test]
fn boot_picture_matches_the_golden_image() {
    let mut mac = MacPlus::new(DEMO_ROM, 4 << 20).expect("machine");
    mac.set_rtc_seconds(FIXED_TIME);
    for _ in 0..120 {
        mac.run_frame();
    }
    let mut out = vec![0u8; 7680 * 342];
    Converter::new()
        .convert(
            &Source::mac_plus(mac.screen()),
            &Palette::mono(),
            PixelOrder::Bgra,
            &mut out,
            7680,
            Scope::Full,
        )
        .expect("convert");
    let mut rgb = Vec::with_capacity(512 * 342 * 3);
    for y in 0..342 {
        for px in out[y * 7680..][..2048].chunks_exact(4) {
            rgb.extend_from_slice(&[px[2], px[1], px[0]]);
        }
    }
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/demo-boot.png");
    if std::env::var_os("MACEMU_BLESS").is_some() {
        let file = std::fs::File::create(&golden).unwrap();
        let mut enc = png::Encoder::new(std::io::BufWriter::new(file), 512, 342);
        enc.set_color(png::ColorType::Rgb);
        enc.write_header().unwrap().write_image_data(&rgb).unwrap();
    }
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&golden).expect("golden PNG"),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut want = vec![0u8; reader.output_buffer_size()];
    let info = reader.next_frame(&mut want).unwrap();
    assert_eq!(
        (info.width, info.height, info.color_type),
        (512, 342, png::ColorType::Rgb)
    );
    let differing = rgb
        .chunks(3)
        .zip(want.chunks(3))
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(
        differing,
        0,
        "{differing} pixels differ from {}",
        golden.display()
    );
}

/// Keys, mouse and a click sent through the control socket change the published picture, and the
/// click's tone arrives in the audio ring at 22,050 Hz.
#[test]
fn input_through_the_socket_changes_picture_and_sound() {
    let _turn = serial();
    let emu = Emulator::start(config(Speed::Real)).expect("start");
    let mut sub = Subscriber::connect(emu.pid()).expect("connect");
    let tx = sub.sender();
    // Booted: the echo area is empty.
    let before = until(&mut sub, "boot", |rgb, _| ink(rgb, (0, 0, 512, 20)) > 500);
    let empty = ink(&before, ECHO);

    // Type "hi": ink appears in the echo area (h = 0x04, i = 0x22 as Mac key codes).
    key(&tx, 0x04);
    key(&tx, 0x22);
    let typed = until(&mut sub, "typed text", |rgb, _| ink(rgb, ECHO) > empty + 10);
    assert!(ink(&typed, ECHO) > empty + 10);

    // Absolute mouse: the cursor moves there, in the metadata and on the screen.
    mouse_abs(&tx, 100, 200, 0);
    until(&mut sub, "cursor at (100, 200)", |_, c| c == (100, 200));
    let rgb = until(&mut sub, "cursor drawn", |rgb, _| {
        ink(rgb, (100, 200, 8, 12)) > 10
    });
    assert!(ink(&rgb, (100, 200, 8, 12)) > 10);

    // Click Beep, then pull 20 ms audio frames as a server does: a tone near 601.5 Hz.
    mouse_abs(&tx, BEEP.0, BEEP.1, 0);
    until(&mut sub, "cursor on Beep", |_, c| {
        c == (BEEP.0 as u16, BEEP.1 as u16)
    });
    mouse_abs(&tx, BEEP.0, BEEP.1, 1);
    let mut samples = Vec::new();
    let mut released = false;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && samples.len() < 22_050 / 2 {
        send(&tx, InputMessage::AudioRequest { samples: 960 });
        std::thread::sleep(Duration::from_millis(20));
        if !released {
            mouse_abs(&tx, BEEP.0, BEEP.1, 0);
            released = true;
        }
        let frame = sub.read_audio().expect("audio");
        if frame.rate == 22_050 {
            assert_eq!(frame.channels, 1);
            samples.extend_from_slice(&frame.samples);
        }
    }
    let loud: Vec<i16> = samples
        .iter()
        .copied()
        .skip_while(|s| s.abs() < 1000)
        .collect();
    assert!(
        loud.len() > 2205,
        "no tone in {} audio samples",
        samples.len()
    );
    let tone = &loud[..2205.min(loud.len())];
    let crossings = tone.windows(2).filter(|w| w[0] < 0 && w[1] >= 0).count();
    let hz = crossings as f64 / (tone.len() as f64 / 22_050.0);
    assert!((hz - 601.5).abs() < 25.0, "tone at {hz:.1} Hz");
    emu.stop();
}

/// A reader can come and go while the emulator runs.
#[test]
fn readers_attach_detach_and_reattach() {
    let _turn = serial();
    let emu = Emulator::start(config(Speed::Max)).expect("start");
    for round in 0..3 {
        let mut sub =
            Subscriber::connect(emu.pid()).unwrap_or_else(|e| panic!("round {round}: {e}"));
        let first = sub
            .wait_frame(Duration::from_secs(5))
            .unwrap()
            .map(|v| v.frame_count);
        let mut last = first.expect("a frame");
        for _ in 0..5 {
            let v = sub
                .wait_frame(Duration::from_secs(5))
                .unwrap()
                .expect("a frame");
            assert!(v.frame_count > last, "frame counter goes forward");
            last = v.frame_count;
        }
        drop(sub);
    }
    assert!(emu.is_running());
    emu.stop();
}

/// Ten emulated minutes at full speed: no hang, and emulated time stays locked to the cycle count
/// (VBLs, ticks and the RTC's seconds all agree).
#[test]
fn ten_emulated_minutes_without_hang_or_drift() {
    const FRAMES: u64 = 36_090; // 600 s × 60.15 Hz
    let mut mac = MacPlus::new(DEMO_ROM, 4 << 20).expect("machine");
    mac.set_rtc_seconds(FIXED_TIME);
    let ticks = |mac: &MacPlus| {
        let r = mac.ram();
        u32::from_be_bytes([r[0x16A], r[0x16B], r[0x16C], r[0x16D]])
    };
    let mut last = mac.run_frame();
    let mut ticks_at_100 = 0;
    for n in 1..FRAMES {
        let r = mac.run_frame();
        assert_eq!(r.frame, last.frame + 1);
        last = r;
        if n == 100 {
            ticks_at_100 = ticks(&mac);
        }
    }
    let seconds = last.total_cycles as f64 / 7_833_600.0;
    assert!((seconds - 600.0).abs() < 0.05, "{seconds} s emulated");
    assert_eq!(mac.rtc_seconds() - FIXED_TIME, 600);
    // Once booted, the ROM's Ticks count every VBL: exactly one per frame.
    let counted = ticks(&mac) - ticks_at_100;
    assert_eq!(
        u64::from(counted),
        FRAMES - 1 - 100,
        "Ticks counted per frame"
    );
    let r = mac.ram();
    let time = u32::from_be_bytes([r[0x20C], r[0x20D], r[0x20E], r[0x20F]]);
    assert!(time.abs_diff(FIXED_TIME + 600) <= 1, "Time global {time}");
    // Still alive: a key is still echoed.
    let before = mac.screen().to_vec();
    mac.key(0x04, true);
    mac.key(0x04, false);
    for _ in 0..10 {
        mac.run_frame();
    }
    assert_ne!(before, mac.screen(), "the ROM still answers the keyboard");
}
