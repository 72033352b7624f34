//! Replays every file of the streaming fuzz corpora (`fuzz/corpus/<target>/`) through the very checks
//! the fuzz targets run, so inputs that once found a bug, and the coverage the fuzzer built, stay tested
//! without a fuzzer.

#[path = "../../fuzz/src/stream.rs"]
mod checks;

#[path = "../../fuzz/src/http.rs"]
mod http_checks;

#[path = "../../fuzz/src/replay.rs"]
mod replay;

use replay::replay;

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

#[test]
fn h264_repeat_corpus() {
    replay("h264_repeat", checks::h264_repeat);
}

#[test]
fn input_translator_corpus() {
    replay("input_translator", checks::input_translator);
}

#[test]
fn http_api_corpus() {
    replay("http_api", http_checks::http_api);
}
