//! Replays a fuzz corpus (`fuzz/corpus/<target>/`) through a target's check; shared by the
//! corpus tests of the crates whose parsers are fuzzed.

use std::path::Path;

/// Runs `check` on every file of `fuzz/corpus/<target>/`, naming the file that fails.
pub fn replay(target: &str, check: fn(&[u8])) {
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
