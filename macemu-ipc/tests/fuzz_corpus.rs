//! Replays every file of the IPC fuzz corpora (`fuzz/corpus/<target>/`) through the very checks
//! the fuzz targets run, so inputs that once found a bug, and the coverage the fuzzer built, stay tested
//! without a fuzzer.

#[path = "../../fuzz/src/ipc.rs"]
mod checks;

#[path = "../../fuzz/src/replay.rs"]
mod replay;

use replay::replay;

#[test]
fn input_decoder_corpus() {
    replay("input_decoder", checks::input_decoder);
}

#[test]
fn shm_header_corpus() {
    replay("shm_header", checks::shm_header);
}

#[test]
fn shm_snapshot_corpus() {
    replay("shm_snapshot", checks::shm_snapshot);
}
