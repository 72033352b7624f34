//! Replays every file of the IPC fuzz corpora (`fuzz/corpus/<target>/`) through the very checks
//! the fuzz targets run, so inputs that once found a bug, and the coverage the fuzzer built, stay tested
//! without a fuzzer.

#[path = "../../fuzz/src/ipc.rs"]
mod checks;

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} has no corpus", dir.display());
    for f in &files {
        let data = std::fs::read(f).unwrap();
        if let Err(e) = std::panic::catch_unwind(|| check(&data)) {
            std::panic::resume_unwind(Box::new(format!("{}: {e:?}", f.display())));
        }
    }
}

#[test]
fn input_decoder_corpus() {
    replay("input_decoder", checks::input_decoder);
}

#[test]
fn shm_header_corpus() {
    replay("shm_header", checks::shm_header);
}
