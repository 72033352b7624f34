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
