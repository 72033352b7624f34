//! Arbitrary shared-memory header bytes: validation returns typed errors, never panics, and a
//! header that validates only yields in-range indices and geometry.
#![no_main]

use libfuzzer_sys::fuzz_target;
use macemu_ipc::abi::{MACEMU_MAX_HEIGHT, MACEMU_MAX_WIDTH, MACEMU_NUM_BUFFERS};
use macemu_ipc::video::HeaderSnapshot;

fuzz_target!(|data: &[u8]| {
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
});
