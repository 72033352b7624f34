//! Local users and hostile peers: only shared memory and sockets of our own uid are used, never
//! through a symlink; both ends check the other's uid with SO_PEERCRED; descriptors a peer hands
//! over are made non-blocking; an emulator that shrinks its shared memory is treated as gone.
//!
//! The second user is uid 65534 (nobody), taken on by one thread at a time: Linux credentials are
//! per thread at the system-call level, so that thread creates files and connects sockets as
//! nobody while the rest of the test process stays root. Creating entries as another uid needs
//! root; without it these tests say they skipped (CI runs them as root).

mod common;

use common::LivePid;
use macemu_ipc::*;
use rustix::fd::{AsFd, OwnedFd};
use std::io::Read;
use std::mem::MaybeUninit;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const NOBODY: u32 = 65534;

/// One test at a time: discovery warns once per entry and reason, so a test must not meet the
/// entries of another (it would see them already reported).
fn turn() -> std::sync::MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

fn root_or_skip(test: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var_os("MACEMU_REQUIRE_ALL").is_none_or(|v| v.is_empty() || v == "0"),
        "{test}: needs root to act as a second uid, and MACEMU_REQUIRE_ALL is set"
    );
    eprintln!("SKIPPED {test}: needs root to act as a second uid");
    false
}

/// Runs `f` on a fresh thread whose credentials are uid/gid 65534 (for good: the thread ends).
fn as_nobody<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        let nobody = rustix::process::Uid::from_raw(NOBODY);
        let gid = rustix::process::Gid::from_raw(NOBODY);
        rustix::thread::set_thread_res_gid(gid, gid, gid).expect("setresgid on this thread");
        rustix::thread::set_thread_res_uid(nobody, nobody, nobody)
            .expect("setresuid on this thread");
        assert_eq!(rustix::process::geteuid().as_raw(), NOBODY);
        f()
    })
    .join()
    .expect("the nobody thread panicked")
}

/// Collects warnings logged on the current thread.
#[derive(Clone, Default)]
struct Warnings(Arc<Mutex<Vec<String>>>);

struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, _: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{value:?} "));
    }
}

impl tracing::Subscriber for Warnings {
    fn enabled(&self, m: &tracing::Metadata<'_>) -> bool {
        *m.level() <= tracing::Level::WARN
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, e: &tracing::Event<'_>) {
        let mut m = Message(String::new());
        e.record(&mut m);
        self.0.lock().unwrap().push(m.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

fn with_warnings<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    let w = Warnings::default();
    let out = tracing::subscriber::with_default(w.clone(), f);
    let logged = w.0.lock().unwrap().clone();
    (out, logged)
}

#[test]
fn another_users_shared_memory_is_skipped_and_refused() {
    let _turn = turn();
    if !root_or_skip("another_users_shared_memory_is_skipped_and_refused") {
        return;
    }
    let live = LivePid::new();
    let pid = live.pid();
    // A complete, valid v4 emulator, but created by nobody.
    let foreign = as_nobody(move || Publisher::create_with_size(pid, 512, 342).unwrap());
    let shm = format!("/dev/shm{}", shm_name(pid));
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&shm).unwrap()),
        NOBODY
    );

    let (found, warnings) = with_warnings(list_emulators);
    assert!(
        found.iter().all(|e| e.pid != pid),
        "another user's emulator was listed: {found:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains(&shm) && w.contains("65534")),
        "no warning names the skipped entry: {warnings:?}"
    );
    match Subscriber::connect(pid) {
        Err(ConnectError::Untrusted(why)) => assert!(why.contains("65534"), "{why}"),
        other => panic!("attached to another user's emulator: {other:?}"),
    }
    // Its leftovers are not ours to remove either, even once its pid is gone.
    drop(live);
    clean_stale();
    assert!(std::fs::symlink_metadata(&shm).is_ok());
    drop(foreign);
}

#[test]
fn unreadable_entries_are_skipped_with_a_warning() {
    let _turn = turn();
    if !root_or_skip("unreadable_entries_are_skipped_with_a_warning") {
        return;
    }
    let live = LivePid::new();
    let pid = live.pid();
    let _ours = Publisher::create_with_size(pid, 512, 342).unwrap();
    // Seen by another user, our 0600 entry is unreadable: skipped with a warning, not listed.
    let (found, warnings) = as_nobody(move || with_warnings(list_emulators));
    assert!(found.iter().all(|e| e.pid != pid), "{found:?}");
    assert!(
        warnings
            .iter()
            .any(|w| w.contains(&shm_name(pid)) && w.contains("unreadable")),
        "{warnings:?}"
    );
}

#[test]
fn permission_denied_does_not_count_as_alive() {
    let _turn = turn();
    if !root_or_skip("permission_denied_does_not_count_as_alive") {
        return;
    }
    let live = LivePid::new();
    let pid = live.pid();
    assert!(pid_alive(pid), "our own child is alive");
    // kill(pid, 0) from another uid fails with EPERM: that process is not one we may use.
    assert!(!as_nobody(move || pid_alive(pid)));
}

#[test]
fn symlinked_shared_memory_and_socket_are_refused() {
    let _turn = turn();
    let live = LivePid::new();
    let pid = live.pid();
    let _p = Publisher::create_with_size(pid, 512, 342).unwrap();
    let shm = format!("/dev/shm{}", shm_name(pid));
    let real = format!("/dev/shm/macemu-test-real-{pid}");
    std::fs::rename(&shm, &real).unwrap();
    std::os::unix::fs::symlink(&real, &shm).unwrap();
    let result = Subscriber::connect(pid);
    let (found, warnings) = with_warnings(list_emulators);
    std::fs::remove_file(&shm).unwrap();
    std::fs::rename(&real, &shm).unwrap();
    match result {
        Err(ConnectError::Untrusted(why)) => assert!(why.contains("symlink"), "{why}"),
        other => panic!("followed a symlinked shared memory object: {other:?}"),
    }
    assert!(found.iter().all(|e| e.pid != pid), "{found:?}");
    assert!(
        warnings.iter().any(|w| w.contains("symlink")),
        "{warnings:?}"
    );

    // The shared memory is fine again; now the socket is a symlink to the real one.
    let sock = control_socket_path(pid);
    let real_sock = format!("/tmp/macemu-test-real-{pid}.sock");
    std::fs::rename(&sock, &real_sock).unwrap();
    std::os::unix::fs::symlink(&real_sock, &sock).unwrap();
    let result = Subscriber::connect(pid);
    std::fs::remove_file(&sock).unwrap();
    std::fs::rename(&real_sock, &sock).unwrap();
    match result {
        Err(ConnectError::Untrusted(why)) => assert!(why.contains("not a socket"), "{why}"),
        other => panic!("followed a symlinked control socket: {other:?}"),
    }
}

#[test]
fn server_refuses_a_socket_served_by_another_user() {
    let _turn = turn();
    if !root_or_skip("server_refuses_a_socket_served_by_another_user") {
        return;
    }
    let live = LivePid::new();
    let pid = live.pid();
    let _p = Publisher::create_with_size(pid, 512, 342).unwrap();
    let sock = control_socket_path(pid);
    std::fs::remove_file(&sock).unwrap();
    // nobody listens on the path; the socket file is then given to us, so only the kernel's
    // record of the listening process tells the two apart.
    let path = sock.clone();
    let listener = as_nobody(move || UnixListener::bind(&path).unwrap());
    std::os::unix::fs::chown(&sock, Some(0), Some(0)).unwrap();
    let impostor = std::thread::spawn(move || {
        // Whatever connects gets a v4 handshake with two eventfds.
        if let Ok((s, _)) = listener.accept() {
            let efd = || rustix::event::eventfd(0, rustix::event::EventfdFlags::NONBLOCK).unwrap();
            send_handshake(&s, &[efd(), efd()]);
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    match Subscriber::connect(pid) {
        Err(ConnectError::Untrusted(why)) => assert!(why.contains("uid 65534"), "{why}"),
        other => panic!("took input and eventfds from another user's process: {other:?}"),
    }
    impostor.join().unwrap();
    let _ = std::fs::remove_file(&sock);
}

#[test]
fn emulator_refuses_a_server_of_another_user() {
    let _turn = turn();
    if !root_or_skip("emulator_refuses_a_server_of_another_user") {
        return;
    }
    let live = LivePid::new();
    let pid = live.pid();
    let (_f, _a, mut input) = Publisher::create_with_size(pid, 512, 342).unwrap().split();
    let sock = control_socket_path(pid);
    // A loosened mode lets another user reach the socket; the peer check must still refuse it.
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    let path = sock.clone();
    let stranger = as_nobody(move || UnixStream::connect(&path).unwrap());
    let (_, warnings) = with_warnings(|| {
        for _ in 0..20 {
            let _ = input.recv_timeout(Duration::from_millis(10));
        }
    });
    assert!(!input.connected(), "a server of another user was accepted");
    assert!(
        warnings.iter().any(|w| w.contains("uid 65534")),
        "{warnings:?}"
    );
    let mut stranger = stranger;
    stranger
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut byte = [0u8; 1];
    assert_eq!(
        stranger.read(&mut byte).unwrap(),
        0,
        "the stranger got a handshake byte {byte:?}"
    );
    // Our own server still gets in.
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600)).unwrap();
    let sub = std::thread::spawn(move || Subscriber::connect(pid));
    for _ in 0..50 {
        let _ = input.recv_timeout(Duration::from_millis(10));
        if input.connected() {
            break;
        }
    }
    assert!(sub.join().unwrap().is_ok());
}

/// Sends the v4 handshake byte with `fds`, as a foreign emulator would (the other side may already
/// have hung up: that is no failure of the sender).
fn send_handshake(s: &UnixStream, fds: &[OwnedFd]) {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    let borrowed: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(2))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    assert!(control.push(SendAncillaryMessage::ScmRights(&borrowed)));
    rustix::net::sendmsg(
        s,
        &[std::io::IoSlice::new(b"E")],
        &mut control,
        SendFlags::NOSIGNAL,
    )
    .ok();
}

/// An emulator with our shared memory whose socket is served by `serve` instead of the publisher.
fn with_fake_socket(pid: u32, serve: impl FnOnce(UnixStream) + Send + 'static) -> Publisher {
    let p = Publisher::create_with_size(pid, 512, 342).unwrap();
    let sock = control_socket_path(pid);
    std::fs::remove_file(&sock).unwrap();
    let listener = UnixListener::bind(&sock).unwrap();
    std::thread::spawn(move || {
        if let Ok((s, _)) = listener.accept() {
            serve(s);
        }
    });
    p
}

#[test]
fn blocking_eventfds_from_the_emulator_never_block_the_reader() {
    let _turn = turn();
    let live = LivePid::new();
    let pid = live.pid();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let _p = with_fake_socket(pid, move |s| {
        // Blocking eventfds with nothing pending: a blocking read on them never returns.
        let efd = || rustix::event::eventfd(0, rustix::event::EventfdFlags::empty()).unwrap();
        send_handshake(&s, &[efd(), efd()]);
        let _ = done_rx.recv();
    });
    let mut sub = Subscriber::connect(pid).expect("connects");
    let mut audio = sub.audio();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let a = sub.read_audio().map(|f| f.silence);
        let b = audio.read_audio().map(|f| f.silence);
        let c = sub
            .wait_frame(Duration::from_millis(50))
            .map(|f| f.is_none());
        let _ = tx.send((a.ok(), b.ok(), c.ok()));
    });
    let got = rx
        .recv_timeout(Duration::from_secs(3))
        .expect("a read on the emulator's eventfds blocked");
    assert_eq!(got, (Some(true), Some(true), Some(true)));
    let _ = done_tx.send(());
}

#[test]
fn a_shrunk_shared_memory_detaches_instead_of_sigbus() {
    let _turn = turn();
    let live = LivePid::new();
    let pid = live.pid();
    let (mut frames, mut audio_pub, mut input) =
        Publisher::create_with_size(pid, 320, 200).unwrap().split();
    let sub = std::thread::spawn(move || Subscriber::connect(pid));
    while !input.connected() {
        let _ = input.recv_timeout(Duration::from_millis(10));
    }
    let mut sub = sub.join().unwrap().unwrap();
    let mut f = frames.frame_mut(320, 200, PixelFormat::Bgra).unwrap();
    f.row_mut(0).fill(7);
    frames.publish(&FrameMeta::default()).unwrap();
    audio_pub.push(48_000, 2, &[3; 960]).unwrap();
    let mut audio = sub.audio();
    assert!(sub.wait_frame(Duration::from_secs(1)).unwrap().is_some());

    // The emulator cuts its object down to one page: every frame and most of the header go.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/dev/shm{}", shm_name(pid)))
        .unwrap();
    file.set_len(4096).unwrap();

    assert!(matches!(
        sub.wait_frame(Duration::from_millis(200)),
        Err(IpcError::EmulatorGone { .. })
    ));
    assert!(matches!(
        sub.read_audio(),
        Err(IpcError::EmulatorGone { .. })
    ));
    assert!(matches!(
        audio.read_audio(),
        Err(IpcError::EmulatorGone { .. })
    ));
    assert!(matches!(
        audio.wait_audio(Duration::from_millis(10)),
        Err(IpcError::EmulatorGone { .. })
    ));
    assert!(sub.state().is_err());
    assert_eq!(sub.mouse_latency(), (0, 0));
    assert!(!sub.is_alive());
    // Discovery reads only headers; a shrunk one is listed as invalid, not read past its end.
    let found = list_emulators();
    assert!(found.iter().any(|e| e.pid == pid && !e.valid));
}

#[test]
fn input_to_a_stuck_emulator_never_blocks_the_caller() {
    let _turn = turn();
    let live = LivePid::new();
    let pid = live.pid();
    let (_f, _a, mut input) = Publisher::create_with_size(pid, 512, 342).unwrap().split();
    let sub = std::thread::spawn(move || Subscriber::connect(pid));
    while !input.connected() {
        let _ = input.recv_timeout(Duration::from_millis(10));
    }
    let sub = sub.join().unwrap().unwrap();
    // From here on the emulator never reads its socket: the socket buffer fills, then the queue.
    let queue = sub.sender().queued(64).unwrap();
    let msg = InputMessage::Key {
        keycode: 0x00,
        down: true,
        modifiers: 0,
    };
    let t = std::time::Instant::now();
    let (mut sent, mut full) = (0u32, 0u32);
    for _ in 0..20_000 {
        match queue.send(&msg) {
            Ok(()) => sent += 1,
            Err(IpcError::InputQueueFull) => full += 1,
            Err(e) => panic!("{e}"),
        }
    }
    let took = t.elapsed();
    assert!(
        took < Duration::from_millis(500),
        "20000 sends to a stuck emulator took {took:?}"
    );
    assert!(
        full > 0,
        "a stuck emulator must make the queue drop messages"
    );
    assert_eq!(queue.dropped(), u64::from(full));
    println!("{sent} queued, {full} dropped in {took:?}");
    // Once the emulator reads again, queued messages arrive whole.
    let mut got = 0;
    while let Ok(Some(m)) = input.recv_timeout(Duration::from_millis(200)) {
        assert_eq!(m, msg);
        got += 1;
    }
    assert!(got > 0);
}
