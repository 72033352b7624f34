//! Criterion benchmark of the whole Mac Plus board: the demo ROM (`roms/demo.rom`) booted to its
//! desk, then 120 frames with a key typed every frame, so it draws glyphs and scrolls without
//! pause (CPU-bound, every access through the board's memory map). Reference in the same run: a
//! copy of 16 MiB.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use macemu_core::mac::MacPlus;

const BOOT_FRAMES: u32 = 120;
const FRAMES: u32 = 120;

fn booted(rom: &[u8]) -> MacPlus {
    let mut mac = MacPlus::new(rom, 4 << 20).expect("demo ROM");
    for _ in 0..BOOT_FRAMES {
        mac.run_frame();
    }
    mac
}

fn bench(c: &mut Criterion) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../roms/demo.rom");
    let rom = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut g = c.benchmark_group("macplus");
    g.sample_size(10);
    g.bench_function("demo ROM, 120 frames typing", |b| {
        b.iter_batched(
            || booted(&rom),
            |mut mac| {
                for i in 0..FRAMES {
                    // 'A' down on even frames, up on odd ones: one glyph every two frames.
                    mac.key(0x00, i % 2 == 0);
                    mac.run_frame();
                }
                mac.cycles()
            },
            BatchSize::LargeInput,
        )
    });
    let src = vec![0x5Au8; 1 << 24];
    g.bench_function("reference: copy 16 MiB", |b| {
        let mut dst = vec![0u8; 1 << 24];
        b.iter(|| {
            dst.copy_from_slice(&src);
            dst[12345]
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
