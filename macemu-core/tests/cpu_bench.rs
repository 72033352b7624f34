//! The cpu68k workload (../shared/bench/cpu68k) runs to STOP with the published checksum and
//! instruction count (counted there with an independent reference core).

use macemu_core::cpu::flat::run_until_stop;
use macemu_core::cpu::RunState;

#[test]
fn cpu68k_checksum_and_instruction_count() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/bench/cpu68k/cpu68k.bin"
    );
    let image = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let t0 = std::time::Instant::now();
    let r = run_until_stop(&image, 2_000_000_000);
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "D0 {:#010X}, {} instructions, {} cycles, {secs:.3} s, {:.1} MIPS",
        r.d0,
        r.instructions,
        r.cycles,
        r.instructions as f64 / secs / 1e6
    );
    assert_eq!(r.state, RunState::Stopped);
    assert_eq!(r.d0, 0x3004_3FB6);
    assert_eq!(r.instructions, 79_306_304);
}
