//! `Subscriber::next_frame` on tokio (feature `tokio`, enabled for this package's tests).
#![cfg(feature = "tokio")]

mod common;

use common::LivePid;
use macemu_ipc::*;
use std::time::Duration;

#[tokio::test(flavor = "current_thread")]
async fn next_frame_wakes_on_publish_and_reports_a_dead_emulator() {
    let live = LivePid::new();
    let pid = live.pid();
    let (mut frames, audio, mut input) = Publisher::create(pid).unwrap().split();
    let emu = std::thread::spawn(move || {
        while !input.connected() {
            input.poll().unwrap();
            std::thread::sleep(Duration::from_millis(1));
        }
        for n in 1..=20u8 {
            std::thread::sleep(Duration::from_millis(5));
            let mut f = frames.frame_mut(16, 16, PixelFormat::Bgra).unwrap();
            f.row_mut(0).fill(n);
            frames.publish(&FrameMeta::default()).unwrap();
        }
        // Wait for the reader to ask us to go, then vanish.
        while !matches!(
            input.recv_timeout(Duration::from_secs(5)),
            Ok(Some(InputMessage::Command(Command::Stop)))
        ) {}
        drop((frames, audio, input));
    });
    let mut sub = Subscriber::connect(pid).unwrap();
    let mut last = 0;
    while last < 20 {
        let v = tokio::time::timeout(Duration::from_secs(5), sub.next_frame())
            .await
            .expect("frame in time")
            .unwrap();
        assert!(v.frame_count > last);
        last = v.frame_count;
        assert_eq!(v.row(0)[0] as u64, v.frame_count);
    }
    sub.sender()
        .send(&InputMessage::Command(Command::Stop))
        .unwrap();
    emu.join().unwrap();
    let r = tokio::time::timeout(Duration::from_secs(5), sub.next_frame())
        .await
        .expect("noticed in time");
    assert!(matches!(r, Err(IpcError::EmulatorGone { .. })), "{r:?}");
}
