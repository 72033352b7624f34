//! Replays every file of the streaming fuzz corpora (`fuzz/corpus/<target>/`) through the very checks
//! the fuzz targets run, so inputs that once found a bug, and the coverage the fuzzer built, stay tested
//! without a fuzzer.

#[path = "../../fuzz/src/stream.rs"]
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
fn datachannel_corpus() {
    replay("datachannel", checks::datachannel);
}

#[test]
fn signaling_corpus() {
    replay("signaling", checks::signaling);
}

#[test]
fn png_dirty_rect_corpus() {
    replay("png_dirty_rect", checks::png_dirty_rect);
}
