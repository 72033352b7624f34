//! Checks run on one fuzz input for `macemu-ipc`'s parsers. Shared by the fuzz targets and by
//! `macemu-ipc/tests/fuzz_corpus.rs`, which replays every corpus file through the same functions.

use macemu_ipc::abi::{MACEMU_MAX_HEIGHT, MACEMU_MAX_WIDTH, MACEMU_NUM_BUFFERS};
use macemu_ipc::input::{message_size, InputDecoder};
use macemu_ipc::video::HeaderSnapshot;

/// Arbitrary bytes, fed in arbitrary chunks, never panic the input decoder; the split never
/// changes what is decoded; every decoded message re-encodes to its own wire size.
pub fn input_decoder(data: &[u8]) {
    let Some((&split_seed, bytes)) = data.split_first() else {
        return;
    };
    let mut whole = InputDecoder::new();
    whole.push(bytes);
    let a: Vec<_> = whole.by_ref().collect();

    let mut chunked = InputDecoder::new();
    let mut b = Vec::new();
    let step = usize::from(split_seed % 13) + 1;
    for chunk in bytes.chunks(step) {
        chunked.push(chunk);
        b.extend(chunked.by_ref());
    }
    assert_eq!(a, b);
    assert_eq!(whole.pending(), chunked.pending());
    for m in a.into_iter().flatten() {
        assert_eq!(Some(m.encode().len()), message_size(m.type_byte()));
    }
}

/// Arbitrary shared-memory header bytes: validation returns typed errors, never panics, and a
/// header that validates only yields in-range indices and geometry.
pub fn shm_header(data: &[u8]) {
    let Some(h) = HeaderSnapshot::from_bytes(data) else {
        return;
    };
    let _ = h.validate_connect(h.pid);
    let _ = h.state();
    if let Ok(m) = h.frame_meta() {
        assert!(m.index < MACEMU_NUM_BUFFERS);
        assert!((1..=MACEMU_MAX_WIDTH).contains(&m.width));
        assert!((1..=MACEMU_MAX_HEIGHT).contains(&m.height));
        assert!(m.dirty.width == 0 || m.dirty.fits(m.width, m.height));
    }
}

thread_local! {
    static PROBE: macemu_ipc::fuzzing::Probe =
        macemu_ipc::fuzzing::Probe::new().expect("a memfd-backed shared-memory probe");
}

/// The server's frame and audio snapshots over arbitrary shared-memory header bytes (first byte:
/// control bits; the rest: the header). Typed errors only; a returned frame lies wholly inside its
/// buffer with sane geometry; the reader claim is always released; an audio frame has a valid
/// rate, channel count and sample count; a shrunk object is noticed before it is read.
pub fn shm_snapshot(data: &[u8]) {
    use macemu_ipc::abi::MACEMU_VIDEO_SHM_SIZE;
    use macemu_ipc::video::NO_CLAIM;
    use macemu_ipc::STRIDE;
    let Some((&ctl, header)) = data.split_first() else {
        return;
    };
    PROBE.with(|p| {
        p.set_header(header).expect("writing the probe's header");
        // The frame count of the last frame seen: none yet, or one taken from the input.
        let last = (ctl & 1 == 1).then(|| {
            let mut b = [0u8; 8];
            let n = header.len().min(8);
            b[..n].copy_from_slice(&header[..n]);
            u64::from_le_bytes(b)
        });
        match p.frame(last) {
            Ok(v) => {
                assert!((1..=MACEMU_MAX_WIDTH).contains(&v.width));
                assert!((1..=MACEMU_MAX_HEIGHT).contains(&v.height));
                assert!(v.index < MACEMU_NUM_BUFFERS);
                assert_eq!(v.stride, STRIDE);
                assert_eq!(v.data.len(), STRIDE * v.height as usize);
                assert!(v.dirty.width == 0 || v.dirty.fits(v.width, v.height));
                let edge = v.row(v.height - 1);
                assert_eq!(edge.len(), v.width as usize * 4);
                let sum: u64 = v.data.iter().step_by(4093).map(|&b| u64::from(b)).sum();
                std::hint::black_box(sum);
                assert_ne!(p.claim(), NO_CLAIM, "a frame view holds its claim");
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        }
        assert_eq!(p.claim(), NO_CLAIM, "the claim is released");
        for _ in 0..4 {
            match p.audio() {
                Ok(a) => {
                    assert!(
                        [11_025, 22_050, 44_100, 48_000].contains(&a.rate),
                        "{}",
                        a.rate
                    );
                    assert!(a.channels == 1 || a.channels == 2);
                    assert!(a.samples.len() <= 960 * 2);
                    assert_eq!(a.samples.len() % a.channels as usize, 0);
                }
                Err(e) => assert!(!e.to_string().is_empty()),
            }
        }
        if ctl & 2 == 2 {
            let cut = u64::from(ctl >> 2) * (MACEMU_VIDEO_SHM_SIZE as u64 / 64);
            assert!(!p.resize(cut).expect("shrinking the probe"));
            assert!(p
                .resize(MACEMU_VIDEO_SHM_SIZE as u64)
                .expect("restoring the probe"));
        }
    });
}
