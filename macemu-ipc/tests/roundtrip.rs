//! Publisher ↔ Subscriber in one process over the real shm, eventfds and socket.

mod common;

use common::LivePid;
use macemu_ipc::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

/// Runs an input listener on its own thread, forwarding messages.
fn spawn_input(
    mut input: InputListener,
) -> (
    mpsc::Receiver<InputMessage>,
    Arc<AtomicBool>,
    thread::JoinHandle<()>,
) {
    let (tx, rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let h = thread::spawn(move || {
        while !stop2.load(Ordering::Relaxed) {
            match input.recv_timeout(Duration::from_millis(20)) {
                Ok(Some(m)) => {
                    let _ = tx.send(m);
                }
                Ok(None) => {}
                Err(e) => panic!("input listener: {e}"),
            }
        }
    });
    (rx, stop, h)
}

fn fill(frame: &mut FrameMut<'_>, seed: u8) {
    for y in 0..frame.height {
        for (x, px) in frame.row_mut(y).chunks_exact_mut(4).enumerate() {
            px.copy_from_slice(&[seed, x as u8, y as u8, 0xFF]);
        }
    }
}

#[test]
fn frames_audio_input_and_ping_round_trip() {
    let live = LivePid::new();
    let pid = live.pid();
    let publisher = Publisher::create(pid).unwrap();
    let (mut frames, mut audio, input) = publisher.split();
    let (rx, stop, h) = spawn_input(input);
    frames.set_state(EmulatorState::Running);

    let mut sub = Subscriber::connect(pid).unwrap();
    assert_eq!(sub.pid(), pid);
    assert_eq!(sub.state().unwrap(), EmulatorState::Running);
    assert!(
        sub.wait_frame(Duration::from_millis(30)).unwrap().is_none(),
        "no frame yet"
    );

    // Video: content, metadata and zero-copy stride.
    for seed in 1..=5u8 {
        let mut f = frames.frame_mut(512, 342, PixelFormat::Argb).unwrap();
        assert_eq!(f.stride, 7680);
        fill(&mut f, seed);
        let dirty = Rect {
            x: 10,
            y: 20,
            width: 30,
            height: 40,
        };
        frames
            .publish(&FrameMeta {
                dirty,
                cursor_x: 100 + seed as u16,
                cursor_y: 7,
                cursor_visible: true,
            })
            .unwrap();
        let v = sub
            .wait_frame(Duration::from_secs(2))
            .unwrap()
            .expect("frame");
        assert_eq!((v.width, v.height, v.stride), (512, 342, 7680));
        assert_eq!(v.pixel_format, PixelFormat::Argb);
        assert_eq!(v.dirty, dirty);
        assert_eq!(
            (v.cursor_x, v.cursor_y, v.cursor_visible),
            (100 + seed as u16, 7, true)
        );
        assert_eq!(v.frame_count, seed as u64);
        assert!(v.timestamp_us > 0);
        assert_eq!(v.data.len(), 7680 * 342);
        for y in [0u32, 1, 200, 341] {
            for (x, px) in v.row(y).chunks_exact(4).enumerate() {
                assert_eq!(px, [seed, x as u8, y as u8, 0xFF]);
            }
        }
    }

    // Audio: S16 stored big-endian, read back native; empty ring gives silence; full ring says so.
    let stereo: Vec<i16> = (0..882 * 2).map(|i| (i as i16).wrapping_mul(37)).collect();
    assert!(audio.push(44_100, 2, &stereo).unwrap());
    let mono: Vec<i16> = (0..480).map(|i| -(i as i16)).collect();
    assert!(audio.push(22_050, 1, &mono).unwrap());
    assert!(
        !audio.push(22_050, 1, &mono).unwrap(),
        "ring of 3 holds 2 frames"
    );
    let mut sub_audio = sub.audio();
    assert!(sub_audio.wait_audio(Duration::ZERO).unwrap());
    let a = sub_audio.read_audio().unwrap();
    assert_eq!((a.rate, a.channels, a.silence), (44_100, 2, false));
    assert_eq!(a.samples, stereo);
    assert!(
        sub_audio.wait_audio(Duration::ZERO).unwrap(),
        "a second queued frame is announced after the first is read"
    );
    let b = sub.read_audio().unwrap();
    assert_eq!((b.rate, b.channels), (22_050, 1));
    assert_eq!(b.samples, mono);
    assert!(
        !sub_audio.wait_audio(Duration::from_millis(20)).unwrap(),
        "nothing queued"
    );
    let s = sub.read_audio().unwrap();
    assert!(s.silence);
    assert_eq!((s.rate, s.channels, s.samples.len()), (48_000, 2, 1920));
    assert!(matches!(
        audio.push(8_000, 1, &mono),
        Err(IpcError::InvalidAudio(_))
    ));

    // Input: every type, from two threads, arrives whole and in per-thread order.
    let sender = sub.sender();
    let msgs = vec![
        InputMessage::Key {
            keycode: 0x31,
            down: true,
            modifiers: 1,
        },
        InputMessage::Mouse {
            x: 300,
            y: 200,
            buttons: 1,
            absolute: true,
            timestamp_ms: 99,
        },
        InputMessage::Command(Command::Pause),
        InputMessage::AudioRequest { samples: 960 },
        InputMessage::MouseMode(MouseMode::Relative),
        InputMessage::Key {
            keycode: 0x31,
            down: false,
            modifiers: 0,
        },
    ];
    let s2 = sub.sender();
    let other = thread::spawn(move || {
        for i in 0..200 {
            s2.send(&InputMessage::Mouse {
                x: i,
                y: -i,
                buttons: 0,
                absolute: false,
                timestamp_ms: i as u64,
            })
            .unwrap();
        }
    });
    for m in &msgs {
        sender.send(m).unwrap();
    }
    other.join().unwrap();
    let mut got = Vec::new();
    while got.len() < msgs.len() + 200 {
        got.push(
            rx.recv_timeout(Duration::from_secs(2))
                .expect("input message"),
        );
    }
    let (moves, mine): (Vec<_>, Vec<_>) = got.into_iter().partition(|m| {
        matches!(
            m,
            InputMessage::Mouse {
                absolute: false,
                ..
            }
        )
    });
    assert_eq!(mine, msgs);
    for (i, m) in moves.iter().enumerate() {
        let i = i as i16;
        assert_eq!(
            *m,
            InputMessage::Mouse {
                x: i,
                y: -i,
                buttons: 0,
                absolute: false,
                timestamp_ms: i as u64
            }
        );
    }

    // Ping: t3 stamped on receipt, echoed with t4 on the next frame.
    sender
        .send(&InputMessage::Ping {
            sequence: 42,
            t1_browser_ms: 1234,
            t2_server_us: 5678,
            t3_emulator_us: 0,
        })
        .unwrap();
    match rx.recv_timeout(Duration::from_secs(2)).unwrap() {
        InputMessage::Ping {
            sequence: 42,
            t3_emulator_us,
            ..
        } => assert!(t3_emulator_us > 0),
        other => panic!("expected the ping, got {other:?}"),
    }
    let mut f = frames.frame_mut(512, 342, PixelFormat::Bgra).unwrap();
    fill(&mut f, 9);
    frames.publish(&FrameMeta::default()).unwrap();
    let v = sub.wait_frame(Duration::from_secs(2)).unwrap().unwrap();
    let p = v.ping.expect("ping echo");
    assert_eq!(
        (p.sequence, p.t1_browser_ms, p.t2_server_us),
        (42, 1234, 5678)
    );
    assert!(p.t3_emulator_us > 0 && p.t4_frame_us >= p.t3_emulator_us);
    assert_eq!(v.dirty.width, 0, "nothing changed");
    drop(v);

    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
}

#[test]
fn dead_emulator_is_noticed_and_resources_are_unlinked() {
    let live = LivePid::new();
    let pid = live.pid();
    let publisher = Publisher::create(pid).unwrap();
    let (frames, audio, input) = publisher.split();
    let (_rx, stop, h) = spawn_input(input);
    let mut sub = Subscriber::connect(pid).unwrap();
    assert!(sub.is_alive());
    assert!(std::path::Path::new(&format!("/dev/shm/macemu-video-{pid}")).exists());
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
    drop((frames, audio));
    assert!(!std::path::Path::new(&format!("/dev/shm/macemu-video-{pid}")).exists());
    assert!(!std::path::Path::new(&control_socket_path(pid)).exists());
    match sub.wait_frame(Duration::from_secs(2)) {
        Err(IpcError::EmulatorGone { pid: p }) => assert_eq!(p, pid),
        other => panic!("expected EmulatorGone, got {other:?}"),
    }
    assert!(!sub.is_alive());
    assert!(matches!(
        sub.sender().send(&InputMessage::Command(Command::Start)),
        Err(IpcError::EmulatorGone { .. })
    ));
}

#[test]
fn second_server_is_busy_and_replaces_a_dead_one() {
    let live = LivePid::new();
    let pid = live.pid();
    let (_f, _a, input) = Publisher::create(pid).unwrap().split();
    let (_rx, stop, h) = spawn_input(input);
    let first = Subscriber::connect(pid).unwrap();
    assert!(matches!(Subscriber::connect(pid), Err(ConnectError::Busy)));
    drop(first);
    thread::sleep(Duration::from_millis(50));
    let second = Subscriber::connect(pid).unwrap();
    assert!(second.is_alive());
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
}

#[test]
fn connect_errors_are_typed() {
    // No such emulator.
    let live = LivePid::new();
    assert!(matches!(
        Subscriber::connect(live.pid()),
        Err(ConnectError::NotFound { .. })
    ));

    // Hand-made shm objects that are wrong in one way each (as a foreign writer would leave them).
    let write_shm = |pid: u32, size: usize, edit: &dyn Fn(&mut Vec<u8>)| {
        let mut b = vec![0u8; size];
        b[0..4].copy_from_slice(&0x4D45_4D34u32.to_ne_bytes());
        b[4..8].copy_from_slice(&4u32.to_ne_bytes());
        b[8..12].copy_from_slice(&pid.to_ne_bytes());
        b[16..20].copy_from_slice(&640u32.to_ne_bytes());
        b[20..24].copy_from_slice(&480u32.to_ne_bytes());
        edit(&mut b);
        std::fs::write(format!("/dev/shm/macemu-video-{pid}"), &b).unwrap();
    };
    let full = abi::MACEMU_VIDEO_SHM_SIZE;
    let pid = live.pid();
    type Edit = Box<dyn Fn(&mut Vec<u8>)>;
    let cases: Vec<(Edit, usize, &str)> = vec![
        (Box::new(|b| b[0] ^= 1), full, "BadMagic"),
        (Box::new(|b| b[4] = 3), full, "BadVersion"),
        (Box::new(|b| b[8] ^= 0x40), full, "BadPid"),
        (
            Box::new(|b| b[16..20].copy_from_slice(&4000u32.to_ne_bytes())),
            full,
            "BadSize",
        ),
        (Box::new(|_| {}), 20_000, "MappingTooSmall"),
        (Box::new(|_| {}), full, "SocketMissing"),
    ];
    for (edit, size, want) in cases {
        write_shm(pid, size, &*edit);
        let err = Subscriber::connect(pid).unwrap_err();
        assert!(
            format!("{err:?}").starts_with(want),
            "want {want}, got {err:?}"
        );
    }
    // A leftover of a live foreign pid is not replaced...
    assert!(matches!(
        Publisher::create(pid),
        Err(IpcError::OwnedByLiveProcess { .. })
    ));
    std::fs::remove_file(format!("/dev/shm/macemu-video-{pid}")).unwrap();
}

#[test]
fn leftovers_of_dead_pids_are_replaced_listed_and_cleaned() {
    let mut dead = LivePid::new();
    let pid = dead.pid();
    let live = LivePid::new();
    let (f, _a, i) = Publisher::create_with_size(live.pid(), 640, 480)
        .unwrap()
        .split();
    f.set_state(EmulatorState::Paused);
    // A crashed emulator leaves its shm and socket behind. (An earlier process with the same pid may
    // have left a real socket there: opening that for writing fails, so start from nothing.)
    let _ = std::fs::remove_file(control_socket_path(pid));
    std::fs::write(format!("/dev/shm/macemu-video-{pid}"), b"junk").unwrap();
    std::fs::write(control_socket_path(pid), b"").unwrap();
    dead.kill();
    let list = list_emulators();
    let me = list.iter().find(|e| e.pid == live.pid()).expect("listed");
    assert_eq!(
        (me.width, me.height, me.state, me.alive, me.valid, me.socket),
        (640, 480, Some(EmulatorState::Paused), true, true, true)
    );
    let stale = list.iter().find(|e| e.pid == pid).expect("stale listed");
    assert!(!stale.alive && !stale.valid);
    let removed = clean_stale();
    let r = removed.iter().find(|r| r.pid == pid).expect("removed");
    assert_eq!(r.paths.len(), 2);
    assert!(
        !removed.iter().any(|r| r.pid == live.pid()),
        "live emulators are never cleaned"
    );
    assert!(list_emulators().iter().any(|e| e.pid == live.pid()));
    drop((f, i));

    // A leftover of a dead pid is replaced by a new publisher.
    std::fs::write(format!("/dev/shm/macemu-video-{pid}"), b"junk").unwrap();
    let p = Publisher::create(pid).unwrap();
    assert_eq!(p.pid(), pid);
    assert!(
        matches!(
            Publisher::create(pid),
            Err(IpcError::OwnedByLiveProcess { .. })
        ),
        "one publisher per pid"
    );
}

#[test]
fn shared_memory_and_socket_are_private_to_the_user() {
    use std::os::unix::fs::PermissionsExt;
    let live = LivePid::new();
    let p = Publisher::create(live.pid()).unwrap();
    for path in [
        format!("/dev/shm/macemu-video-{}", live.pid()),
        control_socket_path(live.pid()),
    ] {
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{path}");
    }
    drop(p);
}

#[test]
fn a_wrong_handshake_is_a_typed_error() {
    use std::io::Write;
    use std::os::unix::net::UnixListener;
    let live = LivePid::new();
    let pid = live.pid();
    // A valid v4 header, as a foreign emulator would publish it, behind a socket that answers
    // the handshake wrongly in one way each.
    let mut b = vec![0u8; abi::MACEMU_VIDEO_SHM_SIZE];
    b[0..4].copy_from_slice(&0x4D45_4D34u32.to_ne_bytes());
    b[4..8].copy_from_slice(&4u32.to_ne_bytes());
    b[8..12].copy_from_slice(&pid.to_ne_bytes());
    b[16..20].copy_from_slice(&640u32.to_ne_bytes());
    b[20..24].copy_from_slice(&480u32.to_ne_bytes());
    std::fs::write(format!("/dev/shm/macemu-video-{pid}"), &b).unwrap();
    let path = control_socket_path(pid);
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    let answers: [(&[u8], &str); 3] = [
        (b"X", "unexpected handshake byte 0x58"),
        (b"E", "expected 2 eventfds, got 0 fds"),
        (b"", "emulator closed the socket"),
    ];
    let server = thread::spawn(move || {
        for (reply, _) in answers {
            let (mut s, _) = listener.accept().unwrap();
            s.write_all(reply).unwrap();
        }
    });
    for (_, want) in answers {
        match Subscriber::connect(pid) {
            Err(ConnectError::Handshake(msg)) => assert_eq!(msg, want),
            other => panic!("want Handshake({want}), got {other:?}"),
        }
    }
    server.join().unwrap();
    let _ = std::fs::remove_file(&path);
    std::fs::remove_file(format!("/dev/shm/macemu-video-{pid}")).unwrap();
}

/// The server's query reaches the emulator, whose reports come back through the subscriber while
/// it waits for frames, interleaved with nothing lost; an emulator that was never asked sends none.
#[test]
fn drive_query_and_reports_round_trip() {
    use macemu_ipc::drive::{DriveCommand, DriveReport, ReportedMedia, WireSlot};
    let live = LivePid::new();
    let pid = live.pid();
    let publisher = Publisher::create(pid).unwrap();
    let (_frames, _audio, mut input) = publisher.split();
    // The emulator side accepts while it polls its input.
    let connecting = thread::spawn(move || Subscriber::connect(pid));
    while !connecting.is_finished() {
        let _ = input.recv_timeout(Duration::from_millis(10)).unwrap();
    }
    let mut sub = connecting.join().unwrap().unwrap();
    let q = sub.sender().queued(8).unwrap();

    let report = |n: u8, name: &str| DriveReport {
        slot: Some(WireSlot::Floppy(n)),
        media: Some(ReportedMedia {
            name: name.into(),
            bytes: 819_200,
            read_only: n == 1,
            format: "raw 800K".into(),
        }),
        ejected_by_mac: false,
        error: None,
    };
    // Before any query the emulator does not send (an old server never reads the socket).
    let _ = input.recv_timeout(Duration::from_millis(50)).unwrap();
    assert!(!input.send_drive_report(&report(0, "early")));

    q.send_drive(&DriveCommand::Query).unwrap();
    let mut cmds = Vec::new();
    for _ in 0..100 {
        let _ = input.recv_timeout(Duration::from_millis(20)).unwrap();
        cmds.extend(input.take_drive_commands());
        if !cmds.is_empty() {
            break;
        }
    }
    assert_eq!(cmds, [DriveCommand::Query]);
    let sent: Vec<DriveReport> = (0..40)
        .map(|i| report((i % 2) as u8, &format!("disk {i}")))
        .collect();
    for r in &sent {
        assert!(input.send_drive_report(r));
    }
    let mut got = Vec::new();
    for _ in 0..100 {
        let _ = sub.wait_frame(Duration::from_millis(20)).unwrap();
        got.extend(sub.take_drive_reports());
        if got.len() >= sent.len() {
            break;
        }
    }
    assert_eq!(got, sent);
    assert!(
        sub.is_alive(),
        "reports are not mistaken for the emulator leaving"
    );
}
