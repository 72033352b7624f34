//! Arbitrary bytes, fed in arbitrary chunks, never panic the input decoder; the split never
//! changes what is decoded; every decoded message re-encodes to its own wire size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use macemu_ipc::input::{message_size, InputDecoder};

fuzz_target!(|data: &[u8]| {
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
});
